//! RegistryEvents, ResidenceEvents and DepartmentFeeds: departments' writes through the
//! gate. Each write is authenticated, validated, authorised (approval,
//! purpose, quota, and the kind of each event or record), audited durably,
//! and only then forwarded to the service that owns the data; a write whose
//! audit record cannot be written is never applied.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::feeds::{FeedRecord, IngestSummary};
use popbase_proto::gateway::department_feeds_server::{DepartmentFeeds, DepartmentFeedsServer};
use popbase_proto::gateway::life_event_submission::Event;
use popbase_proto::gateway::registry_events_server::{RegistryEvents, RegistryEventsServer};
use popbase_proto::gateway::residence_events_server::{ResidenceEvents, ResidenceEventsServer};
use popbase_proto::gateway::residence_receipt::Outcome;
use popbase_proto::gateway::residence_submission::Event as ResidenceEvent;
use popbase_proto::gateway::{FeedSubmission, LifeEventSubmission, ResidenceReceipt, ResidenceSubmission};
use popbase_proto::household::EventReceipt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::inbound::next_within;
use super::require_purpose;
use crate::catalogue::interface;
use crate::denial::{Denial, reason};
use crate::gate::{Admission, Ask, Caller, Gate};
use crate::interfaces::writes::{self, MAX_RECORDS_PER_MESSAGE};
use crate::sources::Sources;

#[derive(Clone)]
pub struct WriteServices {
    gate: Arc<Gate>,
    sources: Sources,
}

impl WriteServices {
    pub fn new(gate: Arc<Gate>, sources: Sources) -> Self {
        Self { gate, sources }
    }

    pub fn events(&self) -> RegistryEventsServer<Self> {
        RegistryEventsServer::new(self.clone())
    }

    pub fn feeds(&self) -> DepartmentFeedsServer<Self> {
        DepartmentFeedsServer::new(self.clone())
    }

    pub fn residence(&self) -> ResidenceEventsServer<Self> {
        ResidenceEventsServer::new(self.clone())
    }
}

/// A request carrying `actor` in the metadata the services record.
fn with_actor<T>(message: T, actor: &str) -> ServiceResult<Request<T>> {
    let mut request = Request::new(message);
    let value = actor
        .parse()
        .map_err(|_| ServiceError::invalid("officer_id", "must be 1-48 of A-Z a-z 0-9 . _ -"))?;
    request.metadata_mut().insert(writes::ACTOR_METADATA_KEY, value);
    Ok(request)
}

/// How long the owning service may take to apply one forwarded event.
const FORWARD_DEADLINE: Duration = Duration::from_secs(10);

/// How long the feeds service may leave a submission's records waiting
/// (queue full) or keep its summary after the last record.
const FEEDS_IDLE: Duration = Duration::from_secs(30);

/// A forwarded write the owning service did not answer in time: it may
/// still be applied, so the department reads it back before re-sending.
fn late(owner: &str, after: Duration) -> ServiceError {
    ServiceError::Unavailable(format!(
        "{owner} did not answer within {} s; the write may still be applied: read it back before sending it again",
        after.as_secs()
    ))
}

/// The refusal of a kind the approval does not list (never echoing caller text).
fn kind_not_approved(interface: &str, kind: &str) -> ServiceError {
    Denial::new(
        reason::KIND_NOT_APPROVED,
        format!("{interface}: '{kind}' is not approved for this department"),
    )
    .into()
}

/// One unary write submission: its purpose, officer and event.
struct Submitted<E> {
    purpose: String,
    officer_id: String,
    event: Option<E>,
}

/// What the gate needs to know of one kind of write.
struct WriteKind<E> {
    interface: &'static str,
    /// Whose data the forwarded write changes (in `forwarded` errors).
    owner: &'static str,
    /// The event's kind (a catalogue field) and the ID numbers it names.
    describe: fn(&E) -> (&'static str, Vec<String>),
    /// Bounds on the event's repeated fields.
    check: fn(&E) -> ServiceResult<()>,
}

/// The path of one unary write: authenticate, validate (purpose, officer,
/// an event), authorise (approval, purpose, quota, the event's kind), audit
/// durably, and only then `forward` it under the caller's actor.
async fn unary_write<E, Out, Fut>(
    gate: &Gate,
    caller: Caller,
    write: WriteKind<E>,
    submitted: Submitted<E>,
    forward: impl FnOnce(E, String) -> Fut,
) -> Result<Out, Status>
where
    Fut: Future<Output = Result<Out, Status>>,
{
    let name = write.interface;
    let Submitted {
        purpose,
        officer_id,
        event,
    } = submitted;
    let checked = require_purpose(&purpose)
        .and_then(|()| writes::officer("officer_id", &officer_id))
        .and_then(|()| event.ok_or_else(|| ServiceError::invalid("event", "name the event (one of the submission's kinds)")))
        .and_then(|event| (write.check)(&event).map(|()| event));
    let event = match checked {
        Ok(event) => event,
        Err(e) => return Err(gate.refuse(&caller, name, &purpose, e).await),
    };
    let (kind, subjects) = (write.describe)(&event);
    let admission = admit(gate, &caller, name, &purpose, &subjects).await?;
    if !admission.allows(kind) {
        return Err(gate.fail(&admission, kind_not_approved(name, kind)).await);
    }
    // The audit record first: no record, no write.
    gate.commit_write(&admission, vec![kind.to_string()], 1).await?;
    let actor = writes::actor(&caller.department, &officer_id);
    match tokio::time::timeout(FORWARD_DEADLINE, forward(event, actor)).await {
        Ok(Ok(answer)) => Ok(answer),
        // The client's own deadline (limits.upstream_timeout_secs) may end it first.
        Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
            Err(gate.fail(&admission, late(write.owner, FORWARD_DEADLINE)).await)
        }
        Ok(Err(status)) => Err(gate.fail(&admission, writes::forwarded(write.owner, status)).await),
        Err(_) => Err(gate.fail(&admission, late(write.owner, FORWARD_DEADLINE)).await),
    }
}

#[tonic::async_trait]
impl RegistryEvents for WriteServices {
    async fn submit(&self, request: Request<LifeEventSubmission>) -> Result<Response<EventReceipt>, Status> {
        let caller = self.gate.authenticate(&request, interface::SUBMIT_LIFE_EVENT).await?;
        let s = request.into_inner();
        let write = WriteKind {
            interface: interface::SUBMIT_LIFE_EVENT,
            owner: "the registry",
            describe: |e| (writes::event_kind(e), writes::event_subjects(e)),
            check: writes::event_bounds,
        };
        let submitted = Submitted {
            purpose: s.purpose,
            officer_id: s.officer_id,
            event: s.event,
        };
        let receipt = unary_write(&self.gate, caller, write, submitted, |mut event, actor| {
            writes::set_actor(&mut event, &actor);
            forward_event(&self.sources, event)
        })
        .await?;
        Ok(Response::new(receipt))
    }
}

#[tonic::async_trait]
impl ResidenceEvents for WriteServices {
    async fn submit(&self, request: Request<ResidenceSubmission>) -> Result<Response<ResidenceReceipt>, Status> {
        let caller = self.gate.authenticate(&request, interface::SUBMIT_RESIDENCE).await?;
        let s = request.into_inner();
        let write = WriteKind {
            interface: interface::SUBMIT_RESIDENCE,
            owner: "the residence service",
            describe: |e| (writes::residence_kind(e), writes::residence_subjects(e)),
            check: |_| Ok(()),
        };
        let submitted = Submitted {
            purpose: s.purpose,
            officer_id: s.officer_id,
            event: s.event,
        };
        let outcome = unary_write(&self.gate, caller, write, submitted, |event, actor| async move {
            forward_residence(&self.sources, event, &actor).await
        })
        .await?;
        Ok(Response::new(ResidenceReceipt { outcome: Some(outcome) }))
    }
}

async fn forward_residence(sources: &Sources, event: ResidenceEvent, actor: &str) -> Result<Outcome, Status> {
    let mut client = sources.residence_writes.clone();
    Ok(match event {
        ResidenceEvent::RegisterResidence(e) => Outcome::Registration(client.register_residence(with_actor(e, actor)?).await?.into_inner()),
        ResidenceEvent::ApplyForPermit(e) => Outcome::Decision(client.apply_for_permit(with_actor(e, actor)?).await?.into_inner()),
        ResidenceEvent::EndorsePermit(e) => Outcome::Permit(client.endorse_permit(with_actor(e, actor)?).await?.into_inner()),
        ResidenceEvent::CancelPermit(e) => Outcome::Permit(client.cancel_permit(with_actor(e, actor)?).await?.into_inner()),
    })
}

async fn admit(gate: &Gate, caller: &Caller, name: &'static str, purpose: &str, subjects: &[String]) -> Result<Admission, Status> {
    let ask = Ask {
        interface: name,
        purpose,
        subjects,
        units: 1,
        needs: &[],
    };
    gate.authorise(caller, ask).await
}

async fn forward_event(sources: &Sources, event: Event) -> Result<EventReceipt, Status> {
    let mut client = sources.life_events.clone();
    let receipt = match event {
        Event::Birth(e) => client.register_birth(e).await,
        Event::Death(e) => client.register_death(e).await,
        Event::SettleMoveIn(e) => client.settle_move_in(e).await,
        Event::MoveOut(e) => client.move_out(e).await,
        Event::TransferWithinCity(e) => client.transfer_within_city(e).await,
        Event::MoveBetweenHouseholds(e) => client.move_between_households(e).await,
        Event::CollectiveHousehold(e) => client.create_collective_household(e).await,
        Event::ChangeHead(e) => client.change_head(e).await,
        Event::ChangeAddress(e) => client.change_address(e).await,
        Event::FamilyBook(e) => client.issue_family_book(e).await,
    }?;
    Ok(receipt.into_inner())
}

/// A submission whose stream failed before its end (a malformed message,
/// a cancelled call): audited; the chunks before it stand, and re-sending
/// them is idempotent (they come back as duplicates).
fn broke_off() -> ServiceError {
    ServiceError::Aborted("the submission's stream broke off; chunks before it were applied, re-sending is idempotent".into())
}

/// How many chunks may wait between the gate and the feeds service: the
/// department's stream is read no faster than the feeds take it.
const FORWARD_QUEUE: usize = 2 * MAX_RECORDS_PER_MESSAGE;

#[tonic::async_trait]
impl DepartmentFeeds for WriteServices {
    async fn submit(&self, request: Request<Streaming<FeedSubmission>>) -> Result<Response<IngestSummary>, Status> {
        let gate = &self.gate;
        let name = interface::SUBMIT_FEED;
        let caller = gate.authenticate(&request, name).await?;
        let mut messages = request.into_inner();
        let first = match next_within(&mut messages, gate.stream_idle, broke_off).await {
            Ok(first) => first.unwrap_or_default(),
            Err(e) => return Err(gate.refuse(&caller, name, "", e).await),
        };
        let (purpose, officer) = (first.purpose.clone(), first.officer_id.clone());
        if let Err(e) = require_purpose(&purpose).and_then(|()| writes::officer("officer_id", &officer)) {
            return Err(gate.refuse(&caller, name, &purpose, e).await);
        }
        let mut forward = Forward::new(&writes::actor(&caller.department, &officer));
        let mut chunk: Vec<FeedRecord> = Vec::with_capacity(MAX_RECORDS_PER_MESSAGE);
        let mut message = Some(first);
        while let Some(current) = message {
            let checked = writes::records_bound(current.records.len())
                .and_then(|()| writes::same_or_empty("purpose", &purpose, &current.purpose))
                .and_then(|()| writes::same_or_empty("officer_id", &officer, &current.officer_id));
            if let Err(e) = checked {
                return Err(gate.refuse(&caller, name, &purpose, e).await);
            }
            for record in current.records {
                chunk.push(record);
                if chunk.len() == MAX_RECORDS_PER_MESSAGE {
                    self.pass_chunk(&caller, &purpose, std::mem::take(&mut chunk), &mut forward).await?;
                }
            }
            message = match next_within(&mut messages, gate.stream_idle, broke_off).await {
                Ok(next) => next,
                Err(e) => return Err(gate.refuse(&caller, name, &purpose, e).await),
            };
        }
        if !chunk.is_empty() {
            self.pass_chunk(&caller, &purpose, chunk, &mut forward).await?;
        }
        match forward.finish().await {
            Ok(summary) => Ok(Response::new(summary)),
            Err(e) => Err(gate.refuse(&caller, name, &purpose, e).await),
        }
    }
}

impl WriteServices {
    /// One chunk through the gate: authorise (one quota unit), check every
    /// record's kind, audit durably, then hand the records to the feeds.
    async fn pass_chunk(&self, caller: &Caller, purpose: &str, chunk: Vec<FeedRecord>, forward: &mut Forward) -> Result<(), Status> {
        let gate = &self.gate;
        let name = interface::SUBMIT_FEED;
        let mut subjects = Vec::with_capacity(chunk.len());
        let mut kinds: Vec<&'static str> = Vec::new();
        for record in &chunk {
            writes::feed_subjects(record, &mut subjects);
            if let Some(kind) = writes::feed_kind(record)
                && !kinds.contains(&kind)
            {
                kinds.push(kind);
            }
        }
        let admission = admit(gate, caller, name, purpose, &subjects).await?;
        if let Some(kind) = kinds.iter().find(|k| !admission.allows(k)) {
            return Err(gate.fail(&admission, kind_not_approved(name, kind)).await);
        }
        let count = chunk.len() as u64;
        gate.commit_write(&admission, kinds.iter().map(|k| k.to_string()).collect(), count)
            .await?;
        for record in chunk {
            if let Err(e) = forward.send(&self.sources, record).await {
                return Err(gate.fail(&admission, e).await);
            }
        }
        Ok(())
    }
}

/// The client stream into `Feeds.Ingest` that a submission's admitted
/// records go to, under the department's actor; opened with the first
/// admitted chunk, so nothing reaches the feeds before the gate has passed
/// and audited something.
struct Forward {
    actor: String,
    open: Option<OpenIngest>,
}

/// The records' way in, and the `Feeds.Ingest` call that answers with the summary.
type OpenIngest = (mpsc::Sender<FeedRecord>, tokio::task::JoinHandle<Result<IngestSummary, Status>>);

impl Forward {
    fn new(actor: &str) -> Forward {
        Forward {
            actor: actor.to_string(),
            open: None,
        }
    }

    async fn send(&mut self, sources: &Sources, record: FeedRecord) -> Result<(), ServiceError> {
        let (records, call) = match &mut self.open {
            Some(open) => open,
            None => {
                let (records, queue) = mpsc::channel(FORWARD_QUEUE);
                let request = with_actor(ReceiverStream::new(queue), &self.actor)?;
                let mut client = sources.feeds_ingest.clone();
                let call = tokio::spawn(async move { client.ingest(request).await.map(Response::into_inner) });
                self.open.insert((records, call))
            }
        };
        match tokio::time::timeout(FEEDS_IDLE, records.send(record)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                // The feeds call ended early: its status says why.
                ingest_result(call.await)?;
                Err(ServiceError::Internal("the feeds service ended the submission early".into()))
            }
            Err(_) => {
                call.abort();
                Err(late("the feeds service", FEEDS_IDLE))
            }
        }
    }

    /// The feeds service's summary (an empty one when no record was sent).
    async fn finish(self) -> Result<IngestSummary, ServiceError> {
        let Some((records, call)) = self.open else {
            return Ok(IngestSummary::default());
        };
        drop(records);
        let mut call = call;
        match tokio::time::timeout(FEEDS_IDLE, &mut call).await {
            Ok(joined) => ingest_result(joined),
            Err(_) => {
                call.abort();
                Err(late("the feeds service", FEEDS_IDLE))
            }
        }
    }
}

/// What the ended `Feeds.Ingest` call means for the department.
fn ingest_result(joined: Result<Result<IngestSummary, Status>, tokio::task::JoinError>) -> Result<IngestSummary, ServiceError> {
    match joined {
        Ok(Ok(summary)) => Ok(summary),
        Ok(Err(status)) => Err(writes::forwarded("the feeds", status)),
        Err(e) => Err(ServiceError::Internal(format!("the feeds forwarding task: {e}"))),
    }
}
