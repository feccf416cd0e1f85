//! Who qualifies for compulsory education on a day, for a county or
//! larger at once: the children of school age under the division with an
//! active residence registration and a valid permit of their own or of the
//! parent they accompany (两为主、以居住证为主要依据; the rule of
//! `entitlements::evaluate`). Read from one pass over the permits and the
//! division's registration index, the age from the ID number itself; 政策找人
//! (`batched`) then asks the feeds `CheckEnrolled` about them in batches.

use chrono::NaiveDate;
use popbase_common::ServiceError;
use popbase_domain::IdNumber;
use popbase_domain::calendar::age_on;
use popbase_storage::keys;

use crate::Permits;
use crate::entitlements::SCHOOL_AGES;
use crate::holders::valid_holders;
use crate::tables::{self, REGISTRATIONS_BY_COMMITTEE};

/// The children under `division_code` who qualify on `on`, in committee
/// order: school age by their ID number, then a valid permit of their own
/// or (their registration read) of the parent they accompany.
pub fn qualifying_children(permits: &Permits, division_code: &str, on: NaiveDate) -> Result<Vec<String>, ServiceError> {
    let holders = valid_holders(permits, on)?;
    let mut children = Vec::new();
    let registered_under = tables::division_prefix(division_code);
    permits
        .store()
        .bulk_index_keys(&REGISTRATIONS_BY_COMMITTEE, &registered_under, |key| {
            let id = keys::second_str_ref(key)?;
            let school_age = IdNumber::parse(&id, on).is_ok_and(|n| SCHOOL_AGES.contains(&age_on(n.birth_date(), on)));
            if !school_age {
                return Ok(true);
            }
            let qualifies = holders.contains(id.as_ref())
                || permits
                    .registration(&id)?
                    .is_some_and(|r| !r.accompanies_id_number.is_empty() && holders.contains(&r.accompanies_id_number));
            if qualifies {
                children.push(id.into_owned());
            }
            Ok(true)
        })?;
    Ok(children)
}
