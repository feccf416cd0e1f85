//! The stages of one export after it is authorised: read the owning role's
//! batches and de-identify them, audit them, send them, close the trail.
//!
//! ```text
//! owning role ──▶ de-identify ──▶ group ──▶ BATCH record (durable) ──▶ caller
//!                  (own task)     (up to GROUP_ROWS, or GROUP_WAIT)
//! ```
//!
//! No batch leaves before a durable BATCH record names its subjects. A
//! record covers [`GROUP_ROWS`] rows, or what was de-identified within
//! [`GROUP_WAIT`] of a group's first batch (a slow source, the end). Each
//! record leaves up to 256 manifest rows in the ledger: taking whatever was
//! ready, records covered about 7,000 rows, and 59 exports of Zibo's
//! persons left 9 million keys whose compaction wrote 6 times the ledger's
//! size. At [`GROUP_ROWS`] a persons export leaves about 130 records.

use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_flight::error::FlightError;
use futures::StreamExt;
use futures::stream::BoxStream;
use popbase_common::ServiceError;
use popbase_export::Released;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument;

use crate::export_trail::{ExportTrail, ended};

/// An owning role's batches, read in process or decoded from its Flight stream.
pub type Batches = BoxStream<'static, Result<RecordBatch, ServiceError>>;

/// De-identified batches the de-identifier may run ahead of the audit.
const STAGED_AHEAD: usize = 4;
/// Most rows one BATCH record covers (a group of batches).
const GROUP_ROWS: usize = 32_768;
/// Batches of the owning role's size in one group.
const GROUP_BATCHES: usize = GROUP_ROWS / popbase_export::BATCH_ROWS;
/// Longest a group waits for more batches after its first: a slow source
/// still sends every batch within this of its arrival (plus its record).
const GROUP_WAIT: Duration = Duration::from_millis(20);
/// BATCH records in flight at once: each group still leaves only once its
/// own record is durable, but the next group's record is already on its
/// way while the caller receives this one's batches. Bounds what an export
/// holds: about (this + 1) groups and the staged batches, some 25 MB of
/// pseudonymised persons.
const BATCH_RECORDS_IN_FLIGHT: usize = 2;

/// What the de-identifying stage hands the stage that audits and sends.
enum Staged {
    /// A released batch and its subjects (export pseudonym prefixes).
    Batch(RecordBatch, Vec<u64>),
    /// The upstream failed or went quiet.
    Failed(ServiceError),
    /// Every batch was read: the export's rows and digest.
    Done(u64, [u8; 32]),
}

/// Batches that share one BATCH record, or the end of the stream.
enum Group {
    Batches(Vec<RecordBatch>, Vec<u64>),
    Failed(ServiceError),
    Done(u64, [u8; 32]),
}

/// A group once its BATCH record was written (or failed), in order.
enum Audited {
    Batches(Result<Vec<RecordBatch>, Status>),
    Failed(ServiceError),
    Done(u64, [u8; 32]),
}

/// Reads the owning role's batches and de-identifies them through
/// `released`, ahead of the stage that audits and sends (so the audit
/// write of one group overlaps the reading of the next).
async fn deidentify(mut released: Released, mut upstream: Batches, idle: Duration, out: mpsc::Sender<Staged>) {
    loop {
        let next = match tokio::time::timeout(idle, upstream.next()).await {
            Ok(next) => next,
            Err(_) => Some(Err(ServiceError::Unavailable(format!(
                "the export source sent nothing for {} s",
                idle.as_secs()
            )))),
        };
        let staged = match next {
            None => Staged::Done(released.rows(), released.digest()),
            Some(Err(e)) => Staged::Failed(e),
            Some(Ok(batch)) => match released.apply_naming_subjects(&batch) {
                Ok((batch, subjects)) => Staged::Batch(batch, subjects),
                Err(e) => Staged::Failed(ServiceError::Internal(format!("de-identifying: {e}"))),
            },
        };
        let last = !matches!(staged, Staged::Batch(..));
        if out.send(staged).await.is_err() || last {
            return;
        }
    }
}

/// Splits what was gathered at once into groups of at most [`GROUP_ROWS`]
/// rows (a batch larger than that is a group of its own), keeping order.
fn into_groups(ready: Vec<Staged>) -> Vec<Group> {
    let mut groups = Vec::new();
    let (mut batches, mut subjects, mut rows) = (Vec::new(), Vec::new(), 0);
    // A failure or the end closes the stream: nothing after it is sent.
    let mut end = None;
    for staged in ready {
        match staged {
            Staged::Batch(batch, ids) => {
                if rows > 0 && rows + batch.num_rows() > GROUP_ROWS {
                    groups.push(Group::Batches(std::mem::take(&mut batches), std::mem::take(&mut subjects)));
                    rows = 0;
                }
                rows += batch.num_rows();
                batches.push(batch);
                subjects.extend(ids);
            }
            Staged::Failed(e) => {
                end = Some(Group::Failed(e));
                break;
            }
            Staged::Done(total, digest) => {
                end = Some(Group::Done(total, digest));
                break;
            }
        }
    }
    if !batches.is_empty() {
        groups.push(Group::Batches(batches, subjects));
    }
    groups.extend(end);
    groups
}

/// The de-identified batches in groups, one BATCH record each: a group
/// closes at [`GROUP_BATCHES`] batches or [`GROUP_WAIT`] after its first.
fn groups(staged: mpsc::Receiver<Staged>) -> impl futures::Stream<Item = Group> {
    tokio_stream::StreamExt::chunks_timeout(ReceiverStream::new(staged), GROUP_BATCHES, GROUP_WAIT)
        .flat_map(|gathered| futures::stream::iter(into_groups(gathered)))
}

/// Moves de-identified batches to the caller, each only once the BATCH
/// record naming its subjects is durable, then closes the trail (see
/// [`ExportTrail`]).
pub async fn pump(
    trail: ExportTrail,
    released: Released,
    upstream: Batches,
    idle: Duration,
    tx: mpsc::Sender<Result<RecordBatch, FlightError>>,
) {
    let fail = |status: Status| FlightError::Tonic(Box::new(status));
    let (staged_tx, staged) = mpsc::channel(STAGED_AHEAD);
    tokio::spawn(deidentify(released, upstream, idle, staged_tx).instrument(tracing::Span::current()));
    let trail = &trail;
    // Only BATCH records are written ahead; the end of the trail is
    // written below, after every batch before it has left.
    let audited = groups(staged)
        .map(|group| async move {
            match group {
                Group::Batches(batches, subjects) => {
                    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
                    Audited::Batches(trail.batch(subjects, rows).await.map(|()| batches))
                }
                Group::Failed(error) => Audited::Failed(error),
                Group::Done(rows, digest) => Audited::Done(rows, digest),
            }
        })
        .buffered(BATCH_RECORDS_IN_FLIGHT);
    let mut audited = std::pin::pin!(audited);
    let mut sent_rows = 0;
    while let Some(next) = audited.next().await {
        match next {
            Audited::Batches(Ok(batches)) => {
                for batch in batches {
                    let rows = batch.num_rows() as u64;
                    match tokio::time::timeout(idle, tx.send(Ok(batch))).await {
                        Ok(Ok(())) => sent_rows += rows,
                        _ => {
                            // The caller went away or stopped reading.
                            trail.ended_early(sent_rows, ended::CALLER_GONE).await;
                            return;
                        }
                    }
                }
            }
            Audited::Batches(Err(status)) => {
                trail.ended_early(sent_rows, ended::AUDIT_FAILED).await;
                let _ = tx.send(Err(fail(status))).await;
                return;
            }
            Audited::Failed(error) => {
                trail.ended_early(sent_rows, ended::FETCH_FAILED).await;
                let _ = tx.send(Err(fail(error.into()))).await;
                return;
            }
            Audited::Done(rows, digest) => {
                if let Err(status) = trail.complete(rows, digest).await {
                    let _ = tx.send(Err(fail(status))).await;
                }
                return;
            }
        }
    }
    // The de-identifying stage ended without a word (it panicked).
    trail.ended_early(sent_rows, ended::FETCH_FAILED).await;
    let _ = tx.send(Err(fail(Status::internal("the export stopped unexpectedly")))).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array};

    use super::*;

    fn batch(rows: i32) -> Staged {
        let column: ArrayRef = Arc::new(Int32Array::from_iter_values(0..rows));
        let batch = RecordBatch::try_from_iter([("n", column)]).expect("batch");
        Staged::Batch(batch, vec![rows as u64])
    }

    fn shape(groups: &[Group]) -> Vec<String> {
        groups
            .iter()
            .map(|g| match g {
                Group::Batches(batches, subjects) => format!("{}:{}", batches.len(), subjects.len()),
                Group::Failed(_) => "failed".into(),
                Group::Done(..) => "done".into(),
            })
            .collect()
    }

    #[test]
    fn ready_batches_share_a_record_up_to_the_row_bound_and_the_end_stays_last() {
        let groups = into_groups(vec![batch(15_000), batch(15_000), batch(15_000), Staged::Done(45_000, [0; 32])]);
        assert_eq!(shape(&groups), ["2:2", "1:1", "done"]);
        let groups = into_groups(vec![batch(100_000), batch(1)]);
        assert_eq!(shape(&groups), ["1:1", "1:1"], "an oversized batch is a group of its own");
        let groups = into_groups(vec![batch(10), Staged::Failed(ServiceError::Unavailable("gone".into()))]);
        assert_eq!(shape(&groups), ["1:1", "failed"]);
    }

    #[tokio::test]
    async fn a_group_closes_when_full_or_when_the_source_is_slow() {
        let (tx, rx) = mpsc::channel(64);
        let mut stream = std::pin::pin!(groups(rx));
        // A fast source: full groups of GROUP_BATCHES batches.
        for _ in 0..GROUP_BATCHES + 1 {
            tx.send(batch(popbase_export::BATCH_ROWS as i32)).await.expect("send");
        }
        let first = stream.next().await.expect("a group");
        assert_eq!(shape(&[first]), [format!("{GROUP_BATCHES}:{GROUP_BATCHES}")]);
        // The batch left over goes alone once GROUP_WAIT has passed,
        // though the source is still open.
        let alone = tokio::time::timeout(GROUP_WAIT * 25, stream.next()).await.expect("not held back");
        assert_eq!(shape(&[alone.expect("a group")]), ["1:1"]);
        tx.send(Staged::Done(0, [0; 32])).await.expect("send");
        drop(tx);
        assert_eq!(shape(&[stream.next().await.expect("the end")]), ["done"]);
        assert!(stream.next().await.is_none());
    }
}
