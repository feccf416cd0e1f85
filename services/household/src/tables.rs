//! Schema of the household store.
//!
//! | table | key | value |
//! |---|---|---|
//! | `persons` | id_number | `Person` |
//! | `households` | household_id | `Household` |
//! | `household_members` | household_id, id_number | — |
//! | `persons_by_committee` | committee_code, id_number | — |
//! | `households_by_committee` | committee_code, household_id | — |
//!
//! Committee codes come first in the division indexes, so "everyone under
//! county 370302" is one prefix scan.

use popbase_proto::household::{Household, Person};
use popbase_storage::keys::KeyBuilder;
use popbase_storage::{Index, Schema, Table};

pub const PERSONS: Table<Person> = Table::new("persons");
pub const HOUSEHOLDS: Table<Household> = Table::new("households");
pub const HOUSEHOLD_MEMBERS: Index = Index::new("household_members");
pub const PERSONS_BY_COMMITTEE: Index = Index::new("persons_by_committee");
pub const HOUSEHOLDS_BY_COMMITTEE: Index = Index::new("households_by_committee");

pub const SCHEMA: Schema = Schema {
    name: "household",
    tables: &[
        "persons",
        "households",
        "household_members",
        "persons_by_committee",
        "households_by_committee",
    ],
};

pub fn person_key(id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).build()
}

pub fn household_key(household_id: &str) -> Vec<u8> {
    KeyBuilder::new().str(household_id).build()
}

pub fn member_key(household_id: &str, id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(household_id).str(id_number).build()
}

pub fn members_prefix(household_id: &str) -> Vec<u8> {
    KeyBuilder::new().str(household_id).build()
}

/// Key of the committee indexes: (committee code, id).
pub fn by_committee_key(committee_code: &str, id: &str) -> Vec<u8> {
    KeyBuilder::new().str(committee_code).str(id).build()
}

/// Prefix of every committee-index entry under a division code of any level.
pub fn division_prefix(division_code: &str) -> Vec<u8> {
    KeyBuilder::new().str_prefix(division_code).build()
}
