//! The change feed every storage role serves (`popbase.changes.v1.ChangeFeed`):
//! its store's change log read as typed [`Change`]s, one per person
//! concerned. The gateway follows it to notify subscribers; each role says
//! what its batches mean through a [`ChangeReader`].
//!
//! Reading is bounded twice: by the batches scanned (`limit`, at most
//! [`MAX_BATCHES`]) and by the changes answered (the scan stops after the
//! batch that reaches [`MAX_CHANGES`]), so one answer stays well inside a
//! gRPC message whatever the batches hold.

use std::sync::Arc;

use popbase_proto::changes::change_feed_server::{ChangeFeed, ChangeFeedServer};
use popbase_proto::changes::{ChangesSinceRequest, ChangesSinceResponse};
use popbase_proto::gateway::{Change, ChangeSource};
use popbase_storage::{ChangeBatch, Store};
use tonic::{Request, Response, Status};

use crate::{ServiceError, ServiceResult};

/// Most batches one call scans.
pub const MAX_BATCHES: u32 = 10_000;
/// Changes after which a call stops at the end of its batch.
pub const MAX_CHANGES: usize = 5_000;
/// Batches read from the log at a time while counting changes.
const STEP: usize = 64;

/// What a role's batches mean as changes.
pub trait ChangeReader: Send + Sync + 'static {
    fn source(&self) -> ChangeSource;
    fn store(&self) -> &Store;
    /// Whether batches with this reason can hold changes (the others are
    /// skipped unread past their header).
    fn wants(&self, reason: &str) -> bool;
    /// Appends the changes `batch` holds, in batch order.
    fn read(&self, batch: &ChangeBatch, out: &mut Vec<Change>) -> ServiceResult<()>;
}

/// Changes after `after`, scanning at most `limit` batches; the changes,
/// the last sequence scanned and the log's head.
pub fn changes_since(reader: &dyn ChangeReader, after: u64, limit: u32) -> ServiceResult<ChangesSinceResponse> {
    let store = reader.store();
    let head = store.last_seq();
    let mut answer = ChangesSinceResponse {
        changes: Vec::new(),
        last_sequence: after,
        head_sequence: head,
        next_committed_unix_millis: store.committed_millis_after(after)?.unwrap_or(0),
    };
    let mut left = limit.min(MAX_BATCHES) as usize;
    while left > 0 && answer.changes.len() < MAX_CHANGES {
        let step = left.min(STEP);
        let (batches, last) = store.changes_since_where(answer.last_sequence, step, |reason| reader.wants(reason))?;
        if last == answer.last_sequence {
            break;
        }
        for batch in &batches {
            let before = answer.changes.len();
            reader.read(batch, &mut answer.changes)?;
            for change in &mut answer.changes[before..] {
                change.source = reader.source() as i32;
                change.sequence = batch.seq;
                change.committed_unix_millis = batch.unix_millis;
            }
            if answer.changes.len() >= MAX_CHANGES {
                // Stop after this batch: the cursor must name a whole batch.
                answer.last_sequence = batch.seq;
                return Ok(answer);
            }
        }
        answer.last_sequence = last;
        left -= step;
    }
    Ok(answer)
}

/// The gRPC face of a role's [`ChangeReader`].
#[derive(Clone)]
pub struct ChangeFeedService {
    reader: Arc<dyn ChangeReader>,
}

impl ChangeFeedService {
    pub fn new(reader: Arc<dyn ChangeReader>) -> Self {
        Self { reader }
    }

    pub fn into_server(self) -> ChangeFeedServer<Self> {
        ChangeFeedServer::new(self)
    }
}

#[tonic::async_trait]
impl ChangeFeed for ChangeFeedService {
    async fn changes_since(&self, request: Request<ChangesSinceRequest>) -> Result<Response<ChangesSinceResponse>, Status> {
        let request = request.into_inner();
        if request.limit > MAX_BATCHES {
            return Err(ServiceError::invalid("limit", format!("at most {MAX_BATCHES} batches")).into());
        }
        let reader = Arc::clone(&self.reader);
        let answer = tokio::task::spawn_blocking(move || changes_since(reader.as_ref(), request.after_sequence, request.limit))
            .await
            .map_err(|e| ServiceError::Internal(format!("change feed task failed: {e}")))??;
        Ok(Response::new(answer))
    }
}
