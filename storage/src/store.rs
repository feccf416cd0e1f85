//! The store: one RocksDB directory, one column family per table.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, DataBlockIndexType,
    MemtableFactory, Options, ReadOptions, WaitForCompactOptions, WriteBatch, WriteOptions,
};

use crate::batch::{Batch, Expectation, Op};
use crate::changelog::{Change, ChangeBatch, ChangeHeader, ChangeOp};
use crate::history::history_key;
use crate::read::{ManyVisitor, RawVisitor, Read};
use crate::recent_writes::RecentWrites;
use crate::schema::{CHANGELOG_CF, HISTORY_CF, META_CF, Schema};
use crate::snapshot::Snapshot;
use crate::wal_sync::WalSync;
use crate::{StorageError, StorageResult, value};

const META_STORE_NAME: &[u8] = b"store_name";

fn marker_key(name: &str) -> Vec<u8> {
    [b"marker/".as_slice(), name.as_bytes()].concat()
}

/// Memtable cap of write-mostly tables (see [`Schema::write_mostly`]),
/// which bounds what a read of their unsorted memtable costs.
const WRITE_MOSTLY_BUFFER_BYTES: usize = 16 << 20;
/// How much of a flushed or compacted file may wait in the page cache.
const SYNC_EVERY_BYTES: u64 = 1 << 20;

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

    fn index(self) -> usize {
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
    options: StoreOptions,
    /// Serialises commits: version checks, sequence assignment and the
    /// write; holds the keys the last commits wrote, for those checks.
    commit_lock: Mutex<RecentWrites>,
    last_seq: AtomicU64,
    /// Commits since the store opened, by [`Durability::index`]: what a test
    /// reads to prove which write paths fsync before they acknowledge.
    commits: [AtomicU64; 3],
    /// Told of every committed batch (see [`Store::listen_commits`]).
    listeners: std::sync::RwLock<Vec<CommitListener>>,
    /// Group commit of durable batches (see wal_sync.rs).
    wal: WalSync,
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
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut table_opts = BlockBasedOptions::default();
        table_opts.set_block_cache(&cache);
        table_opts.set_bloom_filter(10.0, false);
        table_opts.set_cache_index_and_filter_blocks(true);
        table_opts.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Index and filter in 4 KiB partitions under a small pinned top
        // level: a look-up reads the one partition its key falls in. With
        // one index and one filter block per file, a Zibo-size store's
        // files carry blocks of megabytes; once the block cache could not
        // hold them all, every miss read and checksummed megabytes again
        // (a feed refresh fell from 55,000 to 5,500 records/s, its CPU in
        // XXH3 and pread; docs/benchmarks.md).
        table_opts.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table_opts.set_partition_filters(true);
        table_opts.set_metadata_block_size(4096);
        table_opts.set_pin_top_level_index_and_filter(true);
        table_opts.set_cache_index_and_filter_blocks_with_high_priority(true);
        // Point reads (every person look-up, a MultiGet of thousands per
        // intake chunk) find their key's restart interval in a data block
        // through a small hash table instead of a binary search, then scan
        // the interval: 4 entries instead of RocksDB's 16, each a cache miss
        // in a block of person records. Searching the block was 40 % of a
        // look-up's time; keys lose some prefix compression (~3 % larger).
        table_opts.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
        table_opts.set_data_block_hash_ratio(0.75);
        table_opts.set_block_restart_interval(4);
        let cf_options = |name: &str| {
            let mut o = Options::default();
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_block_based_table_factory(&table_opts);
            o.set_write_buffer_size(options.write_buffer_bytes);
            if schema.is_write_mostly(name) {
                o.set_memtable_factory(MemtableFactory::Vector);
                // A read of the live memtable sorts a copy of it: about
                // 50 ms for the ~150,000 audit index keys of 16 MiB.
                o.set_write_buffer_size(options.write_buffer_bytes.min(WRITE_MOSTLY_BUFFER_BYTES));
                // What they hold is keyed pseudonyms: random bytes (or hex)
                // that LZ4, which finds repeats but does no entropy coding,
                // cannot shrink; compressing them only cost CPU at every
                // flush and compaction (3 % of an export's, profiled).
                o.set_compression_type(DBCompressionType::None);
            }
            o
        };
        let mut db_opts = cf_options(META_CF);
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_paranoid_checks(true);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(5);
        // Flushes and compactions hand their files to the disk a megabyte
        // at a time instead of in one fsync at the end: a 30 MiB flush
        // synced at once queued the audit log's WAL fsyncs behind it for
        // 30-60 ms, the open-loop person query's p99.9.
        db_opts.set_bytes_per_sync(SYNC_EVERY_BYTES);
        // Commits are serialised by `commit_lock` anyway, and a vector
        // memtable (write-mostly tables) cannot take concurrent writes.
        db_opts.set_allow_concurrent_memtable_write(false);
        let descriptors = schema
            .column_families()
            .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
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

    /// Commits `batch` atomically with the store's default durability.
    /// Returns the batch's sequence number.
    pub fn commit(&self, batch: Batch) -> StorageResult<u64> {
        self.commit_with(batch, self.inner.options.durability)
    }

    /// Commits `batch` atomically with an explicit durability.
    pub fn commit_with(&self, batch: Batch, durability: Durability) -> StorageResult<u64> {
        let seq = self.write(batch, durability)?;
        let inner = &self.inner;
        match durability {
            Durability::Sync => self.sync_wal_through(seq)?,
            Durability::Buffered | Durability::NoWal => inner.wal.advance(seq),
        }
        inner.commits[durability.index()].fetch_add(1, Ordering::Relaxed);
        self.announce(seq);
        Ok(seq)
    }

    /// Writes `batch` to the WAL and the memtables without waiting for an
    /// fsync; [`Store::sync_through`] makes it durable. For a single writer
    /// that must not answer before its writes are durable but need not wait
    /// idle meanwhile (the audit log writes its next group while the WAL
    /// syncs the last). Readable at once, told to followers only once
    /// synced. Counted as a durable commit.
    pub fn commit_unsynced(&self, batch: Batch) -> StorageResult<u64> {
        let seq = self.write(batch, Durability::Sync)?;
        self.inner.commits[Durability::Sync.index()].fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// Returns once the commit `seq` is durable: fsyncs the WAL unless a
    /// sync since its write covered it (one fsync covers every commit
    /// written before it).
    pub fn sync_through(&self, seq: u64) -> StorageResult<()> {
        self.sync_wal_through(seq)?;
        self.announce(seq);
        Ok(())
    }

    fn sync_wal_through(&self, seq: u64) -> StorageResult<()> {
        let inner = &self.inner;
        inner.wal.sync_through(
            seq,
            || inner.last_seq.load(Ordering::SeqCst),
            || inner.db.flush_wal(true).map_err(|e| self.engine(e)),
        )
    }

    /// Tells the commit listeners of `seq`.
    fn announce(&self, seq: u64) {
        if let Ok(listeners) = self.inner.listeners.read() {
            for listener in listeners.iter() {
                listener(seq);
            }
        }
    }

    /// Writes `batch` under the commit lock (WAL unless `NoWal`, never
    /// fsynced here); its sequence number.
    fn write(&self, batch: Batch, durability: Durability) -> StorageResult<u64> {
        let inner = &self.inner;
        let mut recent = self.lock_commits();
        let last = inner.last_seq.load(Ordering::SeqCst);
        // Versions read at a known sequence need reading again only if a
        // later commit wrote one of their keys (see recent_writes.rs).
        let unsure = match batch.read_at {
            Some(read_at) => recent.written_since(read_at, last, batch.expectations.iter().map(|e| recent.hash(e.cf, &e.key))),
            None => true,
        };
        if unsure {
            self.check_expectations(&batch.expectations)?;
        }
        let seq = last + 1;
        // Rows the batch expected absent (and the checks above, or the
        // read sequence, proved still absent) have no before-image to read.
        let known_absent: HashSet<(&str, &[u8])> = if batch.record_values {
            batch
                .expectations
                .iter()
                .filter(|e| e.version.is_none())
                .map(|e| (e.cf, e.key.as_slice()))
                .collect()
        } else {
            HashSet::new()
        };
        let mut write = WriteBatch::default();
        let mut changes = Vec::with_capacity(batch.ops.len());
        let mut written = Vec::with_capacity(batch.ops.len());
        for op in batch.ops {
            match op {
                Op::Put {
                    cf,
                    mut key,
                    payload,
                    append_seq,
                } => {
                    // A key with the commit's sequence appended is new by construction.
                    let absent_before = append_seq || known_absent.contains(&(cf, key.as_slice()));
                    if append_seq {
                        key.extend_from_slice(&seq.to_be_bytes());
                    }
                    written.push(recent.hash(cf, &key));
                    let handle = self.cf(cf)?;
                    let (before, after) = if batch.record_values && payload.is_some() {
                        let before = if absent_before { None } else { self.current_payload(cf, &key)? };
                        (before, payload.clone())
                    } else {
                        (None, None)
                    };
                    match &payload {
                        Some(p) => write.put_cf(handle, &key, value::encode(seq, p)),
                        None => write.put_cf(handle, &key, []),
                    }
                    if batch.record_values && inner.schema.keeps_history(cf) {
                        write.put_cf(self.cf(HISTORY_CF)?, history_key(cf, &key, seq), []);
                    }
                    changes.push(Change {
                        table: cf.to_string(),
                        key,
                        op: ChangeOp::Put as i32,
                        before,
                        after,
                    });
                }
                Op::Delete { cf, key } => {
                    written.push(recent.hash(cf, &key));
                    let handle = self.cf(cf)?;
                    let before = if batch.record_values && !known_absent.contains(&(cf, key.as_slice())) {
                        self.current_payload(cf, &key)?
                    } else {
                        None
                    };
                    write.delete_cf(handle, &key);
                    if batch.record_values && inner.schema.keeps_history(cf) {
                        write.put_cf(self.cf(HISTORY_CF)?, history_key(cf, &key, seq), []);
                    }
                    changes.push(Change {
                        table: cf.to_string(),
                        key,
                        op: ChangeOp::Delete as i32,
                        before,
                        after: None,
                    });
                }
            }
        }
        let entry = ChangeBatch {
            seq,
            unix_millis: now_millis(),
            actor: batch.actor,
            reason: batch.reason,
            changes,
        };
        write.put_cf(self.cf(CHANGELOG_CF)?, seq.to_be_bytes(), entry.encode_to_vec());
        // A durable batch is synced after the lock is released, together
        // with those written meanwhile (group commit, wal_sync.rs).
        let mut write_opts = WriteOptions::default();
        if durability == Durability::NoWal {
            write_opts.disable_wal(true);
        }
        inner.db.write_opt(write, &write_opts).map_err(|e| self.engine(e))?;
        inner.last_seq.store(seq, Ordering::SeqCst);
        recent.record(seq, written);
        Ok(seq)
    }

    /// Checks a batch's expected versions (under the commit lock): one
    /// batched read per table rather than a point read per key, since an
    /// ingest chunk expects a thousand of them.
    fn check_expectations(&self, expectations: &[Expectation]) -> StorageResult<()> {
        let mut tables: Vec<&'static str> = expectations.iter().map(|e| e.cf).collect();
        tables.sort_unstable();
        tables.dedup();
        for cf in tables {
            let expected: Vec<&Expectation> = expectations.iter().filter(|e| e.cf == cf).collect();
            let keys: Vec<Vec<u8>> = expected.iter().map(|e| e.key.clone()).collect();
            let mut found = Vec::with_capacity(keys.len());
            self.inner.get_many(cf, &ReadOptions::default(), &keys, &mut |raw| {
                found.push(raw.map(|raw| value::decode(cf, raw).map(|(version, _)| version)).transpose()?);
                Ok(())
            })?;
            if let Some((expectation, found)) = expected.iter().zip(found).find(|(e, found)| *found != e.version) {
                return Err(StorageError::Conflict {
                    table: cf.to_string(),
                    expected: expectation.version,
                    found,
                });
            }
        }
        Ok(())
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

    fn lock_commits(&self) -> MutexGuard<'_, RecentWrites> {
        // A panic while holding the lock cannot leave RocksDB half-written
        // (writes are one atomic batch), so a poisoned lock is safe to reuse.
        self.inner.commit_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current_payload(&self, cf: &'static str, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
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

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
