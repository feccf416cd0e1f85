//! One thread reads a table, others build its batches, in read order.
//!
//! Reading rows from a RocksDB snapshot is cheap; turning them into Arrow
//! columns is not (decoding, copying each value into its builder). On one
//! thread that work capped a full export at what one core could build,
//! while the gateway's de-identification and the Flight encoder waited on
//! it. Here the snapshot's iterator copies each encoded row into a chunk
//! of [`BATCH_ROWS`], chunks go round-robin to [`builders`] threads, and a
//! collector takes their batches back in the same round-robin order: an
//! export's rows keep their key order, so two exports of the same snapshot
//! are the same file and have the same audit digest.
//!
//! Every channel holds one item, so at most a few chunks are in flight;
//! when the reader of the export goes away (or a row cannot be built) the
//! collector stops, the channels close behind it, and every thread ends.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use popbase_common::{ServiceError, ServiceResult};
use popbase_storage::StorageResult;

use crate::BATCH_ROWS;
use crate::columns::Columns;
use crate::source::{BatchSink, unbuilt};

/// Encoded rows copied out of the engine's buffers, back to back.
#[derive(Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Chunk {
    fn with_capacity(rows: usize, bytes: usize) -> Chunk {
        Chunk {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, encoded: &[u8]) {
        self.bytes.extend_from_slice(encoded);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The rows, in the order they were read.
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.bytes[start..end])
    }
}

/// Threads building batches: one per core up to four (the reader and the
/// collector mostly wait), at least one.
pub fn builders() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// Reads rows with `read` (which hands each encoded row to its visitor and
/// stops when the visitor returns `false`), builds each chunk of them with
/// `build` into a batch of `schema`, and sends the batches to `sink` in
/// read order.
pub fn build_in_parallel(
    schema: SchemaRef,
    sink: &mut BatchSink,
    read: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool) -> StorageResult<()>,
    build: impl Fn(&Chunk, &mut Columns) -> StorageResult<()> + Sync,
) -> ServiceResult<()> {
    build_on(builders(), schema, sink, read, build)
}

fn build_on(
    workers: usize,
    schema: SchemaRef,
    sink: &mut BatchSink,
    read: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool) -> StorageResult<()>,
    build: impl Fn(&Chunk, &mut Columns) -> StorageResult<()> + Sync,
) -> ServiceResult<()> {
    let workers = workers.max(1);
    thread::scope(|scope| {
        let mut chunks_out = Vec::with_capacity(workers);
        let mut batches_in = Vec::with_capacity(workers);
        let mut builders = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(1);
            let (batch_tx, batch_rx) = sync_channel::<ServiceResult<RecordBatch>>(1);
            let (columns, build) = (sink.columns(schema.clone()), &build);
            builders.push(scope.spawn(move || build_chunks(columns, chunk_rx, batch_tx, build)));
            chunks_out.push(chunk_tx);
            batches_in.push(batch_rx);
        }
        let collector = scope.spawn(move || collect(batches_in, sink));
        let read = read_chunks(chunks_out, read);
        let panicked = || ServiceError::Internal("an export's batch builder panicked".into());
        let collected = collector.join().unwrap_or_else(|_| Err(panicked()));
        // A builder that died would look like the end of the rows to the
        // collector: the export must fail rather than end short.
        for builder in builders {
            builder.join().map_err(|_| panicked())?;
        }
        read?;
        collected
    })
}

/// The reader: fills chunks and deals them round-robin.
fn read_chunks(
    chunks_out: Vec<SyncSender<Chunk>>,
    read: impl FnOnce(&mut dyn FnMut(&[u8]) -> bool) -> StorageResult<()>,
) -> StorageResult<()> {
    let mut chunk = Chunk::default();
    let mut next = 0usize;
    let mut open = true;
    let mut deal = |chunk: Chunk| {
        let sent = chunks_out[next % chunks_out.len()].send(chunk).is_ok();
        next += 1;
        sent
    };
    read(&mut |encoded| {
        chunk.push(encoded);
        if chunk.len() >= BATCH_ROWS {
            // The next chunk is sized like this one, with room to spare:
            // growing it row by row, or doubling it when it came out a
            // little larger, was 1.5 % of an export.
            let next = Chunk::with_capacity(BATCH_ROWS, chunk.bytes.len() + chunk.bytes.len() / 8);
            open = deal(std::mem::replace(&mut chunk, next));
        }
        open
    })?;
    if open && chunk.len() > 0 {
        deal(chunk);
    }
    Ok(())
}

/// A builder: one batch per chunk, in the order the chunks came.
fn build_chunks(
    mut columns: Columns,
    chunks: Receiver<Chunk>,
    batches: SyncSender<ServiceResult<RecordBatch>>,
    build: &(impl Fn(&Chunk, &mut Columns) -> StorageResult<()> + Sync),
) {
    for chunk in chunks {
        let batch = build(&chunk, &mut columns)
            .map_err(ServiceError::from)
            .and_then(|()| columns.take().map_err(unbuilt));
        if batches.send(batch).is_err() {
            return;
        }
    }
}

/// The collector: batches back in dealing order, into the sink. Dealing
/// and collecting both go round-robin, so the first builder found closed
/// is the end of the export.
fn collect(batches_in: Vec<Receiver<ServiceResult<RecordBatch>>>, sink: &mut BatchSink) -> ServiceResult<()> {
    for next in 0.. {
        let Ok(batch) = batches_in[next % batches_in.len()].recv() else {
            break;
        };
        let batch = batch?;
        if batch.num_rows() > 0 && !sink.send_batch(batch) {
            break;
        }
    }
    sink.outcome()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::{Array, StringArray};
    use arrow_schema::Schema;
    use popbase_storage::StorageError;
    use tokio::sync::mpsc;

    use super::*;
    use crate::columns::{Kind, col};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![col("n", Kind::Text, None)]))
    }

    /// Runs a pipeline over rows "0", "1", … and returns its outcome, the
    /// values sent in order, and how many rows the reader visited.
    fn run(
        rows: usize,
        keep_reader: bool,
        build: impl Fn(&Chunk, &mut Columns) -> StorageResult<()> + Sync,
    ) -> (ServiceResult<()>, Vec<String>, usize) {
        let (tx, mut rx) = mpsc::channel(1024);
        if !keep_reader {
            rx.close();
        }
        let mut sink = BatchSink::new(tx, schema());
        let visited = AtomicUsize::new(0);
        // Three builders whatever the machine, so chunks really interleave.
        let outcome = build_on(
            3,
            schema(),
            &mut sink,
            |visit| {
                for n in 0..rows {
                    visited.fetch_add(1, Ordering::Relaxed);
                    if !visit(n.to_string().as_bytes()) {
                        break;
                    }
                }
                Ok(())
            },
            build,
        );
        drop(sink);
        let mut values = Vec::new();
        while let Ok(Ok(batch)) = rx.try_recv() {
            let column = batch.column(0).as_any().downcast_ref::<StringArray>().expect("text");
            values.extend((0..column.len()).map(|i| column.value(i).to_string()));
        }
        (outcome, values, visited.into_inner())
    }

    fn copy_rows(chunk: &Chunk, columns: &mut Columns) -> StorageResult<()> {
        for row in chunk.rows() {
            columns.row().text_bytes(row);
        }
        Ok(())
    }

    #[test]
    fn batches_come_back_in_read_order_across_builders() {
        let rows = BATCH_ROWS * 5 + 123;
        let (outcome, values, _) = run(rows, true, copy_rows);
        outcome.expect("export");
        let expected: Vec<String> = (0..rows).map(|n| n.to_string()).collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn a_row_that_cannot_be_built_fails_the_export_and_stops_it() {
        let rows = BATCH_ROWS * 40;
        let poison = (BATCH_ROWS * 2 + 5).to_string();
        let (outcome, values, visited) = run(rows, true, |chunk, columns| {
            if chunk.rows().any(|r| r == poison.as_bytes()) {
                return Err(StorageError::decode("t", "poisoned"));
            }
            copy_rows(chunk, columns)
        });
        assert!(matches!(outcome, Err(e) if e.to_string().contains("poisoned")));
        assert_eq!(values.len(), BATCH_ROWS * 2, "the batches before the bad one, nothing after");
        assert!(visited < rows, "reading stopped early ({visited} of {rows})");
    }

    #[test]
    fn a_builder_that_panics_fails_the_export_instead_of_ending_it_short() {
        let rows = BATCH_ROWS * 6;
        let (outcome, values, _) = run(rows, true, |chunk, columns| {
            if chunk.rows().any(|r| r == BATCH_ROWS.to_string().as_bytes()) {
                panic!("a bug in a dataset's row writer");
            }
            copy_rows(chunk, columns)
        });
        assert!(matches!(outcome, Err(e) if e.to_string().contains("panicked")));
        assert!(values.len() < rows);
    }

    #[test]
    fn a_reader_that_went_away_stops_the_scan_without_an_error() {
        let rows = BATCH_ROWS * 40;
        let (outcome, values, visited) = run(rows, false, copy_rows);
        outcome.expect("a closed reader is not an error");
        assert!(values.is_empty());
        assert!(visited < rows, "reading stopped early ({visited} of {rows})");
    }

    #[test]
    fn a_chunk_gives_back_its_rows_in_order() {
        let mut chunk = Chunk::default();
        for row in [&b"ab"[..], b"", b"cde"] {
            chunk.push(row);
        }
        assert_eq!(chunk.rows().collect::<Vec<_>>(), vec![&b"ab"[..], b"", b"cde"]);
        assert_eq!(chunk.len(), 3);
    }
}
