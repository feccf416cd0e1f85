//! Daily quotas shared by every gateway replica: the ledger grants units of
//! a department's day to the replica that asks and counts them durably, so
//! neither another replica nor a restart spends them again. It also hears
//! which replicas are alive, so each can divide the per-second rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use popbase_storage::{Batch, Read, StorageResult, Store};

use crate::tables::{QUOTA_USE, QuotaUse, quota_key};

/// A replica not heard from for this long no longer counts.
const REPLICA_TTL: Duration = Duration::from_secs(60);

/// What one grant answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub granted: u64,
    pub used: u64,
    pub replicas: u32,
}

/// The counters over the ledger's store. One writer at a time per book
/// (grants are read-modify-write of one row).
pub struct QuotaBook {
    store: Store,
    grants: Mutex<()>,
    replicas: Mutex<HashMap<String, Instant>>,
    /// department -> (day, units granted that day, daily quota), as of the
    /// last grant: what `/metrics` shows of each department's day.
    latest: Mutex<HashMap<String, (u32, u64, u64)>>,
}

impl QuotaBook {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            grants: Mutex::new(()),
            replicas: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
        }
    }

    /// `popbase_quota_used_ratio{department}`: units granted today over the
    /// daily quota, for departments that asked today. Granted units run at
    /// most one lease (1 % of the quota) per replica ahead of answers.
    pub fn render_metrics(&self, today: u32, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP popbase_quota_used_ratio Share of a department's daily quota granted to gateway replicas today.\n");
        out.push_str("# TYPE popbase_quota_used_ratio gauge\n");
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let mut departments: Vec<_> = latest.iter().filter(|(_, (day, _, quota))| *day == today && *quota > 0).collect();
        departments.sort();
        for (department, (_, used, quota)) in departments {
            let ratio = *used as f64 / *quota as f64;
            let _ = writeln!(
                out,
                "popbase_quota_used_ratio{{department=\"{}\"}} {ratio}",
                popbase_common::metrics::LabelValue(department)
            );
        }
    }

    fn live_replicas(&self, replica: &str, now: Instant) -> u32 {
        let mut seen = self.replicas.lock().unwrap_or_else(|p| p.into_inner());
        if !replica.is_empty() {
            seen.insert(replica.to_string(), now);
        }
        seen.retain(|_, at| now.duration_since(*at) < REPLICA_TTL);
        u32::try_from(seen.len()).unwrap_or(u32::MAX).max(1)
    }

    /// Grants up to `units` of `department`'s `day` within `daily_quota`.
    pub fn take(&self, department: &str, day: u32, units: u64, daily_quota: u64, replica: &str) -> StorageResult<Granted> {
        let replicas = self.live_replicas(replica, Instant::now());
        let _one_at_a_time = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        let key = quota_key(day, department);
        let current = self.store.get(&QUOTA_USE, &key)?;
        let used = current.as_ref().map_or(0, |c| c.value.used);
        let granted = units.min(daily_quota.saturating_sub(used));
        if granted > 0 {
            let mut batch = Batch::new("ledger", "quota_granted");
            batch.expect_version(&QUOTA_USE, key.clone(), current.map(|c| c.version));
            batch.put(&QUOTA_USE, key, &QuotaUse { used: used + granted });
            self.store.commit(batch)?;
        }
        if !department.is_empty() {
            let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded by the catalogue's departments (the gateway asks only for them).
            latest.insert(department.to_string(), (day, used + granted, daily_quota));
        }
        Ok(Granted {
            granted,
            used: used + granted,
            replicas,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_stop_at_the_quota_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), crate::tables::SCHEMA, Default::default()).expect("store");
        let book = QuotaBook::new(store);
        assert_eq!(book.take("hrss", 20261204, 3, 5, "a").expect("take").granted, 3);
        let last = book.take("hrss", 20261204, 3, 5, "b").expect("take");
        assert_eq!((last.granted, last.used, last.replicas), (2, 5, 2));
        assert_eq!(book.take("hrss", 20261204, 1, 5, "a").expect("take").granted, 0, "used up");
        assert_eq!(book.take("hrss", 20261205, 1, 5, "a").expect("take").granted, 1, "a new day");
        drop(book);
        let store = Store::open(dir.path(), crate::tables::SCHEMA, Default::default()).expect("reopen");
        let book = QuotaBook::new(store);
        assert_eq!(book.take("hrss", 20261204, 1, 5, "a").expect("take").granted, 0, "counted durably");
        let mut out = String::new();
        book.render_metrics(20261204, &mut out);
        assert!(out.contains("popbase_quota_used_ratio{department=\"hrss\"} 1\n"), "{out}");
        let mut tomorrow = String::new();
        book.render_metrics(20261205, &mut tomorrow);
        assert!(!tomorrow.contains("department="), "only today's use: {tomorrow}");
    }
}
