//! The ops endpoint every storage-owning role serves (`popbase.ops.v1.Ops`):
//! store figures, backups (RocksDB BackupEngine, off the data volume) that
//! the backup CronJob asks for, and online checkpoints for auditors' copies.

use std::path::PathBuf;
use std::sync::Arc;

use popbase_proto::ops::{self, ops_server::Ops};
use popbase_storage::Store;
use tonic::{Request, Response, Status};

use crate::backup_set::{self, HeadEntry, Retention};
use crate::{Role, ServiceError, ServiceResult};

/// Reads the audit chain's head (the ledger's Ops only).
pub type HeadSource = Arc<dyn Fn() -> ServiceResult<HeadEntry> + Send + Sync>;

pub struct OpsService {
    role: Role,
    stores: Vec<Store>,
    backup_root: PathBuf,
    checkpoint_root: PathBuf,
    audit_head: Option<HeadSource>,
}

impl OpsService {
    /// Backups go to `config.backup_root()`, checkpoints to `config.checkpoint_root()`.
    pub fn new(role: Role, stores: Vec<Store>, config: &crate::Config) -> Self {
        Self {
            role,
            stores,
            backup_root: config.backup_root(),
            checkpoint_root: config.checkpoint_root(),
            audit_head: None,
        }
    }

    /// Records the audit chain head with every backup set (the ledger).
    pub fn with_audit_head(mut self, head: HeadSource) -> Self {
        self.audit_head = Some(head);
        self
    }

    pub fn into_server(self) -> ops::ops_server::OpsServer<Self> {
        ops::ops_server::OpsServer::new(self)
    }
}

/// A checkpoint label becomes a directory name: keep it to `[a-z0-9-]{1,64}`.
fn checked_label(label: &str) -> Result<&str, ServiceError> {
    let ok = (1..=64).contains(&label.len())
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-');
    if ok {
        Ok(label)
    } else {
        Err(ServiceError::invalid(
            "label",
            "must be 1-64 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}

/// `keep_daily` / `keep_weekly` of a request: 0 is the default, else within `1..=max`.
fn kept(field: &str, asked: u32, default: usize, max: u32) -> Result<usize, ServiceError> {
    match asked {
        0 => Ok(default),
        n if n <= max => Ok(n as usize),
        _ => Err(ServiceError::invalid(field, format!("must be at most {max}"))),
    }
}

#[tonic::async_trait]
impl Ops for OpsService {
    async fn create_backup(&self, request: Request<ops::CreateBackupRequest>) -> Result<Response<ops::CreateBackupResponse>, Status> {
        let r = request.into_inner();
        let label = checked_label(&r.label)?.to_string();
        let keep = Retention {
            daily: kept("keep_daily", r.keep_daily, 7, 366)?,
            weekly: kept("keep_weekly", r.keep_weekly, 4, 260)?,
        };
        let (root, role, stores, head) = (self.backup_root.clone(), self.role, self.stores.clone(), self.audit_head.clone());
        // Copying files and fsyncing: keep it off the async workers.
        let (manifest, path) = tokio::task::spawn_blocking(move || backup_set::take(&root, role, &stores, &label, keep, head.as_deref()))
            .await
            .map_err(|e| ServiceError::Internal(format!("backup task: {e}")))??;
        Ok(Response::new(ops::CreateBackupResponse {
            role: manifest.role,
            label: manifest.label,
            stores: manifest
                .stores
                .into_iter()
                .map(|s| ops::StoreBackup {
                    store: s.store,
                    daily_id: s.daily_id,
                    weekly_id: s.weekly_id,
                    seq: s.seq,
                    size_bytes: s.size_bytes,
                })
                .collect(),
            audit_head: manifest.audit_head.map(|h| ops::AuditHead {
                seq: h.seq,
                hash_hex: h.hash_hex,
            }),
            manifest_path: path.display().to_string(),
        }))
    }

    async fn get_store_stats(&self, _: Request<ops::GetStoreStatsRequest>) -> Result<Response<ops::GetStoreStatsResponse>, Status> {
        let mut stores = Vec::new();
        for store in &self.stores {
            let stats = store.stats().map_err(ServiceError::from)?;
            // The store's daily backups (the layout backup_set writes).
            let backups = popbase_storage::backup::backups_in(backup_set::daily_dir(&self.backup_root, &stats.store)).unwrap_or_default();
            let newest = backups.iter().max_by_key(|b| b.timestamp);
            stores.push(ops::StoreStats {
                backups: u32::try_from(backups.len()).unwrap_or(u32::MAX),
                newest_backup_unix_secs: newest.map_or(0, |b| b.timestamp),
                newest_backup_bytes: newest.map_or(0, |b| b.size_bytes),
                store: stats.store,
                last_seq: stats.last_seq,
                tables: stats
                    .tables
                    .into_iter()
                    .map(|t| ops::TableStats {
                        table: t.table,
                        estimated_keys: t.estimated_keys,
                        sst_bytes: t.sst_bytes,
                        memtable_bytes: t.memtable_bytes,
                    })
                    .collect(),
            });
        }
        Ok(Response::new(ops::GetStoreStatsResponse {
            role: self.role.name().to_string(),
            stores,
        }))
    }

    async fn create_checkpoint(
        &self,
        request: Request<ops::CreateCheckpointRequest>,
    ) -> Result<Response<ops::CreateCheckpointResponse>, Status> {
        let label = checked_label(&request.get_ref().label)?.to_string();
        let base = self.checkpoint_root.join(&label);
        let stores = self.stores.clone();
        // Checkpoints hard-link files and fsync: keep them off the async workers.
        let result = tokio::task::spawn_blocking(move || -> Result<Vec<ops::CheckpointResult>, ServiceError> {
            std::fs::create_dir_all(&base).map_err(|e| ServiceError::Internal(format!("backup dir: {e}")))?;
            let mut out = Vec::new();
            for store in &stores {
                let dir = base.join(store.name());
                if dir.exists() {
                    return Err(ServiceError::precondition(
                        "label",
                        format!("a checkpoint of {} with this label already exists", store.name()),
                    ));
                }
                let seq = store.checkpoint(&dir)?;
                out.push(ops::CheckpointResult {
                    store: store.name().to_string(),
                    path: dir.display().to_string(),
                    seq,
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("checkpoint task: {e}")))??;
        Ok(Response::new(ops::CreateCheckpointResponse { checkpoints: result }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_safe_directory_names() {
        assert!(checked_label("nightly-2026-11-22").is_ok());
        for bad in ["", "../etc", "UPPER", "-x", "a/b", &"x".repeat(65)] {
            assert!(checked_label(bad).is_err(), "{bad}");
        }
    }
}
