//! The `Feeds.Ingest` stream as a two-stage pipeline: while one chunk is
//! being stored (one atomic batch), the next is
//! read off the stream, validated and matched against the registry and the
//! residence service (only for records whose persons changed, see
//! chunk_reads.rs), and their stored versions read. Chunks are stored one
//! at a time in stream order, so a record sent twice in one stream sees its
//! own earlier version; the stage between is a channel of [`STORE_AHEAD`]
//! chunks, so a slow store slows the stream's reading instead of queueing
//! it in memory.

use std::collections::VecDeque;

use popbase_common::ServiceError;
use popbase_proto::feeds::{FeedRecord, IngestSummary, Outcome};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use crate::chunk_reads::ChunkReads;
use crate::directory::PersonDirectory;
use crate::ingest::{MAX_LISTED_RESULTS, normalise_ids, result, tally};
use crate::{FeedStore, validate as check};

/// Records per directory look-up and per atomic batch.
pub const CHUNK: usize = 1000;

/// Matched chunks waiting for the store: enough that matching the next
/// never waits for the store's previous one.
const STORE_AHEAD: usize = 2;

/// The stream's own commits whose keys the storing stage remembers: more
/// than can land between a chunk's reads and its commit (the chunks ahead
/// of it in the queue and the one being stored).
const OWN_COMMITS: usize = 2 * (STORE_AHEAD + 1);

/// A chunk of validated records (with their positions in the stream) and
/// what was read and matched for it.
type Matched = (Vec<(u64, FeedRecord)>, ChunkReads);

/// Reads, matches and stores the whole stream; the summary of every record.
pub async fn ingest(
    feeds: FeedStore,
    directory: PersonDirectory,
    actor: String,
    mut stream: Streaming<FeedRecord>,
) -> Result<IngestSummary, Status> {
    let (to_store, queue) = mpsc::channel::<Matched>(STORE_AHEAD);
    let storing = tokio::spawn(store_all(feeds.clone(), actor, queue));
    let read = read_all(&feeds, &directory, &mut stream, &to_store).await;
    drop(to_store);
    // The chunks already matched are stored even when reading failed: each
    // chunk stands on its own, as it would have without the pipeline.
    let stored = storing
        .await
        .map_err(|e| Status::from(ServiceError::Internal(format!("ingest task failed: {e}"))))?;
    let rejected = read?;
    Ok(merge(rejected, stored?))
}

/// The reading stage: validates each record (the invalid ones are tallied
/// here, as rejected), reads and matches each chunk, hands it on.
async fn read_all(
    feeds: &FeedStore,
    directory: &PersonDirectory,
    stream: &mut Streaming<FeedRecord>,
    to_store: &mpsc::Sender<Matched>,
) -> Result<IngestSummary, Status> {
    let mut rejected = IngestSummary::default();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut index = 0u64;
    while let Some(record) = stream.next().await {
        let mut record = record?;
        match check::record(&record) {
            Ok(()) => {
                normalise_ids(&mut record);
                chunk.push((index, record));
            }
            Err(ServiceError::InvalidArgument { field, reason }) => {
                tally(&mut rejected, result(index, &record, Outcome::Rejected, &field, reason))
            }
            Err(other) => return Err(other.into()),
        }
        index += 1;
        if chunk.len() >= CHUNK {
            hand_on(feeds, directory, std::mem::take(&mut chunk), to_store).await?;
        }
    }
    if !chunk.is_empty() {
        hand_on(feeds, directory, chunk, to_store).await?;
    }
    Ok(rejected)
}

async fn hand_on(
    feeds: &FeedStore,
    directory: &PersonDirectory,
    chunk: Vec<(u64, FeedRecord)>,
    to_store: &mpsc::Sender<Matched>,
) -> Result<(), Status> {
    let feeds = feeds.clone();
    let (chunk, (mut reads, ask)) = tokio::task::spawn_blocking(move || {
        let read = feeds.read_chunk(&chunk);
        read.map(|read| (chunk, read))
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("ingest task failed: {e}")))??;
    reads.known = directory.known(ask).await.map_err(|e| {
        ServiceError::Unavailable(format!(
            "cannot match records to persons (registry or residence service): {}",
            e.message()
        ))
    })?;
    // A closed queue means the store stage ended on an error, which the
    // caller takes from its task.
    let _ = to_store.send((chunk, reads)).await;
    Ok(())
}

/// The storing stage: each chunk in order, one atomic batch each, after
/// reading again the keys this stream's commits wrote since the chunk's reads.
async fn store_all(feeds: FeedStore, actor: String, mut queue: mpsc::Receiver<Matched>) -> Result<IngestSummary, Status> {
    let mut summary = IngestSummary::default();
    let mut own = OwnCommits::default();
    while let Some((chunk, mut reads)) = queue.recv().await {
        let (feeds, actor) = (feeds.clone(), actor.clone());
        let again = own.written_since(&reads);
        let (results, keys, seq) = tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
            reads.reread(&feeds, &again)?;
            let (results, seq) = feeds.store_chunk(&actor, &chunk, &reads)?;
            Ok((results, reads.into_keys(), seq))
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("ingest task failed: {e}")))??;
        if let Some(seq) = seq {
            own.push(seq, keys);
        }
        for result in results {
            tally(&mut summary, result);
        }
    }
    Ok(summary)
}

/// The keys of the stream's last [`OWN_COMMITS`] commits.
#[derive(Default)]
struct OwnCommits {
    commits: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// The newest sequence no longer kept.
    forgotten: u64,
}

impl OwnCommits {
    fn push(&mut self, seq: u64, keys: Vec<Vec<u8>>) {
        self.commits.push_back((seq, keys));
        while self.commits.len() > OWN_COMMITS {
            if let Some((dropped, _)) = self.commits.pop_front() {
                self.forgotten = dropped;
            }
        }
    }

    /// The chunk's keys that a commit of ours wrote after its reads (all of
    /// them, should such a commit be forgotten already).
    fn written_since(&self, reads: &ChunkReads) -> Vec<Vec<u8>> {
        let since = reads.read_at;
        if self.forgotten > since {
            return reads.keys().cloned().collect();
        }
        let mut keys: Vec<Vec<u8>> = self
            .commits
            .iter()
            .filter(|(seq, _)| *seq > since)
            .flat_map(|(_, keys)| keys.iter())
            .filter(|key| reads.has_key(key))
            .cloned()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Two summaries of one stream as one: counts added, the listed results
/// the first [`MAX_LISTED_RESULTS`] of both by position.
fn merge(a: IngestSummary, b: IngestSummary) -> IngestSummary {
    let mut results = a.results;
    results.extend(b.results);
    results.sort_by_key(|r| r.index);
    let overflow = results.len().saturating_sub(MAX_LISTED_RESULTS) as u64;
    results.truncate(MAX_LISTED_RESULTS);
    IngestSummary {
        received: a.received + b.received,
        accepted: a.accepted + b.accepted,
        unmatched: a.unmatched + b.unmatched,
        duplicates: a.duplicates + b.duplicates,
        stale: a.stale + b.stale,
        rejected: a.rejected + b.rejected,
        results,
        results_omitted: a.results_omitted + b.results_omitted + overflow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::feeds::RecordResult;

    fn listed(indices: impl IntoIterator<Item = u64>, outcome: Outcome) -> IngestSummary {
        let mut summary = IngestSummary::default();
        for index in indices {
            tally(
                &mut summary,
                RecordResult {
                    index,
                    outcome: outcome as i32,
                    ..Default::default()
                },
            );
        }
        summary
    }

    #[test]
    fn merged_summaries_list_the_first_results_of_both_by_position() {
        let limit = MAX_LISTED_RESULTS as u64;
        // Rejected at odd positions, stale at even ones, more than the bound in all.
        let rejected = listed((0..limit).map(|i| 2 * i + 1), Outcome::Rejected);
        let stale = listed((0..limit + 10).map(|i| 2 * i), Outcome::Stale);
        let merged = merge(rejected, stale);
        assert_eq!(merged.received, 2 * limit + 10);
        assert_eq!((merged.rejected, merged.stale), (limit, limit + 10));
        assert_eq!(merged.results.len(), MAX_LISTED_RESULTS);
        let positions: Vec<u64> = merged.results.iter().map(|r| r.index).collect();
        assert_eq!(positions, (0..limit).collect::<Vec<_>>(), "the first positions, in order");
        assert_eq!(merged.results_omitted, limit + 10, "every record not listed is counted");
    }
}
