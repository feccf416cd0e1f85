//! Permits keep their own time. A 居住证 is valid for a year from issue or
//! its last endorsement (签注); one not endorsed in time lapses the day
//! after its `valid_until`, whether or not anyone asks.
//!
//! Two halves, so no answer depends on when the daily run last ran:
//! * **read time**: [`read_on`] shows a permit still marked VALID past its
//!   validity as EXPIRED since its `valid_until`; every read of the role
//!   (`GetResident`, `GetPermit`, the export's `status` column) goes
//!   through it;
//! * **the daily run**: [`expire_daily`] marks those permits EXPIRED in the
//!   store at the city's midnight, and [`expire_lapsed`] once at start,
//!   before the role serves, to catch up after downtime; so the change log
//!   and `since_seq` exports carry the change.
//!   Marking is idempotent: a permit already expired is left alone.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use popbase_common::{ServiceError, ServiceResult, Shutdown};
use popbase_domain::clock;
use popbase_proto::residence::{PermitStatus, ResidencePermit};

use crate::Permits;

/// The change log's actor for the daily run.
const ACTOR: &str = "residence-expiry";
/// Waited after midnight before the run, so a clock a little behind the
/// city's does not run it just before the day turns.
const AFTER_MIDNIGHT: Duration = Duration::from_secs(1);
/// Waited after a failed run before trying again.
const RETRY: Duration = Duration::from_secs(60);

/// True when `permit` is marked valid but its validity ended before `on`
/// ([`ResidencePermit::is_lapsed_on`], the rule every role uses).
pub fn lapsed(permit: &ResidencePermit, on: NaiveDate) -> bool {
    permit.is_lapsed_on(on)
}

/// `permit` as it stands on `on`: a lapsed one reads as EXPIRED since its
/// `valid_until`, as the daily run will write it.
pub fn read_on(mut permit: ResidencePermit, on: NaiveDate) -> ResidencePermit {
    if lapsed(&permit, on) {
        permit.status = PermitStatus::Expired as i32;
        permit.status_since = permit.valid_until;
    }
    permit
}

/// Expires the permits that lapsed before today; the number expired.
/// Run at start, before the role serves, to catch up after downtime.
pub async fn expire_lapsed(permits: &Permits) -> ServiceResult<u64> {
    let today = clock::today();
    let permits = permits.clone();
    let expired = tokio::task::spawn_blocking(move || permits.expire_due(ACTOR, today))
        .await
        .map_err(|e| ServiceError::Internal(format!("the permit expiry task failed: {e}")))??;
    if expired > 0 {
        tracing::info!(expired, day = %today, "residence permits past their validity expired");
    }
    Ok(expired)
}

/// Expires the lapsed permits at every city midnight until `shutdown`. A
/// failed run is logged and retried a minute later.
pub async fn expire_daily(permits: Permits, shutdown: Shutdown) {
    let mut wait = until_next_run();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return,
        }
        wait = match expire_lapsed(&permits).await {
            Ok(_) => until_next_run(),
            Err(e) => {
                tracing::warn!(error = %e, "expiring residence permits failed; retrying");
                RETRY
            }
        };
    }
}

fn until_next_run() -> Duration {
    let now = Utc::now();
    (clock::next_midnight_after(now) - now).to_std().unwrap_or_default() + AFTER_MIDNIGHT
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::residence::ResidenceRegistration;
    use popbase_storage::{Store, StoreOptions};

    use crate::permits::ResidentRecords;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).expect("date")
    }

    fn permit(number: &str, until: NaiveDate, status: PermitStatus) -> ResidencePermit {
        ResidencePermit {
            permit_number: number.into(),
            id_number: "110105198001010013".into(),
            valid_until: Some(until.into()),
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_permit_lapses_the_day_after_its_valid_until() {
        let p = permit("3703032025000001", day(3), PermitStatus::Valid);
        assert_eq!(
            read_on(p.clone(), day(3)).status,
            PermitStatus::Valid as i32,
            "valid through the 3rd"
        );
        let read = read_on(p, day(4));
        assert_eq!(read.status, PermitStatus::Expired as i32);
        assert_eq!(read.status_since, Some(day(3).into()));
        let cancelled = permit("3703032025000002", day(1), PermitStatus::Cancelled);
        assert_eq!(
            read_on(cancelled, day(4)).status,
            PermitStatus::Cancelled as i32,
            "only valid permits lapse"
        );
    }

    #[test]
    fn the_daily_run_marks_lapsed_permits_once_and_reads_agree_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), crate::tables::SCHEMA, StoreOptions::default()).expect("store");
        let permits = Permits::new(store);
        let registration = ResidenceRegistration {
            id_number: "110105198001010013".into(),
            ..Default::default()
        };
        permits
            .import(&[ResidentRecords {
                registration,
                permits: vec![
                    permit("3703032025000001", day(3), PermitStatus::Valid),
                    permit("3703032025000002", day(10), PermitStatus::Valid),
                ],
            }])
            .expect("import");
        let statuses = |on| -> Vec<i32> {
            permits
                .permits_of("110105198001010013")
                .expect("read")
                .into_iter()
                .map(|p| read_on(p, on).status)
                .collect()
        };
        let (valid, expired) = (PermitStatus::Valid as i32, PermitStatus::Expired as i32);
        assert_eq!(statuses(day(4)), vec![expired, valid], "read time, before any run");
        assert_eq!(permits.expire_due(ACTOR, day(4)).expect("run"), 1);
        assert_eq!(permits.expire_due(ACTOR, day(4)).expect("again"), 0, "idempotent");
        let stored = permits.permit("3703032025000001").expect("read").expect("permit");
        assert_eq!((stored.status, stored.status_since), (expired, Some(day(3).into())));
        // Down for a week: the first run after start catches up.
        assert_eq!(permits.expire_due(ACTOR, day(11)).expect("catch up"), 1);
    }
}
