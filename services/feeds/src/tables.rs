//! Schema of the feeds store.
//!
//! | table | key | value |
//! |---|---|---|
//! | `records` | source (u8), record_id | `FeedRecord` |
//! | `records_by_person` | id_number, source (u8), record_id | — |
//! | `schools_by_committee` | committee_code, school_id | — (school districts) |
//! | `history` | source (u8), record_id, as_of (i64) | `FeedRecord`: versions no longer current |
//! | `unmatched` | source (u8), record_id | — (current versions naming an unknown person) |
//! | `insured` | id_number | record ids of the person's current, active medical-insurance records (see `insured.rs`) |
//!
//! `records_by_person` lists every record that ever named the person, so
//! as-of questions find versions a later correction moved elsewhere.

use popbase_proto::feeds::FeedRecord;
use popbase_storage::keys::KeyBuilder;
use popbase_storage::{Index, Schema, Table};

pub const RECORDS: Table<FeedRecord> = Table::new("records");
pub const RECORDS_BY_PERSON: Index = Index::new("records_by_person");
pub const SCHOOLS_BY_COMMITTEE: Index = Index::new("schools_by_committee");

pub const HISTORY: Table<FeedRecord> = Table::new("history");
pub const UNMATCHED: Index = Index::new("unmatched");

pub const SCHEMA: Schema = Schema {
    name: "feeds",
    tables: &[
        "records",
        "records_by_person",
        "schools_by_committee",
        "history",
        "unmatched",
        "insured",
    ],
    write_mostly: &[],
    history: &[],
};

pub fn history_key(source: i32, record_id: &str, as_of_unix_millis: i64) -> Vec<u8> {
    KeyBuilder::new()
        .u8(source_byte(source))
        .str(record_id)
        .i64(as_of_unix_millis)
        .build()
}

/// Sources are small enum numbers; one byte keeps keys short.
pub fn source_byte(source: i32) -> u8 {
    u8::try_from(source).unwrap_or(u8::MAX)
}

pub fn record_key(source: i32, record_id: &str) -> Vec<u8> {
    KeyBuilder::new().u8(source_byte(source)).str(record_id).build()
}

pub fn source_prefix(source: i32) -> Vec<u8> {
    KeyBuilder::new().u8(source_byte(source)).build()
}

pub fn by_person_key(id_number: &str, source: i32, record_id: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).u8(source_byte(source)).str(record_id).build()
}

pub fn person_prefix(id_number: &str) -> Vec<u8> {
    KeyBuilder::new().str(id_number).build()
}

pub fn school_district_key(committee_code: &str, school_id: &str) -> Vec<u8> {
    KeyBuilder::new().str(committee_code).str(school_id).build()
}
