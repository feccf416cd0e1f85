//! The keys the store's last commits wrote, so a batch whose versions were
//! read at a known sequence can be validated without reading them again.
//!
//! Optimistic concurrency checks that every version a batch read is still
//! current when it commits. Reading them all again under the commit lock
//! costs a second `MultiGet` per key (a feed refresh of a city is millions
//! of keys); but when the batch says at which sequence its reads were made
//! ([`crate::Batch::read_at`]), a version can only have changed if a commit
//! after that sequence wrote its key. This keeps those commits' keys, as
//! hashes, for the last [`MAX_COMMITS`] commits: no hash among them means
//! every expectation holds; a hash found (or a read older than the log)
//! means the versions are read and compared as before. A hash collision can
//! only cost that exact check, never a wrong answer.

use std::collections::VecDeque;
use std::hash::BuildHasher;

/// Commits whose written keys are kept.
const MAX_COMMITS: usize = 256;

/// Key hashes kept in all (8 bytes each: 16 MiB).
const MAX_HASHES: usize = 2 << 20;

/// Held under the store's commit lock.
#[derive(Default)]
pub(crate) struct RecentWrites {
    hasher: std::collections::hash_map::RandomState,
    /// `(sequence, sorted key hashes)`, oldest first, sequences contiguous.
    commits: VecDeque<(u64, Vec<u64>)>,
    hashes: usize,
}

impl RecentWrites {
    pub(crate) fn hash(&self, cf: &str, key: &[u8]) -> u64 {
        self.hasher.hash_one((cf, key))
    }

    /// Records the keys commit `seq` wrote (as [`RecentWrites::hash`]es).
    pub(crate) fn record(&mut self, seq: u64, mut hashes: Vec<u64>) {
        if self.commits.back().is_some_and(|(last, _)| *last + 1 != seq) {
            // A gap (a commit not recorded): what came before no longer tells.
            self.commits.clear();
            self.hashes = 0;
        }
        hashes.sort_unstable();
        hashes.dedup();
        self.hashes += hashes.len();
        self.commits.push_back((seq, hashes));
        while self.commits.len() > MAX_COMMITS || (self.hashes > MAX_HASHES && self.commits.len() > 1) {
            if let Some((_, dropped)) = self.commits.pop_front() {
                self.hashes -= dropped.len();
            }
        }
    }

    /// Whether any of `keys` (hashes) may have been written by a commit
    /// after `read_at`, the store being at `last_seq`: `true` when one was,
    /// or when the log does not reach back to `read_at`.
    pub(crate) fn written_since(&self, read_at: u64, last_seq: u64, keys: impl IntoIterator<Item = u64>) -> bool {
        if read_at >= last_seq {
            return false;
        }
        // The log must hold every commit in (read_at, last_seq].
        match (self.commits.front(), self.commits.back()) {
            (Some((oldest, _)), Some((newest, _))) if *oldest <= read_at + 1 && *newest == last_seq => {}
            _ => return true,
        }
        let since: Vec<&Vec<u64>> = self.commits.iter().filter(|(seq, _)| *seq > read_at).map(|(_, h)| h).collect();
        keys.into_iter()
            .any(|key| since.iter().any(|written| written.binary_search(&key).is_ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_after_the_read_is_seen_and_others_are_not() {
        let mut recent = RecentWrites::default();
        let (a, b, c) = (recent.hash("t", b"a"), recent.hash("t", b"b"), recent.hash("u", b"a"));
        recent.record(1, vec![a]);
        recent.record(2, vec![b]);
        assert!(!recent.written_since(2, 2, [a, b]), "nothing committed since the read");
        assert!(recent.written_since(1, 2, [b]), "b was written by 2");
        assert!(
            !recent.written_since(1, 2, [a, c]),
            "a was written before the read; c is another table's key"
        );
        assert!(recent.written_since(0, 2, [a]));
        assert!(recent.written_since(2, 3, [c]), "commit 3 is not in the log");
    }

    #[test]
    fn a_read_older_than_the_log_or_a_gap_means_check() {
        let mut recent = RecentWrites::default();
        let a = recent.hash("t", b"a");
        for seq in 1..=(MAX_COMMITS as u64 + 10) {
            recent.record(seq, vec![]);
        }
        assert!(
            recent.written_since(5, MAX_COMMITS as u64 + 10, [a]),
            "commits after 5 are no longer all known"
        );
        assert!(!recent.written_since(20, MAX_COMMITS as u64 + 10, [a]));
        recent.record(MAX_COMMITS as u64 + 12, vec![]);
        assert!(
            recent.written_since(20, MAX_COMMITS as u64 + 12, [a]),
            "commit 11 past the log was never recorded"
        );
    }
}
