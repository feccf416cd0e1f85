//! Who qualifies for resident medical insurance on a day, for a whole
//! division at once: the residents under it with an active residence
//! registration and a permit of their own valid that day (the rule of
//! `entitlements::resident_medical_insurance`). The gateway's uninsured
//! list streams their ID numbers and asks the feeds itself; 政策找人 for
//! resident insurance today (`batched`) asks the feeds about them 10,000 at
//! a time, instead of each resident's records one by one.

use std::collections::HashSet;

use chrono::NaiveDate;
use popbase_storage::keys;
use popbase_storage::{Read, StorageResult};

use crate::Permits;
use crate::entitlements::valid_on;
use crate::holder_sets::ValidHolders;
use crate::tables::{self, PERMITS, REGISTRATIONS_BY_COMMITTEE};

/// Divisions of at most this many digits (a county or larger) are answered
/// from one pass over every permit (some 430,000 in Zibo, a fraction of a
/// second) rather than each registration's permits looked up in turn.
const SCAN_PERMITS_UP_TO_DIGITS: usize = 6;

/// Whether `division_code` is a county or larger (see [`SCAN_PERMITS_UP_TO_DIGITS`]).
pub fn scans_permits(division_code: &str) -> bool {
    division_code.len() <= SCAN_PERMITS_UP_TO_DIGITS
}

/// Everyone holding a permit valid on `on`, from one pass over every
/// permit, shared with the scans asking at the same time (see
/// `holder_sets`).
pub fn valid_holders(permits: &Permits, on: NaiveDate) -> StorageResult<ValidHolders> {
    permits.holder_sets().holders_on(on, || {
        let mut holding = HashSet::new();
        permits.store().bulk_rows(&PERMITS, &[], |_, row| {
            if valid_on(std::slice::from_ref(&row.value), on).is_some() {
                holding.insert(row.value.id_number);
            }
            Ok(true)
        })?;
        Ok(holding)
    })
}

/// Hands each qualifying resident's ID number to `visit`, in committee then
/// ID order, until it answers `false`.
pub fn for_each_holder_under(
    permits: &Permits,
    division_code: &str,
    on: NaiveDate,
    mut visit: impl FnMut(&str) -> bool,
) -> StorageResult<()> {
    let store = permits.store();
    let registered_under = tables::division_prefix(division_code);
    if scans_permits(division_code) {
        let holding = valid_holders(permits, on)?;
        return store.bulk_index_keys(&REGISTRATIONS_BY_COMMITTEE, &registered_under, |key| {
            let id = keys::second_str_ref(key)?;
            Ok(!holding.contains(id.as_ref()) || visit(&id))
        });
    }
    let mut registered = Vec::new();
    store.for_each_index_key(&REGISTRATIONS_BY_COMMITTEE, &registered_under, |key| {
        registered.push(keys::second_str_ref(key)?.into_owned());
        Ok(true)
    })?;
    for id in registered {
        if valid_on(&permits.permits_of(&id)?, on).is_some() && !visit(&id) {
            break;
        }
    }
    Ok(())
}
