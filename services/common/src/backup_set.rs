//! Backup sets: what `popbase backup` leaves on a role's backup volume and
//! what `popbase restore` reads back.
//!
//! Layout under the role's backup directory (`backup_dir`, a volume
//! other than the data's):
//!
//! ```text
//! daily/<store>/    RocksDB BackupEngine directory, newest `keep_daily` kept
//! weekly/<store>/   the same, one backup a week, newest `keep_weekly` kept
//! sets/<label>.<role>.json   which backup of each store makes up the set,
//!                   the change-log sequence each holds, and on the ledger
//!                   the audit chain head at that moment
//! ```
//!
//! A manifest is written (atomically) only after every store's backup has
//! succeeded, so a set named in `sets/` is complete; manifests whose
//! backups have all been pruned are removed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use popbase_storage::Store;
use popbase_storage::backup::{self, BackupInfo};
use serde::{Deserialize, Serialize};

use crate::{Role, ServiceError, ServiceResult};

/// A backup is also kept as a weekly one when the newest weekly backup is
/// at least this old (6 days 20 hours: a nightly schedule's jitter must not
/// skip a week).
const WEEKLY_AFTER_SECS: i64 = 6 * 86_400 + 20 * 3_600;

/// The backup roots a backup is running in: one at a time per root, since
/// two engines on one directory would take each other's files for garbage.
static RUNNING: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Holds `root` in [`RUNNING`] until dropped.
struct Running(PathBuf);

impl Running {
    fn claim(root: &Path) -> ServiceResult<Running> {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        if !running.insert(root.to_path_buf()) {
            return Err(ServiceError::precondition(
                "label",
                "another backup is running in this backup directory",
            ));
        }
        Ok(Running(root.to_path_buf()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.0);
    }
}

/// How many backups each tier keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub daily: usize,
    pub weekly: usize,
}

/// One store's part of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEntry {
    pub store: String,
    pub daily_id: u32,
    /// 0 when this backup was not also kept as a weekly one.
    pub weekly_id: u32,
    /// Every change-log sequence up to this one is in the backup.
    pub seq: u64,
    pub size_bytes: u64,
}

/// The audit chain head when the ledger's backup was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEntry {
    pub seq: u64,
    pub hash_hex: String,
}

/// `sets/<label>.<role>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub label: String,
    pub role: String,
    /// Unix seconds, and the same instant in the city's time for people.
    pub taken_at_unix: i64,
    pub taken_at: String,
    pub stores: Vec<StoreEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<HeadEntry>,
}

pub fn daily_dir(root: &Path, store: &str) -> PathBuf {
    root.join("daily").join(store)
}

pub fn weekly_dir(root: &Path, store: &str) -> PathBuf {
    root.join("weekly").join(store)
}

fn sets_dir(root: &Path) -> PathBuf {
    root.join("sets")
}

fn manifest_path(root: &Path, label: &str, role: &str) -> PathBuf {
    sets_dir(root).join(format!("{label}.{role}.json"))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("{what} {}: {e}", path.display()))
}

/// Backs up every store of `role` under `root` as the set `label` and
/// prunes each tier. `audit_head` (the ledger's) is read before the
/// stores' backups, so the backup holds at least the head it records.
/// Blocking: run it off the async workers.
pub fn take(
    root: &Path,
    role: Role,
    stores: &[Store],
    label: &str,
    keep: Retention,
    audit_head: Option<&(dyn Fn() -> ServiceResult<HeadEntry> + Send + Sync)>,
) -> ServiceResult<(Manifest, PathBuf)> {
    let _only_one = Running::claim(root)?;
    let path = manifest_path(root, label, role.name());
    if path.exists() {
        return Err(ServiceError::precondition(
            "label",
            "a backup set of this role already has this label",
        ));
    }
    // The head is read before the backup starts: every record it names is
    // durable, so the backup (taken after) holds it.
    let audit_head = audit_head.map(|head| head()).transpose()?;
    let mut entries = Vec::new();
    for store in stores {
        let made = store.backup_into(daily_dir(root, store.name()), keep.daily)?;
        let weekly = weekly_dir(root, store.name());
        let newest_weekly = backup::backups_in(&weekly)?.last().map(|b| b.timestamp);
        let weekly_id = match newest_weekly {
            Some(at) if made.info.timestamp - at < WEEKLY_AFTER_SECS => 0,
            _ => store.backup_into(&weekly, keep.weekly)?.info.id,
        };
        entries.push(StoreEntry {
            store: store.name().to_string(),
            daily_id: made.info.id,
            weekly_id,
            seq: made.seq,
            size_bytes: made.info.size_bytes,
        });
    }
    let now = chrono::Utc::now();
    let manifest = Manifest {
        label: label.to_string(),
        role: role.name().to_string(),
        taken_at_unix: now.timestamp(),
        taken_at: now.with_timezone(&popbase_domain::clock::city_offset()).to_rfc3339(),
        stores: entries,
        audit_head,
    };
    write_atomically(&path, &manifest)?;
    prune_manifests(root)?;
    Ok((manifest, path))
}

fn write_atomically(path: &Path, manifest: &Manifest) -> ServiceResult<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| ServiceError::Internal(format!("manifest: {e}")))?;
    let temp = path.with_extension("json.partial");
    let mut file = std::fs::File::create(&temp).map_err(|e| io("writing", &temp, e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", &temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| io("renaming", &temp, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, e))
}

/// Every manifest under `root`, oldest first; unreadable files are errors
/// (a restore must not silently pick another set).
pub fn manifests(root: &Path) -> ServiceResult<Vec<(PathBuf, Manifest)>> {
    let dir = sets_dir(root);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("reading", &dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io("reading", &dir, e))?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|e| io("reading", &path, e))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| ServiceError::Internal(format!("backup manifest {} is not readable: {e}", path.display())))?;
        found.push((path, manifest));
    }
    found.sort_by(|a, b| (a.1.taken_at_unix, &a.1.label).cmp(&(b.1.taken_at_unix, &b.1.label)));
    Ok(found)
}

/// Where `entry`'s backups are: (engine directory, id) of its daily one and,
/// when it was kept as one, its weekly one, in that order of preference.
fn tiers(root: &Path, entry: &StoreEntry) -> Vec<(PathBuf, u32)> {
    [
        (daily_dir(root, &entry.store), entry.daily_id),
        (weekly_dir(root, &entry.store), entry.weekly_id),
    ]
    .into_iter()
    .filter(|(_, id)| *id != 0)
    .collect()
}

/// Which backup of `entry` is still kept: the daily one, else the weekly
/// one; with the directory it is in.
pub fn kept_backup(root: &Path, entry: &StoreEntry) -> ServiceResult<Option<(PathBuf, BackupInfo)>> {
    for (dir, id) in tiers(root, entry) {
        if let Some(info) = backup::backups_in(&dir)?.into_iter().find(|b| b.id == id) {
            return Ok(Some((dir, info)));
        }
    }
    Ok(None)
}

/// Removes the manifests of sets none of whose stores has a backup left.
/// Each engine directory is listed once, however many sets name it.
fn prune_manifests(root: &Path) -> ServiceResult<()> {
    let mut listed: HashMap<PathBuf, Vec<BackupInfo>> = HashMap::new();
    for (path, manifest) in manifests(root)? {
        let mut any_kept = false;
        for (dir, id) in manifest.stores.iter().flat_map(|entry| tiers(root, entry)) {
            let backups = match listed.entry(dir) {
                std::collections::hash_map::Entry::Occupied(listing) => listing.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let listing = backup::backups_in(slot.key())?;
                    slot.insert(listing)
                }
            };
            any_kept |= backups.iter().any(|b| b.id == id);
        }
        if !any_kept {
            std::fs::remove_file(&path).map_err(|e| io("removing", &path, e))?;
            // Not the label: it is the operator's text.
            tracing::info!(role = %manifest.role, taken_at = %manifest.taken_at, "backup set pruned");
        }
    }
    Ok(())
}

/// The newest set's time per role under `root`, for the backup-age metric.
pub fn newest_per_role(root: &Path) -> Vec<(String, i64)> {
    let mut newest: std::collections::BTreeMap<String, i64> = Default::default();
    for (_, manifest) in manifests(root).unwrap_or_default() {
        let at = newest.entry(manifest.role).or_default();
        *at = (*at).max(manifest.taken_at_unix);
    }
    newest.into_iter().collect()
}

#[cfg(test)]
#[path = "backup_set_tests.rs"]
mod tests;
