//! What storing a chunk needs read first, read in the ingest pipeline's
//! matching stage (beside the previous chunk's commit, not after it): the
//! stored version of each record and whether it is unmatched, from one
//! snapshot, and which records need the person directory at all.
//!
//! A refresh re-sends records about the same persons. Whether a person is
//! of the city only ever turns from no to yes (the registry and the
//! residence service keep every person they had, whatever their status),
//! so a record whose stored version named the same persons and was matched
//! is matched again without asking the registry and the residence service.
//! Both facts come from one snapshot, so the version and its unmatched flag
//! belong together.
//!
//! The versions are read at the snapshot's sequence, which the batch
//! declares ([`popbase_storage::Batch::read_at`]): its commit checks them
//! again only if a later commit wrote one of their keys. The stream's own
//! chunks committed after the snapshot are the common case of that, so the
//! storing stage reads those keys again ([`ChunkReads::reread`]) first.

use std::collections::{HashMap, HashSet};

use popbase_common::ServiceResult;
use popbase_proto::feeds::FeedRecord;
use popbase_storage::{Read, Versioned};

use crate::records::{FeedStore, subjects};
use crate::tables::{self, RECORDS, UNMATCHED};

/// A chunk's reads, and what the directory answered for it.
#[derive(Default)]
pub struct ChunkReads {
    /// The sequence the versions and flags were read at.
    pub(crate) read_at: u64,
    /// Record key → its stored version.
    pub(crate) versions: HashMap<Vec<u8>, Option<Versioned<FeedRecord>>>,
    /// Record keys unmatched when read.
    pub(crate) unmatched: HashSet<Vec<u8>>,
    /// Stream indices of records matched by their stored version.
    pub(crate) matched_before: HashSet<u64>,
    /// The ID numbers the directory knows, among those asked.
    pub known: HashSet<String>,
}

impl FeedStore {
    /// Reads `chunk`'s stored versions and unmatched flags from one
    /// snapshot; the ID numbers the directory must still be asked about.
    pub fn read_chunk(&self, chunk: &[(u64, FeedRecord)]) -> ServiceResult<(ChunkReads, Vec<String>)> {
        let snapshot = self.store().snapshot();
        let mut keys: Vec<Vec<u8>> = chunk.iter().map(|(_, r)| tables::record_key(r.source, &r.record_id)).collect();
        keys.sort_unstable();
        keys.dedup();
        let versions = snapshot.get_many(&RECORDS, &keys)?;
        let flags = snapshot.index_contains_many(&UNMATCHED, &keys)?;
        let unmatched: HashSet<Vec<u8>> = keys.iter().zip(flags).filter(|(_, flag)| *flag).map(|(k, _)| k.clone()).collect();
        let mut reads = ChunkReads {
            read_at: snapshot.seq(),
            versions: keys.into_iter().zip(versions).collect(),
            unmatched,
            ..ChunkReads::default()
        };
        let mut ask = HashSet::new();
        for (index, record) in chunk {
            let key = tables::record_key(record.source, &record.record_id);
            let matched = !reads.unmatched.contains(&key)
                && reads
                    .versions
                    .get(&key)
                    .and_then(Option::as_ref)
                    .is_some_and(|stored| subjects(&stored.value) == subjects(record));
            if matched {
                reads.matched_before.insert(*index);
            } else {
                ask.extend(subjects(record).into_iter().map(str::to_string));
            }
        }
        Ok((reads, ask.into_iter().collect()))
    }
}

impl ChunkReads {
    /// Reads `keys` again from the store as it is now (the keys the
    /// stream's own later commits wrote): their versions and flags then
    /// are what the commit expects.
    pub fn reread(&mut self, feeds: &FeedStore, keys: &[Vec<u8>]) -> ServiceResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let versions = feeds.store().get_many(&RECORDS, keys)?;
        let flags = feeds.store().index_contains_many(&UNMATCHED, keys)?;
        for ((key, version), flag) in keys.iter().zip(versions).zip(flags) {
            self.versions.insert(key.clone(), version);
            if flag {
                self.unmatched.insert(key.clone());
            } else {
                self.unmatched.remove(key);
            }
        }
        Ok(())
    }

    /// The chunk's record keys.
    pub fn keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.versions.keys()
    }

    /// The chunk's record keys, the reads done with.
    pub fn into_keys(self) -> Vec<Vec<u8>> {
        self.versions.into_keys().collect()
    }

    /// Whether `key` is among the chunk's records.
    pub fn has_key(&self, key: &[u8]) -> bool {
        self.versions.contains_key(key)
    }
}
