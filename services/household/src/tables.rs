//! Schema of the household store.
//!
//! | table | key | value |
//! |---|---|---|
//! | `persons` | id_number | `Person` (every status: active, moved out, deceased) |
//! | `households` | household_id | `Household` |
//! | `household_members` | household_id, id_number | — (active members) |
//! | `persons_by_committee` | committee_code, id_number | — (active persons) |
//! | `households_by_committee` | committee_code, household_id | — (active households) |
//! | `households_by_address` | committee_code, detail, household_id | — (active households) |
//! | `collectives` | committee_code, kind, household_id | — (active collective households) |
//! | `events` | yyyymmdd, sequence | `RegistryEvent` |
//! | `counters` | name | `Counter` (household serials per county) |
//! | `standard_addresses` | road, committee_code, from_number | `StandardAddress` (the address base) |
//!
//! Committee codes come first in the division indexes, so "everyone under
//! county 370302" is one prefix scan. Events are keyed by date then the
//! sequence of the batch that recorded them, so a period is one range scan.

use chrono::{Datelike, NaiveDate};
use popbase_proto::common::{Address, Date};
use popbase_proto::household::{Household, Person, RegistrationStatus, RegistryEvent, StandardAddress};
use popbase_storage::keys::{KeyBuilder, KeyReader};
use popbase_storage::{Index, Schema, Table};

/// The fields of a stored [`Person`] that say where the person stands
/// (`PERSON_VIEW_STANDING`), at `Person`'s own tags: a stored person decodes
/// into it with every other field skipped, never allocated.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PersonStanding {
    #[prost(string, tag = "1")]
    pub id_number: String,
    #[prost(message, optional, tag = "6")]
    pub birth_date: Option<Date>,
    #[prost(message, optional, tag = "15")]
    pub address: Option<Address>,
    #[prost(enumeration = "RegistrationStatus", tag = "22")]
    pub status: i32,
    #[prost(string, tag = "24")]
    pub father_id_number: String,
    #[prost(string, tag = "25")]
    pub mother_id_number: String,
    #[prost(string, tag = "27")]
    pub guardian_id_number: String,
}

impl From<PersonStanding> for Person {
    fn from(s: PersonStanding) -> Person {
        Person {
            id_number: s.id_number,
            birth_date: s.birth_date,
            address: s.address,
            status: s.status,
            father_id_number: s.father_id_number,
            mother_id_number: s.mother_id_number,
            guardian_id_number: s.guardian_id_number,
            ..Default::default()
        }
    }
}

/// A monotonically increasing number kept in the store (version-checked on update).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    #[prost(uint64, tag = "1")]
    pub next: u64,
}

pub const PERSONS: Table<Person> = Table::new("persons");
/// The same rows read as [`PersonStanding`]s.
pub const PERSON_STANDINGS: Table<PersonStanding> = Table::new("persons");
pub const HOUSEHOLDS: Table<Household> = Table::new("households");
pub const HOUSEHOLD_MEMBERS: Index = Index::new("household_members");
pub const PERSONS_BY_COMMITTEE: Index = Index::new("persons_by_committee");
pub const HOUSEHOLDS_BY_COMMITTEE: Index = Index::new("households_by_committee");
pub const HOUSEHOLDS_BY_ADDRESS: Index = Index::new("households_by_address");
pub const COLLECTIVES: Index = Index::new("collectives");
pub const EVENTS: Table<RegistryEvent> = Table::new("events");
pub const COUNTERS: Table<Counter> = Table::new("counters");
pub const STANDARD_ADDRESSES: Table<StandardAddress> = Table::new("standard_addresses");

pub const SCHEMA: Schema = Schema {
    name: "household",
    tables: &[
        "persons",
        "households",
        "household_members",
        "persons_by_committee",
        "households_by_committee",
        "households_by_address",
        "collectives",
        "events",
        "counters",
        "standard_addresses",
    ],
    write_mostly: &[],
    history: &["persons"],
};

pub fn person_key(id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).build()
}

/// Prefix of every person whose ID number starts with `id_prefix`
/// (e.g. county and birth date: the numbers already given out that day).
pub fn person_prefix(id_prefix: &str) -> Vec<u8> {
    KeyBuilder::new().str_prefix(id_prefix).build()
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

pub fn address_key(committee_code: &str, detail: &str, household_id: &str) -> Vec<u8> {
    KeyBuilder::new().str(committee_code).str(detail).str(household_id).build()
}

/// Every household registered at exactly this address.
pub fn address_prefix(committee_code: &str, detail: &str) -> Vec<u8> {
    KeyBuilder::new().str(committee_code).str(detail).build()
}

pub fn collective_key(committee_code: &str, kind: i32, household_id: &str) -> Vec<u8> {
    KeyBuilder::new()
        .str(committee_code)
        .u8(u8::try_from(kind).unwrap_or(u8::MAX))
        .str(household_id)
        .build()
}

/// Events of one day (the sequence follows); `date_number` orders like the date.
pub fn event_prefix(date: NaiveDate) -> Vec<u8> {
    KeyBuilder::new().u32(date_number(date)).build()
}

/// The sequence number at the end of an event key.
pub fn event_sequence(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|start| key[start..].try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// `yyyymmdd` as a number: compact and in date order.
pub fn date_number(date: NaiveDate) -> u32 {
    u32::try_from(date.year()).unwrap_or(0) * 10_000 + date.month() * 100 + date.day()
}

/// Standard addresses are keyed by road first: a written address names its road.
pub fn standard_address_key(a: &StandardAddress) -> Vec<u8> {
    KeyBuilder::new().str(&a.road).str(&a.committee_code).u32(a.from_number).build()
}

pub fn road_prefix(road: &str) -> Vec<u8> {
    KeyBuilder::new().str(road).build()
}

pub fn counter_key(name: &str) -> Vec<u8> {
    KeyBuilder::new().str(name).build()
}

/// The counter of ID numbers given out in `county` to persons of one sex
/// born on `birth` (GB 11643's sequence: odd for men, even for women).
pub fn id_counter_key(county: &str, birth: NaiveDate, male: bool) -> Vec<u8> {
    counter_key(&format!("id:{county}{}:{}", birth.format("%Y%m%d"), if male { 'm' } else { 'f' }))
}

/// The sequence (positions 15–17) of the ID number a persons key holds.
pub fn id_sequence_of_key(key: &[u8]) -> Option<u64> {
    let id = KeyReader::new(key).str().ok()?;
    id.get(14..17)?.parse().ok()
}
