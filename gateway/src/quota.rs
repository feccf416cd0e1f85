//! Per-department quotas: units per calendar day and a token bucket for the
//! per-second rate. Held in memory per gateway replica (the HPA scales
//! replicas, so the catalogue's figures are per replica; see docs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::catalogue::Department;
use crate::denial::{Denial, reason};

struct Use {
    day: u32,
    used_today: u64,
    tokens: f64,
    refilled: Instant,
}

#[derive(Default)]
pub struct Quotas {
    uses: Mutex<HashMap<String, Use>>,
}

impl Quotas {
    /// Takes `units` for `department` on `day` (yyyymmdd), or says which limit holds.
    pub fn take(&self, department: &Department, day: u32, units: u64, now: Instant) -> Result<(), Denial> {
        let mut uses = self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let rate = f64::from(department.per_second.max(1));
        let entry = uses.entry(department.id.clone()).or_insert_with(|| Use {
            day,
            used_today: 0,
            tokens: rate,
            refilled: now,
        });
        if entry.day != day {
            entry.day = day;
            entry.used_today = 0;
        }
        let elapsed = now.saturating_duration_since(entry.refilled).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * rate).min(rate);
        entry.refilled = now;
        if entry.used_today + units > department.daily_quota {
            return Err(Denial::new(
                reason::QUOTA_EXCEEDED,
                format!("daily quota of {} for {} used up", department.daily_quota, department.id),
            ));
        }
        let needed = units as f64;
        // A request larger than one second's burst may still pass on a full bucket.
        if entry.tokens < needed.min(rate) {
            return Err(Denial::new(
                reason::RATE_LIMITED,
                format!("more than {} per second for {}", department.per_second, department.id),
            ));
        }
        entry.tokens -= needed;
        entry.used_today += units;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dept(daily: u64, per_second: u32) -> Department {
        Department {
            id: "d".into(),
            name: "D".into(),
            certificate_cn: "d".into(),
            certificate_spki_sha256: Vec::new(),
            daily_quota: daily,
            per_second,
        }
    }

    #[test]
    fn daily_quota_holds_and_resets_the_next_day() {
        let q = Quotas::default();
        let d = dept(3, 1000);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(q.take(&d, 20260101, 1, now).is_ok());
        }
        assert_eq!(q.take(&d, 20260101, 1, now).map_err(|e| e.code), Err(reason::QUOTA_EXCEEDED));
        assert!(q.take(&d, 20260102, 1, now).is_ok());
    }

    #[test]
    fn rate_refills_with_time() {
        let q = Quotas::default();
        let d = dept(1_000_000, 2);
        let now = Instant::now();
        assert!(q.take(&d, 1, 1, now).is_ok());
        assert!(q.take(&d, 1, 1, now).is_ok());
        assert_eq!(q.take(&d, 1, 1, now).map_err(|e| e.code), Err(reason::RATE_LIMITED));
        assert!(q.take(&d, 1, 1, now + Duration::from_millis(600)).is_ok());
    }
}
