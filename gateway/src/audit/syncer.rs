//! The audit writer's second stage: makes written groups durable, and only
//! then answers their calls.
//!
//! The writer chains a group and writes it to the ledger's WAL without
//! waiting for the fsync, hands it here and takes the next group while this
//! thread syncs. One fsync covers every group written before it, so groups
//! written while a sync runs share the next one. When the writer waited out
//! each fsync itself, a closed loop of person queries left a quarter of the
//! two cores idle: the calls queued behind the fsync, not behind the CPU.
//!
//! A group whose sync fails is refused, every call in it, as before. Its
//! records stay in the chain (written, perhaps durable after all) naming
//! calls that got no answer: the trail may hold a record of a call refused
//! this way, and never lacks the record of an answer given.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use popbase_proto::gateway::ChainHead;
use tokio::sync::oneshot;

use super::log::AuditStats;

/// Written groups waiting for their sync before the writer waits for room:
/// a bound on what is written and not yet answered.
pub(super) const WRITTEN_AHEAD: usize = 16;

/// A caller's reply: its first record's sequence number, or why it was refused.
pub(super) type Reply = oneshot::Sender<Result<u64, String>>;

/// One use of an interface, for the per-department call counts:
/// (department, interface, answered, calls).
pub(super) type Use = (String, String, bool, u64);

/// A group the writer has written and not yet synced.
pub(super) struct Written {
    /// The store commit that holds the group.
    pub commit: u64,
    /// The chain's head after the group.
    pub head: ChainHead,
    /// Each call's reply with its first record's sequence number.
    pub replies: Vec<(Reply, u64)>,
    pub records: u64,
    pub uses: Vec<Use>,
}

/// Syncs what the writer hands over, all that is waiting at once, moves
/// `durable_head` to the last of it and answers it; ends when the writer is
/// gone and everything is answered. `sync(commit)` returns once that store
/// commit is durable.
pub(super) fn run(
    written: Receiver<Written>,
    sync: impl Fn(u64) -> Result<(), String>,
    stats: &AuditStats,
    durable_head: &Mutex<ChainHead>,
) {
    while let Ok(first) = written.recv() {
        let mut groups = vec![first];
        while let Ok(next) = written.try_recv() {
            groups.push(next);
        }
        let through = groups.iter().map(|g| g.commit).max().unwrap_or(0);
        match sync(through) {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                if let Some(last) = groups.iter().max_by_key(|g| g.commit) {
                    *durable_head.lock().unwrap_or_else(|p| p.into_inner()) = last.head.clone();
                }
                for group in groups {
                    stats.records.fetch_add(group.records, Ordering::Relaxed);
                    stats.department_calls.add(group.uses);
                    for (reply, first) in group.replies {
                        let _ = reply.send(Ok(first));
                    }
                }
            }
            Err(e) => {
                stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                let records: u64 = groups.iter().map(|g| g.records).sum();
                tracing::error!(error = %e, records, "audit sync failed; refusing the calls");
                for (reply, _) in groups.into_iter().flat_map(|g| g.replies) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::sync_channel;

    use super::*;

    fn group(commit: u64, first: u64) -> (Written, oneshot::Receiver<Result<u64, String>>) {
        let (reply, answer) = oneshot::channel();
        let written = Written {
            commit,
            head: ChainHead {
                seq: first,
                hash: vec![first as u8; 32],
                at_unix_millis: 0,
            },
            replies: vec![(reply, first)],
            records: 1,
            uses: vec![("education".into(), "EnrollmentCheck".into(), true, 1)],
        };
        (written, answer)
    }

    #[test]
    fn groups_waiting_together_share_one_sync_and_hear_only_after_it() {
        let stats = AuditStats::default();
        let (tx, rx) = sync_channel(WRITTEN_AHEAD);
        let (a, answer_a) = group(7, 1);
        let (b, answer_b) = group(9, 2);
        tx.send(a).expect("send");
        tx.send(b).expect("send");
        drop(tx);
        let synced = Mutex::new(Vec::new());
        let head = Mutex::new(ChainHead::default());
        run(
            rx,
            |through| {
                assert_eq!(head.lock().expect("lock").seq, 0, "the head moves only once synced");
                synced.lock().expect("lock").push(through);
                Ok(())
            },
            &stats,
            &head,
        );
        assert_eq!(*synced.lock().expect("lock"), [9], "one sync through the later commit");
        assert_eq!(head.lock().expect("lock").seq, 2, "the head after the later group");
        assert_eq!(answer_a.blocking_recv().expect("answered"), Ok(1));
        assert_eq!(answer_b.blocking_recv().expect("answered"), Ok(2));
        assert_eq!(stats.commits.load(Ordering::Relaxed), 1);
        assert_eq!(stats.records.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_failed_sync_refuses_every_call_it_covered_and_counts_none() {
        let stats = AuditStats::default();
        let (tx, rx) = sync_channel(WRITTEN_AHEAD);
        let (a, answer_a) = group(3, 1);
        let (b, answer_b) = group(4, 2);
        tx.send(a).expect("send");
        tx.send(b).expect("send");
        drop(tx);
        let head = Mutex::new(ChainHead::default());
        run(rx, |_| Err("disk gone".to_string()), &stats, &head);
        assert_eq!(head.lock().expect("lock").seq, 0, "no head that is not durable");
        assert_eq!(answer_a.blocking_recv().expect("answered"), Err("disk gone".into()));
        assert_eq!(answer_b.blocking_recv().expect("answered"), Err("disk gone".into()));
        assert_eq!(stats.records.load(Ordering::Relaxed), 0, "no record counted as written");
        assert_eq!(stats.failed_commits.load(Ordering::Relaxed), 1);
    }
}
