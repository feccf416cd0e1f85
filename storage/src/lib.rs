//! RocksDB storage for popbase services.
//!
//! Layering follows TiKV/Garage: this crate knows bytes, column families and
//! prost messages, never gRPC or domain rules. Each service opens its own
//! [`Store`] in its own directory with its own [`Schema`].
//!
//! * [`keys`]: the one order-preserving key encoding.
//! * [`Table`] / [`Index`]: typed column families (prost values / key-only entries).
//! * [`Batch`]: an atomic write with optimistic version checks; every committed
//!   batch gets the next sequence number and one entry in the change log.
//! * [`Snapshot`]: a consistent, owned view for long reads and exports.
//! * [`backup`]: RocksDB BackupEngine backups (incremental, checksummed) and restores.

pub mod backup;
mod batch;
mod bulk;
pub mod changelog;
mod commit;
mod engine_figures;
mod error;
pub mod history;
pub mod keys;
mod read;
mod recent_writes;
mod schema;
mod snapshot;
mod store;
#[cfg(test)]
mod test_rows;
mod tuning;
mod value;
mod wal_sync;

pub use batch::Batch;
pub use changelog::{Change, ChangeBatch, ChangeOp};
pub use engine_figures::EngineFigures;
pub use error::{StorageError, StorageResult};
pub use history::history_of;
pub use read::{Read, Versioned};
pub use schema::{Index, Schema, Table};
pub use snapshot::Snapshot;
pub use store::{CommitListener, Durability, StatsEntry, Store, StoreOptions, StoreStats};
