//! Per-department quotas: units per calendar day (the city's) and a token
//! bucket for the per-second rate.
//!
//! The day's units are counted by the ledger, shared by every gateway
//! replica and kept across restarts: a replica takes a lease of units
//! (1 % of the quota, at most 10,000; one at a time for small quotas) and
//! spends it locally, so the answer path asks the ledger once per lease,
//! not per call. Units leased by a replica that stops are not handed out
//! again: the quota errs on the side of the department's limit. The
//! per-second rate is the catalogue's figure divided by the replicas the
//! ledger has heard from in the last minute (each replica says it is alive
//! every [`HEARTBEAT`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use popbase_common::ServiceResult;

use crate::catalogue::Department;
use crate::denial::{Denial, reason};
use crate::ledger::{Granted, Ledger};

/// How often a replica tells the ledger it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// The largest lease a replica takes at once.
const MAX_LEASE: u64 = 10_000;

struct Use {
    day: u32,
    /// Units the ledger granted this replica today and not yet spent.
    leased: u64,
    tokens: f64,
    refilled: Instant,
}

impl Use {
    /// A department's first request on this replica: a full bucket, no lease.
    fn fresh(day: u32, rate: f64, now: Instant) -> Use {
        Use {
            day,
            leased: 0,
            tokens: rate,
            refilled: now,
        }
    }
}

pub struct Quotas {
    uses: Mutex<HashMap<String, Use>>,
    /// This replica's id with the ledger (per process).
    replica: String,
    /// Replicas sharing each department's per-second rate.
    replicas: AtomicU32,
}

impl Default for Quotas {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            uses: Mutex::new(HashMap::new()),
            replica: format!("{:x}-{:x}", std::process::id(), nanos),
            replicas: AtomicU32::new(1),
        }
    }
}

/// The extra units a replica leases beyond what one call needs.
fn lease_block(daily_quota: u64) -> u64 {
    (daily_quota / 100).min(MAX_LEASE)
}

impl Quotas {
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Records what the ledger said of the replicas alive.
    pub fn heard(&self, granted: Granted) {
        self.replicas.store(granted.replicas.max(1), Ordering::Relaxed);
    }

    /// Takes `units` for `department` on `day` (yyyymmdd), or says which limit holds.
    pub async fn take(
        &self,
        ledger: &dyn Ledger,
        department: &Department,
        day: u32,
        units: u64,
        now: Instant,
    ) -> ServiceResult<Result<(), Denial>> {
        let rate = (f64::from(department.per_second.max(1)) / f64::from(self.replicas.load(Ordering::Relaxed).max(1))).max(1.0);
        let needed = units as f64;
        let short = {
            let mut uses = self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let entry = uses.entry(department.id.clone()).or_insert_with(|| Use::fresh(day, rate, now));
            if entry.day != day {
                entry.day = day;
                entry.leased = 0;
            }
            let elapsed = now.saturating_duration_since(entry.refilled).as_secs_f64();
            entry.tokens = (entry.tokens + elapsed * rate).min(rate);
            entry.refilled = now;
            // A request larger than one second's burst may still pass on a full bucket.
            if entry.tokens < needed.min(rate) {
                return Ok(Err(Denial::new(
                    reason::RATE_LIMITED,
                    format!("more than {} per second for {}", department.per_second, department.id),
                )));
            }
            if entry.leased >= units {
                entry.leased -= units;
                entry.tokens -= needed;
                return Ok(Ok(()));
            }
            units - entry.leased
        };
        let want = short + lease_block(department.daily_quota);
        let granted = ledger
            .take_quota(&department.id, day, want, department.daily_quota, &self.replica)
            .await?;
        self.heard(granted);
        let mut uses = self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Entries are never removed, so this finds the one charged above; were
        // it gone, a fresh one still spends only what the ledger granted.
        let entry = uses.entry(department.id.clone()).or_insert_with(|| Use::fresh(day, rate, now));
        if entry.day == day {
            entry.leased += granted.granted;
        }
        if entry.day != day || entry.leased < units {
            return Ok(Err(Denial::new(
                reason::QUOTA_EXCEEDED,
                format!("daily quota of {} for {} used up", department.daily_quota, department.id),
            )));
        }
        entry.leased -= units;
        entry.tokens -= needed;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LocalLedger;

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

    fn ledger(dir: &std::path::Path) -> LocalLedger {
        let store = popbase_storage::Store::open(dir, crate::tables::SCHEMA, Default::default()).expect("store");
        LocalLedger::start(store).expect("ledger")
    }

    async fn code(q: &Quotas, l: &LocalLedger, d: &Department, day: u32, now: Instant) -> Option<&'static str> {
        q.take(l, d, day, 1, now).await.expect("ledger").err().map(|e| e.code)
    }

    #[tokio::test]
    async fn the_daily_quota_is_shared_by_replicas_and_resets_the_next_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = ledger(dir.path());
        let (one, two) = (Quotas::default(), Quotas::default());
        let d = dept(3, 1000);
        let now = Instant::now();
        assert_eq!(code(&one, &l, &d, 20260101, now).await, None);
        assert_eq!(code(&two, &l, &d, 20260101, now).await, None);
        assert_eq!(code(&one, &l, &d, 20260101, now).await, None);
        assert_eq!(
            code(&two, &l, &d, 20260101, now).await,
            Some(reason::QUOTA_EXCEEDED),
            "three in all"
        );
        assert_eq!(
            code(&Quotas::default(), &l, &d, 20260101, now).await,
            Some(reason::QUOTA_EXCEEDED),
            "a restarted replica too"
        );
        assert_eq!(code(&one, &l, &d, 20260102, now).await, None);
    }

    #[tokio::test]
    async fn the_rate_refills_with_time_and_is_divided_among_replicas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = ledger(dir.path());
        let q = Quotas::default();
        let d = dept(1_000_000, 2);
        let now = Instant::now();
        assert_eq!(code(&q, &l, &d, 1, now).await, None);
        assert_eq!(code(&q, &l, &d, 1, now).await, None);
        assert_eq!(code(&q, &l, &d, 1, now).await, Some(reason::RATE_LIMITED));
        assert_eq!(code(&q, &l, &d, 1, now + Duration::from_millis(600)).await, None);
        q.heard(Granted {
            granted: 0,
            used: 0,
            replicas: 2,
        });
        let later = now + Duration::from_secs(5);
        assert_eq!(code(&q, &l, &d, 1, later).await, None, "one per second each of two");
        assert_eq!(code(&q, &l, &d, 1, later).await, Some(reason::RATE_LIMITED));
    }
}
