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
use popbase_storage::{Batch, Index, Table, Versioned};
use prost::Message;

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

/// The index entries a row should have.
type IndexKeys<M> = fn(&M) -> Vec<(&'static Index, Vec<u8>)>;

fn person_index_keys(person: &Person) -> Vec<(&'static Index, Vec<u8>)> {
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
    put_indexed(
        batch,
        &PERSONS,
        tables::person_key(&person.id_number),
        prior,
        person,
        person_index_keys,
    );
}

fn household_index_keys(household: &Household) -> Vec<(&'static Index, Vec<u8>)> {
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
    put_indexed(
        batch,
        &HOUSEHOLDS,
        tables::household_key(&household.household_id),
        prior,
        household,
        household_index_keys,
    );
}

/// Writes `value` at `key`, checking `prior`, and moves its index entries
/// (as `index_keys` derives them) from the old row's to the new row's.
fn put_indexed<M: Message>(batch: &mut Batch, table: &Table<M>, key: Vec<u8>, prior: Prior<'_, M>, value: &M, index_keys: IndexKeys<M>) {
    match prior {
        Prior::Unchecked => {}
        Prior::Absent => {
            batch.expect_version(table, key.clone(), None);
        }
        Prior::Read(old) => {
            batch.expect_version(table, key.clone(), Some(old.version));
            for (index, old_key) in index_keys(&old.value) {
                batch.delete_index(index, old_key);
            }
        }
    }
    batch.put(table, key, value);
    for (index, new_key) in index_keys(value) {
        batch.put_index(index, new_key);
    }
}
