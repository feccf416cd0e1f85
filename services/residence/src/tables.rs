//! Schema of the residence store.
//!
//! | table | key | value |
//! |---|---|---|
//! | `registrations` | id_number | `ResidenceRegistration` |
//! | `permits` | permit_number | `ResidencePermit` |
//! | `permits_by_person` | id_number, permit_number | — |
//! | `registrations_by_committee` | committee_code, id_number | — (active registrations) |
//! | `counters` | name | `Counter`: permit serials per county and year; the follower's cursor |

use popbase_proto::residence::{ResidencePermit, ResidenceRegistration};
use popbase_storage::keys::KeyBuilder;
use popbase_storage::{Index, Schema, Table};

pub const REGISTRATIONS: Table<ResidenceRegistration> = Table::new("registrations");
pub const PERMITS: Table<ResidencePermit> = Table::new("permits");
pub const PERMITS_BY_PERSON: Index = Index::new("permits_by_person");
pub const REGISTRATIONS_BY_COMMITTEE: Index = Index::new("registrations_by_committee");

pub const COUNTERS: Table<Counter> = Table::new("counters");

/// A number kept in the store and updated under a version check.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    #[prost(uint64, tag = "1")]
    pub next: u64,
}

pub const SCHEMA: Schema = Schema {
    name: "residence",
    tables: &[
        "registrations",
        "permits",
        "permits_by_person",
        "registrations_by_committee",
        "counters",
    ],
    write_mostly: &[],
    history: &[],
};

pub fn counter_key(name: &str) -> Vec<u8> {
    KeyBuilder::new().str(name).build()
}

pub fn registration_key(id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).build()
}

pub fn permit_key(permit_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(permit_number).build()
}

pub fn permit_by_person_key(id_number: &str, permit_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).str(permit_number).build()
}

pub fn person_prefix(id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).build()
}

pub fn by_committee_key(committee_code: &str, id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(committee_code).str(id_number).build()
}

pub fn division_prefix(division_code: &str) -> Vec<u8> {
    KeyBuilder::new().str_prefix(division_code).build()
}
