//! The tamper-evident audit trail: every answer and every denial is one
//! record, hash-chained to the one before, written durably before the
//! caller hears anything.

pub mod calls_metric;
pub mod chain;
pub mod check;
pub mod head;
pub mod log;
pub mod manifest;
pub mod query;
mod syncer;
pub mod verify;

pub use chain::{GENESIS, record_hash};
pub use log::{AuditEntry, AuditLog};
