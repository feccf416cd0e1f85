//! `popbase backup` and `popbase stats`: small clients of a role's ops endpoint,
//! so the backup CronJob and operators need no other tool.

use anyhow::Context;
use popbase_proto::ops::ops_client::OpsClient;
use popbase_proto::ops::{CreateCheckpointRequest, GetStoreStatsRequest};
use tonic::transport::Channel;

async fn connect(target: &str) -> anyhow::Result<OpsClient<Channel>> {
    let channel = Channel::from_shared(target.to_string())
        .with_context(|| format!("'{target}' is not a URI like http://household:50061"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {target}"))?;
    Ok(OpsClient::new(channel))
}

/// Creates a checkpoint of every store of the role at `target` and prints
/// one line per store: `checkpoint store=<name> seq=<n> path=<dir>`.
pub async fn backup(target: &str, label: &str) -> anyhow::Result<()> {
    let mut client = connect(target).await?;
    let response = client
        .create_checkpoint(CreateCheckpointRequest { label: label.to_string() })
        .await
        .map_err(|s| anyhow::anyhow!("checkpoint refused: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    for checkpoint in response.checkpoints {
        println!(
            "checkpoint store={} seq={} path={}",
            checkpoint.store, checkpoint.seq, checkpoint.path
        );
    }
    Ok(())
}

/// Prints `store=<name> last_seq=<n>` and a line per table.
pub async fn stats(target: &str) -> anyhow::Result<()> {
    let mut client = connect(target).await?;
    let response = client
        .get_store_stats(GetStoreStatsRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("stats refused: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    for store in response.stores {
        println!("role={} store={} last_seq={}", response.role, store.store, store.last_seq);
        for table in store.tables {
            println!(
                "  table={} estimated_keys={} sst_bytes={} memtable_bytes={}",
                table.table, table.estimated_keys, table.sst_bytes, table.memtable_bytes
            );
        }
    }
    Ok(())
}
