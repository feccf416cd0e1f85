//! `popbase backup` and `popbase stats`: small clients of a role's ops endpoint,
//! so the backup CronJob and operators need no other tool.

use popbase_common::upstream::Dialer;
use popbase_proto::ops::ops_client::OpsClient;
use popbase_proto::ops::{CreateCheckpointRequest, GetStoreStatsRequest};
use tonic::transport::Channel;

/// A client of `target`'s ops service, over mutual TLS when `dialer` has
/// the mesh's backup certificate (the ops service accepts no other identity).
async fn connect(target: &str, dialer: &Dialer) -> anyhow::Result<OpsClient<Channel>> {
    let channel = dialer.channel("ops", target).map_err(anyhow::Error::msg)?;
    Ok(OpsClient::new(channel))
}

/// Creates a checkpoint of every store of the role at `target` and prints
/// one line per store: `checkpoint store=<name> seq=<n> path=<dir>`.
pub async fn backup(target: &str, label: &str, dialer: &Dialer) -> anyhow::Result<()> {
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
