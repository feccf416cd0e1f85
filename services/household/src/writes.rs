//! Row writes that keep the indexes in step with the rows.
//!
//! Every change to a person or household goes through these two functions,
//! both for the bulk import and for life events, so an index can never
//! disagree with its table: the old row's entries are removed and the new
//! row's added in the same batch. Life events pass the version they read so
//! a concurrent change makes the batch fail with a conflict instead of
//! overwriting it.

use popbase_proto::common::Address;
use popbase_proto::household::{Household, HouseholdKind, HouseholdStatus, Person, RegistrationStatus};
use popbase_storage::{Batch, Versioned};

use crate::tables::{
    self, COLLECTIVES, HOUSEHOLD_MEMBERS, HOUSEHOLDS, HOUSEHOLDS_BY_ADDRESS, HOUSEHOLDS_BY_COMMITTEE, PERSONS, PERSONS_BY_COMMITTEE,
};

/// How a write relates to what was read.
pub enum Prior<'a, M> {
    /// Bulk import: no read, no version check.
    Unchecked,
    /// The row must still be absent.
    Absent,
    /// The row must still be at this version; its index entries are replaced.
    Read(&'a Versioned<M>),
}

fn person_index_keys(person: &Person) -> Vec<(&'static popbase_storage::Index, Vec<u8>)> {
    if person.status != RegistrationStatus::Active as i32 {
        return Vec::new();
    }
    let committee = Address::committee_of(&person.address);
    vec![
        (&HOUSEHOLD_MEMBERS, tables::member_key(&person.household_id, &person.id_number)),
        (&PERSONS_BY_COMMITTEE, tables::by_committee_key(committee, &person.id_number)),
    ]
}

pub fn put_person(batch: &mut Batch, prior: Prior<'_, Person>, person: &Person) {
    let key = tables::person_key(&person.id_number);
    match prior {
        Prior::Unchecked => {}
        Prior::Absent => {
            batch.expect_version(&PERSONS, key.clone(), None);
        }
        Prior::Read(old) => {
            batch.expect_version(&PERSONS, key.clone(), Some(old.version));
            for (index, old_key) in person_index_keys(&old.value) {
                batch.delete_index(index, old_key);
            }
        }
    }
    batch.put(&PERSONS, key, person);
    for (index, new_key) in person_index_keys(person) {
        batch.put_index(index, new_key);
    }
}

fn household_index_keys(household: &Household) -> Vec<(&'static popbase_storage::Index, Vec<u8>)> {
    if household.status == HouseholdStatus::Closed as i32 {
        return Vec::new();
    }
    let committee = Address::committee_of(&household.address);
    let detail = household.address.as_ref().map(|a| a.detail.as_str()).unwrap_or_default();
    let id = &household.household_id;
    let mut keys = vec![
        (&HOUSEHOLDS_BY_COMMITTEE, tables::by_committee_key(committee, id)),
        (&HOUSEHOLDS_BY_ADDRESS, tables::address_key(committee, detail, id)),
    ];
    if household.kind != HouseholdKind::Family as i32 {
        keys.push((&COLLECTIVES, tables::collective_key(committee, household.kind, id)));
    }
    keys
}

pub fn put_household(batch: &mut Batch, prior: Prior<'_, Household>, household: &Household) {
    let key = tables::household_key(&household.household_id);
    match prior {
        Prior::Unchecked => {}
        Prior::Absent => {
            batch.expect_version(&HOUSEHOLDS, key.clone(), None);
        }
        Prior::Read(old) => {
            batch.expect_version(&HOUSEHOLDS, key.clone(), Some(old.version));
            for (index, old_key) in household_index_keys(&old.value) {
                batch.delete_index(index, old_key);
            }
        }
    }
    batch.put(&HOUSEHOLDS, key, household);
    for (index, new_key) in household_index_keys(household) {
        batch.put_index(index, new_key);
    }
}
