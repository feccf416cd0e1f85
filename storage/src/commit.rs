//! The commit path: a batch checked against the versions it read, given
//! the next sequence, written with its change-log entry and history rows
//! under the commit lock, then made durable by a WAL fsync shared with the
//! commits written meanwhile (wal_sync.rs) and told to the listeners.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use prost::Message;
use rocksdb::{ReadOptions, WriteBatch, WriteOptions};

use crate::batch::{Batch, Expectation, Op};
use crate::changelog::{Change, ChangeBatch, ChangeOp};
use crate::history::history_key;
use crate::schema::{CHANGELOG_CF, HISTORY_CF};
use crate::store::{Durability, Store, now_millis};
use crate::{StorageError, StorageResult, value};

impl Store {
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
            let (cf, key, op, before, after) = match op {
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
                    (cf, key, ChangeOp::Put, before, after)
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
                    (cf, key, ChangeOp::Delete, before, None)
                }
            };
            // Either way the key's history gets a row and the change log an entry.
            if batch.record_values && inner.schema.keeps_history(cf) {
                write.put_cf(self.cf(HISTORY_CF)?, history_key(cf, &key, seq), []);
            }
            changes.push(Change {
                table: cf.to_string(),
                key,
                op: op as i32,
                before,
                after,
            });
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
}
