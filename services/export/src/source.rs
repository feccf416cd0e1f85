//! What a data-owning role implements to serve its datasets, and the sink
//! its blocking scan writes batches into.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, Schema, SchemaRef};
use popbase_common::{ServiceError, ServiceResult};
use tokio::sync::mpsc;

use crate::columns::Columns;
use crate::dataset::{Dataset, Owner};
use crate::ticket::Ticket;
use crate::{BATCH_ROWS, DATASET_KEY, SNAPSHOT_SEQ_KEY};

/// A scan that runs on a blocking thread and writes into a [`BatchSink`].
pub type Scan = Box<dyn FnOnce(&mut BatchSink) -> ServiceResult<()> + Send>;

/// An export ready to run: the snapshot is taken, its sequence known.
pub struct Export {
    pub seq: u64,
    pub schema: SchemaRef,
    pub scan: Scan,
}

pub trait DatasetSource: Send + Sync + 'static {
    fn owner(&self) -> Owner;

    /// The columns of `dataset` (roles marked, no metadata).
    fn schema(&self, dataset: &'static Dataset) -> SchemaRef;

    /// Takes a snapshot and prepares the scan `ticket` asks for.
    fn open(&self, ticket: &Ticket, dataset: &'static Dataset) -> ServiceResult<Export>;
}

/// `schema` with the dataset and snapshot sequence in its metadata.
pub fn with_export_metadata(schema: &Schema, dataset: &str, seq: u64) -> SchemaRef {
    let mut metadata = schema.metadata().clone();
    metadata.insert(DATASET_KEY.to_string(), dataset.to_string());
    metadata.insert(SNAPSHOT_SEQ_KEY.to_string(), seq.to_string());
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata))
}

/// Where a scan sends its batches. Bounded: a slow reader slows the scan
/// down instead of letting batches pile up in memory.
pub struct BatchSink {
    tx: mpsc::Sender<ServiceResult<RecordBatch>>,
    schema: SchemaRef,
    failed: Option<ServiceError>,
    gone: bool,
}

impl BatchSink {
    pub fn new(tx: mpsc::Sender<ServiceResult<RecordBatch>>, schema: SchemaRef) -> Self {
        Self {
            tx,
            schema,
            failed: None,
            gone: false,
        }
    }

    /// Sends a batch once `columns` holds a full one. `false`: stop
    /// scanning (the reader went away, or the batch could not be built).
    pub fn fill(&mut self, columns: &mut Columns) -> bool {
        if columns.rows() < BATCH_ROWS {
            return !self.gone && self.failed.is_none();
        }
        self.send(columns)
    }

    fn send(&mut self, columns: &mut Columns) -> bool {
        if columns.rows() == 0 || self.gone || self.failed.is_some() {
            return !self.gone && self.failed.is_none();
        }
        match columns.take() {
            Ok(batch) => self.send_batch(batch),
            Err(e) => {
                self.failed = Some(unbuilt(e));
                false
            }
        }
    }

    /// Columns for rows of `schema` that build only what this sink sends
    /// on (the ticket's columns, see [`start`]).
    pub fn columns(&self, schema: SchemaRef) -> Columns {
        Columns::keeping(schema, &self.schema)
    }

    /// `batch` as this sink sends it: its columns picked by name when it
    /// has more (a scan that built the dataset whole), metadata added.
    fn fit(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        let batch = if batch.num_columns() == self.schema.fields().len() {
            batch
        } else {
            let schema = batch.schema();
            let picked = self
                .schema
                .fields()
                .iter()
                .map(|f| schema.index_of(f.name()))
                .collect::<Result<Vec<_>, _>>()?;
            batch.project(&picked)?
        };
        batch.with_schema(self.schema.clone())
    }

    /// Sends a batch built elsewhere (see [`crate::pipeline`]). `false`:
    /// stop scanning.
    pub fn send_batch(&mut self, batch: RecordBatch) -> bool {
        if self.gone || self.failed.is_some() {
            return false;
        }
        match self.fit(batch) {
            Ok(batch) => {
                self.gone = self.tx.blocking_send(Ok(batch)).is_err();
                !self.gone
            }
            Err(e) => {
                self.failed = Some(unbuilt(e));
                false
            }
        }
    }

    /// Sends what is left; the scan's outcome.
    pub fn finish(&mut self, columns: &mut Columns) -> ServiceResult<()> {
        self.send(columns);
        self.outcome()
    }

    /// The scan's outcome: a batch that could not be built is its error; a
    /// reader that went away is not.
    pub fn outcome(&mut self) -> ServiceResult<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A batch that could not be built from its columns: a dataset's bug.
pub(crate) fn unbuilt(e: ArrowError) -> ServiceError {
    ServiceError::Internal(format!("building an export batch: {e}"))
}

/// Batches a scan may run ahead of its reader.
pub const READ_AHEAD: usize = 4;

/// The columns of `schema` a ticket names (`columns`, all when empty), in
/// the dataset's order.
pub fn project(schema: &Schema, columns: &[String]) -> ServiceResult<Schema> {
    if columns.is_empty() {
        return Ok(schema.clone());
    }
    if let Some(unknown) = columns.iter().find(|c| schema.field_with_name(c).is_err()) {
        return Err(ServiceError::invalid(
            "ticket.columns",
            format!("the dataset has no column {unknown}"),
        ));
    }
    let fields: Vec<_> = schema.fields().iter().filter(|f| columns.contains(f.name())).cloned().collect();
    Ok(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Opens `ticket` on `source` (the snapshot is taken on a blocking thread)
/// and starts its scan: the schema (the ticket's columns), with the dataset
/// and snapshot sequence in its metadata, and the batches. The internal
/// Flight service streams these; an all-in-one gateway reads them as they
/// are, without encoding them to Arrow IPC and back in the same process.
pub async fn start(
    source: Arc<dyn DatasetSource>,
    ticket: Ticket,
    dataset: &'static Dataset,
) -> ServiceResult<(SchemaRef, mpsc::Receiver<ServiceResult<RecordBatch>>)> {
    // Unknown columns are refused before a snapshot is taken.
    project(&source.schema(dataset), &ticket.columns)?;
    let columns = ticket.columns.clone();
    let export = tokio::task::spawn_blocking(move || source.open(&ticket, dataset))
        .await
        .map_err(|e| ServiceError::Internal(format!("opening an export: {e}")))??;
    let schema = with_export_metadata(&project(&export.schema, &columns)?, dataset.name, export.seq);
    let export = Export {
        schema: schema.clone(),
        ..export
    };
    Ok((schema, spawn(export, READ_AHEAD)))
}

/// Runs `export` on a blocking thread; its batches arrive on the receiver,
/// a failure as the last item.
pub fn spawn(export: Export, depth: usize) -> mpsc::Receiver<ServiceResult<RecordBatch>> {
    let (tx, rx) = mpsc::channel(depth);
    let errors = tx.clone();
    let sink = BatchSink::new(tx, export.schema);
    tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        if let Err(e) = (export.scan)(&mut sink) {
            let _ = errors.blocking_send(Err(e));
        }
    });
    rx
}
