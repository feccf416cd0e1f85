//! Backups through RocksDB's own BackupEngine.
//!
//! A backup directory (an "engine directory") holds any number of backups
//! of one store. Backups in one directory share their SST files (a file is
//! copied once, then referenced), so a nightly backup copies only what
//! changed; every file is stored with its checksum, which a restore checks
//! as it copies. Unlike a checkpoint (hard links on the store's own
//! volume), a backup directory is meant to live on another volume: losing
//! the data volume must not lose the backups.
//!
//! Retention is "keep the newest N" per directory (the engine can purge no
//! other way), so callers wanting daily and weekly tiers keep one directory
//! per tier.

use std::path::Path;

use rocksdb::Env;
use rocksdb::backup::{BackupEngine, BackupEngineOptions, RestoreOptions};

use crate::{StorageError, StorageResult, Store};

/// One backup kept in an engine directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// Always-increasing within its directory.
    pub id: u32,
    /// When the backup was taken, Unix seconds.
    pub timestamp: i64,
    /// Bytes of the files this backup needs (shared files counted in each).
    pub size_bytes: u64,
    pub files: u32,
}

/// What [`Store::backup_into`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupMade {
    pub info: BackupInfo,
    /// Every batch with a sequence up to this one is in the backup (later
    /// ones may be too: writes go on while the files are copied).
    pub seq: u64,
}

/// Left in a store by `popbase restore`: which restore this store comes
/// from and where its change log stood then. A follower that has read this
/// store's log by sequence compares the epoch with the one it last saw: a
/// new epoch means sequences past `at_seq` may name other batches than the
/// ones it read, so it goes back to `at_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreMark {
    /// The restore's time, Unix milliseconds; never 0.
    pub epoch: u64,
    pub at_seq: u64,
}

const RESTORE_MARK: &[u8] = b"restored";

fn open_engine(dir: &Path) -> StorageResult<BackupEngine> {
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let engine_error = |e: rocksdb::Error| StorageError::from_engine(dir, e);
    let mut options = BackupEngineOptions::new(dir).map_err(engine_error)?;
    // fsync every copied file: a backup that a crash can half-write is not one.
    options.set_sync(true);
    let env = Env::new().map_err(engine_error)?;
    BackupEngine::open(&options, &env).map_err(engine_error)
}

fn infos(engine: &BackupEngine) -> Vec<BackupInfo> {
    let mut infos: Vec<BackupInfo> = engine
        .get_backup_info()
        .into_iter()
        .map(|i| BackupInfo {
            id: i.backup_id,
            timestamp: i.timestamp,
            size_bytes: i.size,
            files: i.num_files,
        })
        .collect();
    infos.sort_by_key(|i| i.id);
    infos
}

impl Store {
    /// Adds a backup of this store to the engine directory `dir` (created
    /// if missing) and then keeps only the newest `keep` backups there.
    ///
    /// Writes go on meanwhile: the engine flushes the memtables and copies
    /// the live files. Blocking: call it off the async workers.
    pub fn backup_into(&self, dir: impl AsRef<Path>, keep: usize) -> StorageResult<BackupMade> {
        let dir = dir.as_ref();
        // Read before the flush: everything committed by now is in the files copied.
        let seq = self.last_seq();
        let mut engine = open_engine(dir)?;
        engine
            .create_new_backup_flush(&self.inner.db, true)
            .map_err(|e| StorageError::from_engine(dir, e))?;
        let newest = infos(&engine).into_iter().next_back().ok_or_else(|| {
            StorageError::Engine(format!(
                "backup engine at {} lists no backup right after creating one",
                dir.display()
            ))
        })?;
        engine
            .purge_old_backups(keep.max(1))
            .map_err(|e| StorageError::from_engine(dir, e))?;
        tracing::info!(store = self.name(), dir = %dir.display(), seq, backup_id = newest.id, "backup created");
        Ok(BackupMade { info: newest, seq })
    }
}

impl Store {
    /// Marks this store as restored now, at its current sequence.
    pub fn mark_restored(&self) -> StorageResult<RestoreMark> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        let mark = RestoreMark {
            epoch: millis.max(1),
            at_seq: self.last_seq(),
        };
        let value = [mark.epoch.to_be_bytes(), mark.at_seq.to_be_bytes()].concat();
        self.put_meta(RESTORE_MARK, &value)?;
        Ok(mark)
    }

    /// The last restore this store comes from; `None` if it never was restored.
    pub fn restore_mark(&self) -> StorageResult<Option<RestoreMark>> {
        let Some(raw) = self.get_meta(RESTORE_MARK)? else {
            return Ok(None);
        };
        let (Some(epoch), Some(at_seq)) = (raw.get(..8), raw.get(8..16)) else {
            return Err(StorageError::decode("_meta", "a restore mark of the wrong length"));
        };
        let number = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        Ok(Some(RestoreMark {
            epoch: number(epoch),
            at_seq: number(at_seq),
        }))
    }
}

/// The backups kept in the engine directory `dir`, oldest first; none when
/// `dir` does not exist (it is never created here).
pub fn backups_in(dir: impl AsRef<Path>) -> StorageResult<Vec<BackupInfo>> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(infos(&open_engine(dir)?))
}

/// Restores backup `id` of the engine directory `dir` into `target`, which
/// must not exist or be empty (a restore never overwrites a store). The
/// engine checks every file's checksum as it copies it; a restore that
/// fails leaves no partial store behind.
pub fn restore_backup(dir: impl AsRef<Path>, id: u32, target: impl AsRef<Path>) -> StorageResult<()> {
    let (dir, target) = (dir.as_ref(), target.as_ref());
    if !dir.is_dir() {
        return Err(StorageError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no backup directory here"),
        });
    }
    let occupied = std::fs::read_dir(target)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied {
        return Err(StorageError::Io {
            path: target.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "not empty: a restore never overwrites a store; move it away first",
            ),
        });
    }
    let mut engine = open_engine(dir)?;
    if !infos(&engine).iter().any(|i| i.id == id) {
        return Err(StorageError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("no backup {id} here")),
        });
    }
    engine.verify_backup(id).map_err(|e| StorageError::from_engine(dir, e))?;
    // Into a sibling first, renamed into place only when whole: a failed
    // restore's copy threads may still be writing after it returns (seen in
    // CI: the target was removed, then reappeared), so the target itself is
    // never written until the store in it is complete.
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = target.with_file_name(format!("{name}.restoring"));
    let io = |path: &Path, source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
    }
    let restored = engine
        .restore_from_backup(&staging, &staging, &RestoreOptions::default(), id)
        .map_err(|e| StorageError::from_engine(target, e));
    if let Err(e) = restored {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if target.exists() {
        // Missing or empty (checked above): make way for the rename.
        std::fs::remove_dir(target).map_err(|e| io(target, e))?;
    }
    std::fs::rename(&staging, target).map_err(|e| io(target, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::{ROWS, SCHEMA, write};
    use crate::{Read, StoreOptions};

    #[test]
    fn backups_are_incremental_restorable_and_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("store"), SCHEMA, StoreOptions::default()).expect("open");
        let engine_dir = dir.path().join("backups");
        assert!(backups_in(&engine_dir).expect("list").is_empty(), "no directory, no backups");
        assert!(!engine_dir.exists(), "listing creates nothing");

        write(&store, 1);
        let first = store.backup_into(&engine_dir, 2).expect("backup 1");
        write(&store, 2);
        let second = store.backup_into(&engine_dir, 2).expect("backup 2");
        assert!(second.seq > first.seq);
        write(&store, 3);
        let third = store.backup_into(&engine_dir, 2).expect("backup 3");
        let kept: Vec<u32> = backups_in(&engine_dir).expect("list").iter().map(|i| i.id).collect();
        assert_eq!(kept, vec![second.info.id, third.info.id], "only the newest two are kept");

        // Restore the middle one: it holds rows 1 and 2, not 3.
        let restored = dir.path().join("restored");
        restore_backup(&engine_dir, second.info.id, &restored).expect("restore");
        let copy = Store::open(&restored, SCHEMA, StoreOptions::default()).expect("open restored");
        assert!(copy.last_seq() >= second.seq);
        assert_eq!(copy.restore_mark().expect("mark"), None);
        let mark = copy.mark_restored().expect("mark");
        assert_eq!(copy.restore_mark().expect("mark"), Some(mark));
        assert_eq!(mark.at_seq, copy.last_seq());
        assert!(copy.get(&ROWS, &2u64.to_be_bytes()).expect("get").is_some());
        assert!(copy.get(&ROWS, &3u64.to_be_bytes()).expect("get").is_none());

        // Never over a store, never from a purged backup.
        let again = restore_backup(&engine_dir, third.info.id, &restored).expect_err("occupied");
        assert!(again.to_string().contains("never overwrites"), "{again}");
        let purged = restore_backup(&engine_dir, first.info.id, dir.path().join("other")).expect_err("purged");
        assert!(purged.to_string().contains("no backup"), "{purged}");
    }
}
