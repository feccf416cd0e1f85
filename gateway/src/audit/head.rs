//! The chain head kept outside the store: every interval (and at shutdown)
//! the newest record's `seq hash time` is appended to a file an auditor
//! collects. Whoever rewrites the store must then also match every head
//! already handed out; `popbase audit verify --head FILE` checks that.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use popbase_common::Shutdown;
use popbase_proto::gateway::ChainHead;

use super::AuditLog;

/// One line: `<seq> <hex hash> <unix millis>`.
pub fn format_line(head: &ChainHead) -> String {
    format!("{} {} {}\n", head.seq, hex::encode(&head.hash), head.at_unix_millis)
}

/// The last head line of `path`: (seq, hash).
pub fn read_last(path: &Path) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let text = std::fs::read_to_string(path)?;
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let mut parts = line.split_whitespace();
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad head line '{line}'"));
    let seq = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let hash = parts.next().and_then(|h| hex::decode(h).ok()).ok_or_else(bad)?;
    Ok(Some((seq, hash)))
}

fn append(path: &Path, head: &ChainHead) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format_line(head).as_bytes())?;
    file.sync_data()
}

/// Appends the head to `path` whenever it moved, every `interval` and once
/// more when `shutdown` fires.
pub async fn publish(log: AuditLog, path: PathBuf, interval: Duration, shutdown: Shutdown) {
    let mut last_seq = None;
    let mut tick = tokio::time::interval(interval);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.wait() => true,
        };
        match log.head() {
            Ok(head) if last_seq != Some(head.seq) && head.seq > 0 => match append(&path, &head) {
                Ok(()) => {
                    // The log pipeline carries a second copy out of the cluster.
                    tracing::info!(seq = head.seq, hash = %hex::encode(&head.hash), "audit chain head");
                    last_seq = Some(head.seq);
                }
                Err(e) => tracing::error!(error = %e, path = %path.display(), "cannot write the audit chain head"),
            },
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the audit chain head"),
        }
        if stopping {
            return;
        }
    }
}
