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
use std::time::Duration;

use popbase_proto::changes::change_feed_server::{ChangeFeed, ChangeFeedServer};
use popbase_proto::changes::{ChangesSinceRequest, ChangesSinceResponse};
use popbase_proto::gateway::{Change, ChangeSource};
use popbase_storage::{ChangeBatch, Store};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{ServiceError, ServiceResult};

/// Most batches one call scans.
pub const MAX_BATCHES: u32 = 10_000;
/// Changes after which a call stops at the end of its batch.
pub const MAX_CHANGES: usize = 5_000;
/// Batches read from the log at a time while counting changes.
const STEP: usize = 64;
/// The longest a call may wait for the next commit.
pub const MAX_WAIT_MILLIS: u32 = 10_000;

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
    /// Woken by every commit to the reader's store.
    commits: Arc<Notify>,
}

impl ChangeFeedService {
    pub fn new(reader: Arc<dyn ChangeReader>) -> Self {
        let commits = Arc::new(Notify::new());
        let wake = Arc::clone(&commits);
        reader.store().listen_commits(Arc::new(move |_| wake.notify_waiters()));
        Self { reader, commits }
    }

    /// Waits up to `wait` for a batch after `after` (none may come).
    async fn wait_for_commit_after(&self, after: u64, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.commits.notified();
            tokio::pin!(notified);
            // Registered before the check: a commit in between still wakes us.
            notified.as_mut().enable();
            if self.reader.store().last_seq() > after || tokio::time::timeout_at(until, notified).await.is_err() {
                return;
            }
        }
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
        if request.wait_millis > MAX_WAIT_MILLIS {
            return Err(ServiceError::invalid("wait_millis", format!("at most {MAX_WAIT_MILLIS}")).into());
        }
        if request.wait_millis > 0 {
            let wait = Duration::from_millis(u64::from(request.wait_millis));
            self.wait_for_commit_after(request.after_sequence, wait).await;
        }
        let reader = Arc::clone(&self.reader);
        let answer = tokio::task::spawn_blocking(move || changes_since(reader.as_ref(), request.after_sequence, request.limit))
            .await
            .map_err(|e| ServiceError::Internal(format!("change feed task failed: {e}")))??;
        Ok(Response::new(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_storage::{Batch, Schema, Table};

    /// Any prost message serves as the rows' value.
    const ROWS: Table<ChangesSinceRequest> = Table::new("rows");
    const SCHEMA: Schema = Schema {
        name: "changes-test",
        tables: &["rows"],
        write_mostly: &[],
        history: &[],
    };

    /// One change per row a `row` batch writes, named after the batch's actor.
    struct Rows(Store);

    impl ChangeReader for Rows {
        fn source(&self) -> ChangeSource {
            ChangeSource::Residence
        }

        fn store(&self) -> &Store {
            &self.0
        }

        fn wants(&self, reason: &str) -> bool {
            reason == "row"
        }

        fn read(&self, batch: &ChangeBatch, out: &mut Vec<Change>) -> ServiceResult<()> {
            out.extend(batch.changes_in("rows").map(|_| Change {
                id_number: batch.actor.clone(),
                ..Default::default()
            }));
            Ok(())
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), SCHEMA, Default::default()).expect("store");
        (dir, store)
    }

    fn commit(store: &Store, actor: &str, reason: &str) {
        let mut batch = Batch::new(actor, reason);
        batch.put(&ROWS, actor.as_bytes().to_vec(), &ChangesSinceRequest::default());
        store.commit(batch).expect("commit");
    }

    #[test]
    fn a_scan_skips_other_batches_and_stamps_each_change_with_its_batch() {
        let (_dir, store) = store();
        for (actor, reason) in [("a", "row"), ("b", "cursor"), ("c", "row")] {
            commit(&store, actor, reason);
        }
        let answer = changes_since(&Rows(store.clone()), 0, 10).expect("read");
        let seen: Vec<(&str, u64, i32)> = answer
            .changes
            .iter()
            .map(|c| (c.id_number.as_str(), c.sequence, c.source))
            .collect();
        let residence = ChangeSource::Residence as i32;
        assert_eq!(seen, vec![("a", 1, residence), ("c", 3, residence)]);
        assert_eq!((answer.last_sequence, answer.head_sequence), (3, 3));
        let later = changes_since(&Rows(store), 1, 1).expect("read");
        assert_eq!(
            (later.changes.len(), later.last_sequence),
            (0, 2),
            "one batch scanned: the cursor's"
        );
        assert!(later.next_committed_unix_millis > 0, "batch 2's commit time");
    }

    #[tokio::test]
    async fn a_waiting_call_answers_as_soon_as_the_next_batch_commits() {
        let (_dir, store) = store();
        let service = ChangeFeedService::new(Arc::new(Rows(store.clone())));
        let request = ChangesSinceRequest {
            after_sequence: 0,
            limit: 10,
            wait_millis: MAX_WAIT_MILLIS,
        };
        let call = tokio::spawn(async move { service.changes_since(Request::new(request)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!call.is_finished(), "nothing committed yet: the call waits");
        commit(&store, "a", "row");
        let answered = tokio::time::timeout(Duration::from_secs(MAX_WAIT_MILLIS as u64 / 2000), call)
            .await
            .expect("answered well before its wait ran out")
            .expect("joined")
            .expect("answer")
            .into_inner();
        assert_eq!(answered.changes.len(), 1);
    }
}
