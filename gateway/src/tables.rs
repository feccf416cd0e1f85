//! The ledger's store (held by the `ledger` role, or in-process in
//! all-in-one mode): consents, the audit trail, quota use and
//! change-notification subscriptions.

use popbase_proto::gateway::{AuditRecord, ChainHead, Consent, Subscription, Usage};
use popbase_storage::keys::KeyBuilder;
use popbase_storage::{Index, Schema, Table};

/// (subject pseudonym, department, interface, purpose) → the grant.
pub const CONSENTS: Table<Consent> = Table::new("consents");
/// seq (big-endian u64) → record; append-only.
pub const AUDIT: Table<AuditRecord> = Table::new("audit");
/// (subject pseudonym, seq): a citizen's accesses.
pub const AUDIT_BY_SUBJECT: Index = Index::new("audit_by_subject");
/// (bucket, seq) → the subjects of an export's BATCH record that fall in
/// the bucket, as sorted 16-byte pseudonyms (see [`crate::audit::manifest`]).
pub const EXPORT_SUBJECTS: Table<Vec<u8>> = Table::new("export_subjects");
/// (yyyymmdd, department, interface) → counts.
pub const USAGE: Table<Usage> = Table::new("usage");
/// (yyyymmdd, department) → quota units granted to gateway replicas that day.
pub const QUOTA_USE: Table<QuotaUse> = Table::new("quota_use");
/// subscription id → change-notification subscription (its acknowledged position included).
pub const SUBSCRIPTIONS: Table<Subscription> = Table::new("subscriptions");
/// (subscription id, subject pseudonym): a roster subscription's persons.
pub const ROSTERS: Index = Index::new("subscription_rosters");
/// "last" → where the ledger's own check of the chain got to.
pub const AUDIT_VERIFIED: Table<popbase_proto::gateway::ChainVerification> = Table::new("audit_verified");
/// "current" and ("v", version) → an applied sharing catalogue.
pub const CATALOGUES: Table<popbase_proto::ledger::StoredCatalogue> = Table::new("catalogues");
/// The newest record's seq and hash, kept with every append.
pub const AUDIT_HEAD: Table<ChainHead> = Table::new("audit_head");

pub const SCHEMA: Schema = Schema {
    name: "ledger",
    tables: &[
        "consents",
        "audit",
        "audit_by_subject",
        "export_subjects",
        "usage",
        "audit_head",
        "quota_use",
        "subscriptions",
        "subscription_rosters",
        "catalogues",
        "audit_verified",
    ],
    // Every answer writes its subjects' index keys, every export batch its
    // manifest rows; only a citizen's "who looked at me" query reads them.
    write_mostly: &["audit_by_subject", "export_subjects"],
    history: &[],
};

pub const HEAD_KEY: &[u8] = b"head";

/// Quota units counted for one department on one day.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuotaUse {
    #[prost(uint64, tag = "1")]
    pub used: u64,
}

pub fn quota_key(day: u32, department: &str) -> Vec<u8> {
    KeyBuilder::new().u32(day).str(department).build()
}

pub fn consent_key(subject: &str, department: &str, interface: &str, purpose: &str) -> Vec<u8> {
    KeyBuilder::new().str(subject).str(department).str(interface).str(purpose).build()
}

/// Keys about one subject pseudonym: its consents, its audit index entries.
pub fn subject_prefix(subject: &str) -> Vec<u8> {
    KeyBuilder::new().str(subject).build()
}

pub fn audit_key(seq: u64) -> Vec<u8> {
    KeyBuilder::new().u64(seq).build()
}

pub fn subject_access_key(subject: &str, seq: u64) -> Vec<u8> {
    KeyBuilder::new().str(subject).u64(seq).build()
}

pub fn export_subjects_key(bucket: u8, seq: u64) -> Vec<u8> {
    KeyBuilder::new().u32(u32::from(bucket)).u64(seq).build()
}

/// Manifest rows of one bucket, every export's.
pub fn export_subjects_prefix(bucket: u8) -> Vec<u8> {
    KeyBuilder::new().u32(u32::from(bucket)).build()
}

pub fn usage_key(day: u32, department: &str, interface: &str) -> Vec<u8> {
    KeyBuilder::new().u32(day).str(department).str(interface).build()
}

/// Usage keys of one day (yyyymmdd).
pub fn usage_day_prefix(day: u32) -> Vec<u8> {
    KeyBuilder::new().u32(day).build()
}

pub fn subscription_key(id: &str) -> Vec<u8> {
    KeyBuilder::new().str(id).build()
}

pub fn roster_key(id: &str, subject: &str) -> Vec<u8> {
    KeyBuilder::new().str(id).str(subject).build()
}
