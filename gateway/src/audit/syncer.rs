//! The audit writer's second stage: makes written groups durable, and only
//! then answers their calls.
//!
//! The writer chains a group and writes it to the ledger's WAL without
//! waiting for the fsync. When calls are already waiting for it, it hands
//! the group to the syncer thread and takes the next while the syncer
//! syncs; one fsync covers every group written before it, so groups written
//! meanwhile share the next one. When the writer waited out every fsync
//! itself, a closed loop of person queries left a quarter of the two cores
//! idle: the calls queued behind the fsync, not behind the CPU. When nothing
//! waits and the syncer is idle, the writer syncs the group itself: a hand
//! to another thread would only add a wake-up to the call's latency and
//! CPU.
//!
//! A group whose sync fails is refused, every call in it, as before. Its
//! records stay in the chain (written, perhaps durable after all) naming
//! calls that got no answer: the trail may hold a record of a call refused
//! this way, and never lacks the record of an answer given.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Makes a store commit durable (returns once it is).
pub(super) type Sync = Box<dyn Fn(u64) -> Result<(), String> + Send + std::marker::Sync>;

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

/// What both threads need to settle written groups.
pub(super) struct Settler {
    sync: Sync,
    stats: std::sync::Arc<AuditStats>,
    /// The newest durable record's head (see `AuditLog::head`).
    durable_head: Mutex<ChainHead>,
    /// Groups the syncer thread has settled: equal to those handed to it
    /// when it is idle.
    settled_by_syncer: AtomicU64,
}

impl Settler {
    pub fn new(sync: Sync, stats: std::sync::Arc<AuditStats>, head: ChainHead) -> Settler {
        Settler {
            sync,
            stats,
            durable_head: Mutex::new(head),
            settled_by_syncer: AtomicU64::new(0),
        }
    }

    /// The newest durable record's head.
    pub fn head(&self) -> ChainHead {
        self.durable_head.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the syncer thread has settled all of the `handed` groups
    /// given it: then the writer may settle a group itself, and the durable
    /// head still only moves forward.
    pub fn syncer_idle(&self, handed: u64) -> bool {
        self.settled_by_syncer.load(Ordering::Acquire) == handed
    }

    /// Syncs `groups` (written in this order) with one fsync, moves the
    /// durable head to the last and answers them; or refuses them all.
    pub fn settle(&self, groups: Vec<Written>) {
        let Some(last) = groups.last() else { return };
        let (through, head) = (last.commit, last.head.clone());
        let stats = &self.stats;
        match (self.sync)(through) {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                *self.durable_head.lock().unwrap_or_else(|p| p.into_inner()) = head;
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

    /// The syncer thread: settles what the writer hands over, all that is
    /// waiting at once; ends when the writer is gone and all is answered.
    pub fn run(&self, written: Receiver<Written>) {
        while let Ok(first) = written.recv() {
            let mut groups = vec![first];
            while let Ok(next) = written.try_recv() {
                groups.push(next);
            }
            let count = groups.len() as u64;
            self.settle(groups);
            self.settled_by_syncer.fetch_add(count, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;
    use std::sync::{Arc, Mutex};

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

    fn settler(sync: impl Fn(u64) -> Result<(), String> + Send + std::marker::Sync + 'static) -> Settler {
        Settler::new(Box::new(sync), Arc::new(AuditStats::default()), ChainHead::default())
    }

    #[test]
    fn groups_waiting_together_share_one_sync_and_hear_only_after_it() {
        let synced = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&synced);
        let settler = settler(move |through| {
            seen.lock().expect("lock").push(through);
            Ok(())
        });
        let (tx, rx) = sync_channel(WRITTEN_AHEAD);
        let (a, mut answer_a) = group(7, 1);
        let (b, answer_b) = group(9, 2);
        tx.send(a).expect("send");
        tx.send(b).expect("send");
        assert!(answer_a.try_recv().is_err(), "no answer before the sync");
        assert!(!settler.syncer_idle(2), "two groups handed, none settled");
        drop(tx);
        settler.run(rx);
        assert_eq!(*synced.lock().expect("lock"), [9], "one sync through the later commit");
        assert_eq!(settler.head().seq, 2, "the head after the later group");
        assert!(settler.syncer_idle(2));
        assert_eq!(answer_a.blocking_recv().expect("answered"), Ok(1));
        assert_eq!(answer_b.blocking_recv().expect("answered"), Ok(2));
        assert_eq!(settler.stats.commits.load(Ordering::Relaxed), 1);
        assert_eq!(settler.stats.records.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_failed_sync_refuses_every_call_it_covered_and_counts_none() {
        let settler = settler(|_| Err("disk gone".to_string()));
        let (a, answer_a) = group(3, 1);
        let (b, answer_b) = group(4, 2);
        settler.settle(vec![a, b]);
        assert_eq!(settler.head().seq, 0, "no head that is not durable");
        assert_eq!(answer_a.blocking_recv().expect("answered"), Err("disk gone".into()));
        assert_eq!(answer_b.blocking_recv().expect("answered"), Err("disk gone".into()));
        assert_eq!(settler.stats.records.load(Ordering::Relaxed), 0, "no record counted as written");
        assert_eq!(settler.stats.failed_commits.load(Ordering::Relaxed), 1);
    }
}
