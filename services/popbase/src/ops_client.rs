//! `popbase backup`, `checkpoint` and `stats`: small clients of a role's ops
//! endpoint, so the backup CronJob and operators need no other tool.

use popbase_common::upstream::Dialer;
use popbase_proto::ops::ops_client::OpsClient;
use popbase_proto::ops::{CreateBackupRequest, CreateCheckpointRequest, GetStoreStatsRequest};
use tonic::transport::Channel;

/// A client of `target`'s ops service, over mutual TLS when `dialer` has
/// the mesh's backup certificate (the ops service accepts no other identity).
async fn connect(target: &str, dialer: &Dialer) -> anyhow::Result<OpsClient<Channel>> {
    let channel = dialer.channel("ops", target).map_err(anyhow::Error::msg)?;
    Ok(OpsClient::new(channel))
}

/// How many backups each store keeps (the server bounds both).
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub daily: u32,
    pub weekly: u32,
}

/// Backs up every role of `targets`, one after the other in the order
/// given, as the set `label`; prints one line per store and stops at the
/// first failure (exit non-zero: the CronJob's run fails and alerts).
pub async fn backup(targets: &[String], label: &str, keep: Keep, dialer: &Dialer) -> anyhow::Result<()> {
    // A first backup copies a whole store: wait as long as the server allows it.
    let dialer = dialer.clone().with_request_timeout(popbase_common::deadline::LONG_RUNNING_MAX);
    for target in targets {
        let mut client = connect(target, &dialer).await?;
        let response = client
            .create_backup(CreateBackupRequest {
                label: label.to_string(),
                keep_daily: keep.daily,
                keep_weekly: keep.weekly,
            })
            .await
            .map_err(|s| anyhow::anyhow!("backup of {target} refused: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let mut text = String::new();
        for store in &response.stores {
            text += &format!(
                "backup role={} store={} seq={} daily_id={} weekly_id={} bytes={}\n",
                response.role, store.store, store.seq, store.daily_id, store.weekly_id, store.size_bytes
            );
        }
        if let Some(head) = &response.audit_head {
            text += &format!(
                "backup role={} audit_head_seq={} audit_head_hash={}\n",
                response.role, head.seq, head.hash_hex
            );
        }
        text += &format!("backup role={} manifest={}\n", response.role, response.manifest_path);
        crate::say::out(&text)?;
    }
    Ok(())
}

/// Creates a checkpoint of every store of the role at `target` and prints
/// one line per store: `checkpoint store=<name> seq=<n> path=<dir>`.
pub async fn checkpoint(target: &str, label: &str, dialer: &Dialer) -> anyhow::Result<()> {
    let mut client = connect(target, dialer).await?;
    let response = client
        .create_checkpoint(CreateCheckpointRequest { label: label.to_string() })
        .await
        .map_err(|s| anyhow::anyhow!("checkpoint refused: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let mut text = String::new();
    for checkpoint in response.checkpoints {
        text += &format!(
            "checkpoint store={} seq={} path={}\n",
            checkpoint.store, checkpoint.seq, checkpoint.path
        );
    }
    Ok(crate::say::out(&text)?)
}

/// Prints `store=<name> last_seq=<n>` and a line per table.
pub async fn stats(target: &str, dialer: &Dialer) -> anyhow::Result<()> {
    let mut client = connect(target, dialer).await?;
    let response = client
        .get_store_stats(GetStoreStatsRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("stats refused: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let mut text = String::new();
    for store in response.stores {
        text += &format!("role={} store={} last_seq={}\n", response.role, store.store, store.last_seq);
        for table in store.tables {
            text += &format!(
                "  table={} estimated_keys={} sst_bytes={} memtable_bytes={}\n",
                table.table, table.estimated_keys, table.sst_bytes, table.memtable_bytes
            );
        }
    }
    Ok(crate::say::out(&text)?)
}
