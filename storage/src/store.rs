//! The store: one RocksDB directory, one column family per table.
//!
//! How a batch is committed is in commit.rs, how the engine is tuned in
//! tuning.rs; this file opens the store and answers everything else asked
//! of it (reads, the change log, flushes, checkpoints, figures).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use rocksdb::{ColumnFamily, DB, ReadOptions, WaitForCompactOptions, WriteBatch, WriteOptions};

use crate::changelog::{ChangeBatch, ChangeHeader};
use crate::read::{ManyVisitor, RawVisitor, Read};
use crate::recent_writes::RecentWrites;
use crate::schema::{CHANGELOG_CF, META_CF, Schema};
use crate::snapshot::Snapshot;
use crate::tuning;
use crate::wal_sync::WalSync;
use crate::{StorageError, StorageResult, value};

const META_STORE_NAME: &[u8] = b"store_name";

fn marker_key(name: &str) -> Vec<u8> {
    [b"marker/".as_slice(), name.as_bytes()].concat()
}

/// How durable a commit must be before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL written and fsynced: acknowledged means durable (the default).
    Sync,
    /// WAL written, fsync left to the OS: survives a process crash, not a power loss.
    Buffered,
    /// No WAL: bulk imports only, followed by [`Store::flush`].
    NoWal,
}

impl Durability {
    pub const ALL: [Durability; 3] = [Durability::Sync, Durability::Buffered, Durability::NoWal];

    /// A metric label: `sync`, `buffered`, `no_wal`.
    pub fn name(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Buffered => "buffered",
            Durability::NoWal => "no_wal",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Default durability of [`Store::commit`].
    pub durability: Durability,
    /// Shared LRU block cache size in bytes.
    pub block_cache_bytes: usize,
    /// Memtable size per column family in bytes.
    pub write_buffer_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) db: DB,
    pub(crate) path: PathBuf,
    pub(crate) schema: Schema,
    pub(crate) options: StoreOptions,
    /// Serialises commits: version checks, sequence assignment and the
    /// write; holds the keys the last commits wrote, for those checks.
    pub(crate) commit_lock: Mutex<RecentWrites>,
    pub(crate) last_seq: AtomicU64,
    /// Commits since the store opened, by [`Durability::index`]: what a test
    /// reads to prove which write paths fsync before they acknowledge.
    pub(crate) commits: [AtomicU64; 3],
    /// Told of every committed batch (see [`Store::listen_commits`]).
    pub(crate) listeners: std::sync::RwLock<Vec<CommitListener>>,
    /// Group commit of durable batches (see wal_sync.rs).
    pub(crate) wal: WalSync,
}

/// Called with the sequence of each batch once it is committed and durable,
/// on the committing thread (outside the commit lock, so possibly out of
/// sequence order): it must only signal (wake a waiter), never read or write
/// the store.
pub type CommitListener = Arc<dyn Fn(u64) + Send + Sync>;

/// A cheap-to-clone handle on an open store.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// Per-table figures for operators.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsEntry {
    pub table: String,
    pub estimated_keys: u64,
    pub sst_bytes: u64,
    pub memtable_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoreStats {
    pub store: String,
    pub path: PathBuf,
    pub last_seq: u64,
    pub tables: Vec<StatsEntry>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` with `schema`'s tables.
    ///
    /// Fails with [`StorageError::Locked`] when another process has it open,
    /// [`StorageError::Corrupt`] when RocksDB finds damage, and
    /// [`StorageError::WrongStore`] when the directory belongs to another schema.
    pub fn open(path: impl AsRef<Path>, schema: Schema, options: StoreOptions) -> StorageResult<Store> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|source| StorageError::Io {
            path: path.clone(),
            source,
        })?;
        let (db_opts, descriptors) = tuning::engine_options(&schema, &options);
        let db = DB::open_cf_descriptors(&db_opts, &path, descriptors).map_err(|e| StorageError::from_engine(&path, e))?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                path,
                schema,
                options,
                commit_lock: Mutex::new(RecentWrites::default()),
                last_seq: AtomicU64::new(0),
                commits: Default::default(),
                listeners: Default::default(),
                wal: WalSync::default(),
            }),
        };
        store.check_store_name()?;
        let last = store.read_last_seq()?;
        store.inner.last_seq.store(last, Ordering::SeqCst);
        store.inner.wal.advance(last);
        tracing::info!(store = schema.name, path = %store.inner.path.display(), last_seq = last, "store opened");
        Ok(store)
    }

    pub fn name(&self) -> &'static str {
        self.inner.schema.name
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sequence number of the last committed batch (0 for an empty store).
    pub fn last_seq(&self) -> u64 {
        self.inner.last_seq.load(Ordering::SeqCst)
    }

    /// Adds `listener` to those told of each commit from now on: a change
    /// feed waiting for the next batch wakes at once instead of polling.
    pub fn listen_commits(&self, listener: CommitListener) {
        if let Ok(mut listeners) = self.inner.listeners.write() {
            listeners.push(listener);
        }
    }

    /// WAL fsyncs made for durable commits since the store opened: with
    /// [`Store::commits_by_durability`], how many commits each sync served.
    pub fn wal_syncs(&self) -> u64 {
        self.inner.wal.syncs()
    }

    /// The highest sequence whose commit is durable: the change log is read
    /// up to it (see wal_sync.rs).
    pub fn durable_seq(&self) -> u64 {
        self.inner.wal.durable()
    }

    /// Commits since the store opened, per durability.
    pub fn commits_by_durability(&self) -> [(Durability, u64); 3] {
        Durability::ALL.map(|d| (d, self.inner.commits[d.index()].load(Ordering::Relaxed)))
    }

    /// Whether the one-time step `name` (say, the backfill of a table added
    /// after stores were created) is recorded as done in this store.
    pub fn marker(&self, name: &str) -> StorageResult<bool> {
        Ok(self.get_meta(&marker_key(name))?.is_some())
    }

    /// Records the one-time step `name` as done, durably.
    pub fn set_marker(&self, name: &str) -> StorageResult<()> {
        self.put_meta(&marker_key(name), &[])
    }

    pub(crate) fn get_meta(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.inner.db.get_cf(self.cf(META_CF)?, key).map_err(|e| self.engine(e))
    }

    /// Writes one `_meta` entry, fsynced (outside the change log: it is
    /// about the store, not its data).
    pub(crate) fn put_meta(&self, key: &[u8], value: &[u8]) -> StorageResult<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(META_CF)?, key, value);
        self.inner.db.write_opt(batch, &opts).map_err(|e| self.engine(e))
    }

    /// A consistent view of the store as of the last committed batch.
    pub fn snapshot(&self) -> Snapshot {
        let _guard = self.lock_commits();
        Snapshot::new(Arc::clone(&self.inner), self.last_seq())
    }

    /// Change log entries with sequence numbers greater than `after`, at most `limit`.
    pub fn changes_since(&self, after: u64, limit: usize) -> StorageResult<Vec<ChangeBatch>> {
        changes_since(self, after, Some(self.durable_seq()), limit)
    }

    /// Like [`Store::changes_since`], but fully decodes only the batches whose
    /// reason `keep` accepts (the others are read up to their header). Scans
    /// at most `limit` batches; returns the kept ones and the last sequence
    /// scanned (`after` when there was nothing new).
    pub fn changes_since_where(&self, after: u64, limit: usize, keep: impl Fn(&str) -> bool) -> StorageResult<(Vec<ChangeBatch>, u64)> {
        let (mut kept, mut last, mut scanned) = (Vec::new(), after, 0usize);
        if limit == 0 {
            return Ok((kept, last));
        }
        let decode_error = |e: prost::DecodeError| StorageError::decode(CHANGELOG_CF, e);
        let (from, until) = changelog_range(after, Some(self.durable_seq()));
        self.raw_scan(CHANGELOG_CF, &from, until.as_deref(), &mut |_, v| {
            let header = ChangeHeader::decode(v).map_err(decode_error)?;
            last = header.seq;
            if keep(&header.reason) {
                kept.push(ChangeBatch::decode(v).map_err(decode_error)?);
            }
            scanned += 1;
            Ok(scanned < limit)
        })?;
        Ok((kept, last))
    }

    /// When the first batch after sequence `after` was committed (Unix
    /// milliseconds), or `None` when there is none yet.
    pub fn committed_millis_after(&self, after: u64) -> StorageResult<Option<i64>> {
        let mut millis = None;
        let (from, until) = changelog_range(after, Some(self.durable_seq()));
        self.raw_scan(CHANGELOG_CF, &from, until.as_deref(), &mut |_, v| {
            let header = ChangeHeader::decode(v).map_err(|e| StorageError::decode(CHANGELOG_CF, e))?;
            millis = Some(header.unix_millis);
            Ok(false)
        })?;
        Ok(millis)
    }

    /// Writes memtables and the WAL to disk: called on shutdown and after bulk imports.
    pub fn flush(&self) -> StorageResult<()> {
        let db = &self.inner.db;
        db.flush_wal(true).map_err(|e| self.engine(e))?;
        for name in self.inner.schema.column_families() {
            db.flush_cf(self.cf(name)?).map_err(|e| self.engine(e))?;
        }
        Ok(())
    }

    /// Flushes every memtable and waits until the engine has no flush or
    /// compaction left to do. A bulk load ends here, so the stores it
    /// leaves are at rest: a generated city left its year of life events in
    /// the WAL, and every start of a copy of it replayed the log and spent
    /// its first 9 s compacting (22 compactions, 5.5 s of CPU, 329 MB
    /// written at Zibo's size) under whatever was measured first.
    ///
    /// It also leaves no file for the engine to rewrite once served. Files
    /// on the last level that still carry sequence numbers are rewritten
    /// with them zeroed once no snapshot needs them, and the engine looks
    /// for such files only when a snapshot is released, which a served
    /// store does all the time. Every start of a copy of a generated Zibo
    /// rewrote 22 files that way (3.9 s of CPU in its first 8 s, under
    /// whatever was measured first). Releasing a snapshot here has that
    /// happen now, and the second wait sees it done.
    pub fn settle(&self) -> StorageResult<()> {
        // Flushed here (WAL synced, every table), so the wait itself need not flush.
        self.flush()?;
        let wait = WaitForCompactOptions::default();
        self.inner.db.wait_for_compact(&wait).map_err(|e| self.engine(e))?;
        drop(self.inner.db.snapshot());
        self.inner.db.wait_for_compact(&wait).map_err(|e| self.engine(e))
    }

    /// Creates an online, consistent checkpoint (hard-linked SST files plus
    /// manifest) in `dir`, which must not exist yet. The checkpoint opens as a
    /// normal store: restoring is copying it back while the service is stopped.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> StorageResult<u64> {
        let dir = dir.as_ref();
        let _guard = self.lock_commits();
        let seq = self.last_seq();
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&self.inner.db).map_err(|e| self.engine(e))?;
        checkpoint.create_checkpoint(dir).map_err(|e| StorageError::from_engine(dir, e))?;
        // Not the directory: its name is the caller's label.
        tracing::info!(store = self.name(), seq, "checkpoint created");
        Ok(seq)
    }

    pub fn stats(&self) -> StorageResult<StoreStats> {
        let db = &self.inner.db;
        let mut tables = Vec::new();
        for name in self.inner.schema.column_families() {
            let cf = self.cf(name)?;
            let prop = |p: &str| -> StorageResult<u64> { Ok(db.property_int_value_cf(cf, p).map_err(|e| self.engine(e))?.unwrap_or(0)) };
            tables.push(StatsEntry {
                table: name.to_string(),
                estimated_keys: prop("rocksdb.estimate-num-keys")?,
                sst_bytes: prop("rocksdb.total-sst-files-size")?,
                memtable_bytes: prop("rocksdb.cur-size-all-mem-tables")?,
            });
        }
        Ok(StoreStats {
            store: self.name().to_string(),
            path: self.inner.path.clone(),
            last_seq: self.last_seq(),
            tables,
        })
    }

    pub(crate) fn cf(&self, name: &str) -> StorageResult<&ColumnFamily> {
        self.inner.cf(name)
    }

    pub(crate) fn engine(&self, err: rocksdb::Error) -> StorageError {
        StorageError::from_engine(&self.inner.path, err)
    }

    pub(crate) fn lock_commits(&self) -> MutexGuard<'_, RecentWrites> {
        // A panic while holding the lock cannot leave RocksDB half-written
        // (writes are one atomic batch), so a poisoned lock is safe to reuse.
        self.inner.commit_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn current_payload(&self, cf: &'static str, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        match self.inner.db.get_cf(self.cf(cf)?, key).map_err(|e| self.engine(e))? {
            // Index entries have empty values: nothing to keep as an image.
            Some(raw) if raw.is_empty() => Ok(None),
            Some(raw) => Ok(Some(value::decode(cf, &raw)?.1.to_vec())),
            None => Ok(None),
        }
    }

    fn check_store_name(&self) -> StorageResult<()> {
        match self.get_meta(META_STORE_NAME)? {
            Some(found) if found != self.name().as_bytes() => Err(StorageError::WrongStore {
                path: self.inner.path.clone(),
                expected: self.name().to_string(),
                found: String::from_utf8_lossy(&found).into_owned(),
            }),
            Some(_) => Ok(()),
            None => self.put_meta(META_STORE_NAME, self.name().as_bytes()),
        }
    }

    fn read_last_seq(&self) -> StorageResult<u64> {
        let mut iter = self.inner.db.raw_iterator_cf(self.cf(CHANGELOG_CF)?);
        iter.seek_to_last();
        iter.status().map_err(|e| self.engine(e))?;
        match iter.key() {
            Some(key) if key.len() == 8 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(key);
                Ok(u64::from_be_bytes(bytes))
            }
            Some(_) => Err(StorageError::Corrupt {
                path: self.inner.path.clone(),
                detail: "change log key is not a sequence number".into(),
            }),
            None => Ok(0),
        }
    }
}

impl Inner {
    pub(crate) fn cf(&self, name: &str) -> StorageResult<&ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| StorageError::UnknownTable(name.to_string()))
    }

    /// The batched point read both `Store` and `Snapshot` use, with their read options.
    pub(crate) fn get_many(&self, cf: &str, read_opts: &ReadOptions, keys: &[Vec<u8>], visit: &mut ManyVisitor<'_>) -> StorageResult<()> {
        let answers = self.db.batched_multi_get_cf_opt(self.cf(cf)?, keys, false, read_opts);
        for answer in answers {
            let value = answer.map_err(|e| StorageError::from_engine(&self.path, e))?;
            visit(value.as_deref())?;
        }
        Ok(())
    }

    /// The raw scan both `Store` and `Snapshot` use, with their read options.
    pub(crate) fn scan(
        &self,
        cf: &str,
        mut read_opts: ReadOptions,
        from: &[u8],
        until: Option<&[u8]>,
        visit: &mut RawVisitor<'_>,
    ) -> StorageResult<()> {
        if let Some(until) = until {
            read_opts.set_iterate_upper_bound(until.to_vec());
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(cf)?, read_opts);
        iter.seek(from);
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            if !visit(k, v)? {
                return Ok(());
            }
            iter.next();
        }
        iter.status().map_err(|e| StorageError::from_engine(&self.path, e))
    }
}

impl Read for Store {
    fn raw_get(&self, cf: &str, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.inner.db.get_cf(self.cf(cf)?, key).map_err(|e| self.engine(e))
    }

    fn raw_get_many(&self, cf: &str, keys: &[Vec<u8>], visit: &mut ManyVisitor<'_>) -> StorageResult<()> {
        self.inner.get_many(cf, &ReadOptions::default(), keys, visit)
    }

    fn raw_scan(&self, cf: &str, from: &[u8], until: Option<&[u8]>, visit: &mut RawVisitor<'_>) -> StorageResult<()> {
        self.inner.scan(cf, ReadOptions::default(), from, until, visit)
    }
}

/// Change log entries after `after` (and up to `through`), read through any view.
pub(crate) fn changes_since(view: &impl Read, after: u64, through: Option<u64>, limit: usize) -> StorageResult<Vec<ChangeBatch>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let (from, until) = changelog_range(after, through);
    view.raw_scan(CHANGELOG_CF, &from, until.as_deref(), &mut |_, v| {
        let entry = ChangeBatch::decode(v).map_err(|e| StorageError::decode(CHANGELOG_CF, e))?;
        out.push(entry);
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// The change-log keys of sequences `after + 1 ..= through`.
fn changelog_range(after: u64, through: Option<u64>) -> ([u8; 8], Option<Vec<u8>>) {
    let until = through.and_then(|t| t.checked_add(1)).map(|end| end.to_be_bytes().to_vec());
    (after.saturating_add(1).to_be_bytes(), until)
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
