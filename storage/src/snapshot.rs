//! Owned, consistent snapshots.
//!
//! An export streams millions of rows from one point in time while writes go
//! on. RocksDB snapshots borrow the DB, which does not fit a stream held by a
//! tokio task; this type owns an `Arc` of the store alongside the snapshot
//! (the pattern TiKV uses), so it can move across threads and outlive the
//! function that made it.

use std::sync::Arc;

use rocksdb::{DB, ReadOptions, SnapshotWithThreadMode};

use crate::read::{ManyVisitor, RawVisitor, Read};
use crate::store::{Inner, changes_since};
use crate::{ChangeBatch, StorageError, StorageResult};

pub struct Snapshot {
    // Declared first so it is dropped (released) before `inner` can drop the DB.
    snapshot: SnapshotWithThreadMode<'static, DB>,
    inner: Arc<Inner>,
    seq: u64,
}

// SAFETY: a RocksDB snapshot is an immutable handle that RocksDB allows to be
// used from any thread; the DB it refers to is kept alive by `inner`.
unsafe impl Send for Snapshot {}
unsafe impl Sync for Snapshot {}

impl Snapshot {
    pub(crate) fn new(inner: Arc<Inner>, seq: u64) -> Self {
        let snapshot = inner.db.snapshot();
        // SAFETY: the snapshot borrows `inner.db`, which lives on the heap inside
        // the `Arc` this struct holds, never moves, and outlives the snapshot
        // because `snapshot` is dropped before `inner` (field order).
        let snapshot: SnapshotWithThreadMode<'static, DB> = unsafe { std::mem::transmute(snapshot) };
        Self { snapshot, inner, seq }
    }

    /// Sequence number of the last batch visible in this snapshot.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Change log entries in `(after, seq]` as this snapshot sees them.
    pub fn changes_since(&self, after: u64, limit: usize) -> StorageResult<Vec<ChangeBatch>> {
        changes_since(self, after, None, limit)
    }

    fn read_options(&self) -> ReadOptions {
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&self.snapshot);
        opts
    }
}

impl Read for Snapshot {
    fn raw_get(&self, cf: &str, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.inner
            .db
            .get_cf_opt(self.inner.cf(cf)?, key, &self.read_options())
            .map_err(|e| StorageError::from_engine(&self.inner.path, e))
    }

    fn raw_get_many(&self, cf: &str, keys: &[Vec<u8>], visit: &mut ManyVisitor<'_>) -> StorageResult<()> {
        self.inner.get_many(cf, &self.read_options(), keys, visit)
    }

    fn raw_scan(&self, cf: &str, from: &[u8], until: Option<&[u8]>, visit: &mut RawVisitor<'_>) -> StorageResult<()> {
        self.inner.scan(cf, self.read_options(), from, until, visit)
    }
}
