//! The ops endpoint every storage-owning role serves (`popbase.ops.v1.Ops`):
//! store figures, and online checkpoints that the backup CronJob asks for.

use std::path::PathBuf;

use popbase_proto::ops::{self, ops_server::Ops};
use popbase_storage::Store;
use tonic::{Request, Response, Status};

use crate::{Role, ServiceError};

pub struct OpsService {
    role: Role,
    stores: Vec<Store>,
    backup_root: PathBuf,
}

impl OpsService {
    pub fn new(role: Role, stores: Vec<Store>, backup_root: PathBuf) -> Self {
        Self { role, stores, backup_root }
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

#[tonic::async_trait]
impl Ops for OpsService {
    async fn get_store_stats(&self, _: Request<ops::GetStoreStatsRequest>) -> Result<Response<ops::GetStoreStatsResponse>, Status> {
        let mut stores = Vec::new();
        for store in &self.stores {
            let stats = store.stats().map_err(ServiceError::from)?;
            stores.push(ops::StoreStats {
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
        let base = self.backup_root.join(&label);
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
                        format!("checkpoint '{}' of {} already exists", label, store.name()),
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
