//! Group commit: one WAL fsync for every durable commit waiting on it.
//!
//! A durable commit used to write its batch with `sync = true` under the
//! commit lock, so commits queued behind one another's fsync (about 85 µs
//! on this class of disk, far more under write-back pressure) and each paid
//! its own. Now the batch is written under the lock without syncing, the
//! lock is released, and the committer waits here until the WAL is synced
//! through its sequence. The first to arrive syncs everything written so
//! far; those that arrive while it does find themselves covered when it
//! ends. The WAL is one sequential file, so a sync covers every earlier
//! write.
//!
//! What this changes for readers: a commit is readable from the moment it
//! is written, a few microseconds before it is durable. Its writer is not
//! answered before it is durable, and anything committed after it that
//! depends on it is durable only with it (the later sync covers it). The
//! change log, which other services follow, is read only up to
//! [`WalSync::durable`], so no follower is told of a change a power cut
//! could take back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The highest sequence known durable, and the fsyncs made.
#[derive(Debug, Default)]
pub(crate) struct WalSync {
    /// Held while a sync runs.
    syncing: Mutex<()>,
    /// The sequence the last sync covered (moved only under `syncing`).
    synced_through: AtomicU64,
    /// The highest sequence durable or acknowledged without a sync
    /// (buffered writes): how far the change log may be read.
    durable: AtomicU64,
    syncs: AtomicU64,
}

impl WalSync {
    /// Returns once the commit `seq` is durable. `written` answers the last
    /// sequence whose batch is fully written (so a sync made now covers
    /// it); `sync` fsyncs the WAL.
    ///
    /// Only a sync covers a commit: a buffered commit written after `seq`
    /// moves [`WalSync::durable`] past it without making it durable, so
    /// that mark must not excuse the fsync.
    pub(crate) fn sync_through<E>(&self, seq: u64, written: impl Fn() -> u64, sync: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        if self.synced_through.load(Ordering::SeqCst) >= seq {
            return Ok(());
        }
        // A panic in a sync leaves only a stale high-water mark: reuse it.
        let _syncing = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        if self.synced_through.load(Ordering::SeqCst) >= seq {
            return Ok(());
        }
        let through = written();
        sync()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.synced_through.store(through, Ordering::SeqCst);
        self.durable.fetch_max(through, Ordering::SeqCst);
        Ok(())
    }

    /// Marks `seq` durable without a sync: the commits recovered when the
    /// store opened, and those acknowledged without one (buffered or
    /// WAL-less writes).
    pub(crate) fn advance(&self, seq: u64) {
        self.durable.fetch_max(seq, Ordering::SeqCst);
    }

    /// The highest sequence whose commit is durable (or was acknowledged
    /// without asking to be).
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// Holds the sync lock, as a running sync does (tests of what readers
    /// see meanwhile).
    #[cfg(test)]
    pub(crate) fn hold(&self) -> std::sync::MutexGuard<'_, ()> {
        self.syncing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// WAL fsyncs made for durable commits since the store opened.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};

    use super::WalSync;

    #[test]
    fn one_sync_covers_every_commit_written_before_it() {
        let wal = WalSync::default();
        wal.advance(3);
        let written = AtomicU64::new(7);
        let sync = || Ok::<(), ()>(());
        wal.sync_through(5, || written.load(Ordering::SeqCst), sync).expect("sync");
        assert_eq!((wal.durable(), wal.syncs()), (7, 1));
        for seq in [4, 6, 7] {
            wal.sync_through(seq, || 99, || Err(())).expect("covered: no second sync");
        }
        assert_eq!(wal.syncs(), 1);
        wal.sync_through(8, || 8, sync).expect("sync");
        assert_eq!((wal.durable(), wal.syncs()), (8, 2));
    }

    #[test]
    fn a_buffered_commit_after_a_durable_one_does_not_excuse_its_sync() {
        let wal = WalSync::default();
        // Commit 4 asks to be durable; commit 5, buffered, is acknowledged first.
        wal.advance(5);
        let syncs = AtomicU64::new(0);
        let sync = || {
            syncs.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        };
        wal.sync_through(4, || 5, sync).expect("sync");
        assert_eq!(syncs.load(Ordering::SeqCst), 1, "commit 4 was fsynced, not waved through");
        assert_eq!((wal.durable(), wal.syncs()), (5, 1));
    }

    #[test]
    fn a_failed_sync_makes_nothing_durable() {
        let wal = WalSync::default();
        assert_eq!(wal.sync_through(1, || 1, || Err("disk gone")), Err("disk gone"));
        assert_eq!((wal.durable(), wal.syncs()), (0, 0));
        wal.sync_through(1, || 1, || Ok::<(), ()>(())).expect("retried");
        assert_eq!(wal.durable(), 1);
    }

    #[test]
    fn committers_waiting_on_a_running_sync_share_the_next() {
        let wal = Arc::new(WalSync::default());
        let guard = wal.syncing.lock().expect("lock");
        // Four commits written while a sync runs (the lock held here).
        let barrier = Arc::new(Barrier::new(5));
        let waiters: Vec<_> = (1..=4u64)
            .map(|seq| {
                let (wal, barrier) = (Arc::clone(&wal), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    wal.sync_through(seq, || 4, || Ok::<(), ()>(()))
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(wal.durable(), 0, "nothing durable while the sync runs");
        drop(guard);
        for waiter in waiters {
            waiter.join().expect("thread").expect("synced");
        }
        assert_eq!((wal.durable(), wal.syncs()), (4, 1), "the first of them synced all four");
    }
}
