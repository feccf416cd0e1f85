//! Enrollment: one application, or a whole intake as a bidirectional
//! stream. The stream authenticates once; each item is authorised,
//! minimised and audited on its own, so a malformed item answers with its
//! error and the intake goes on, while a denial (quota, approval) ends it.

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::join_all;
use popbase_common::ServiceError;
use popbase_proto::gateway::enrollment_server::{Enrollment, EnrollmentServer};
use popbase_proto::gateway::{EnrollmentCheckRequest, EnrollmentCheckResponse, ItemError};
use popbase_proto::household::PersonView;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::inbound::idle_bounded;
use super::{Fetched, answer, require_purpose, respond, today};
use crate::catalogue::interface::ENROLLMENT_CHECK;
use crate::gate::{Admission, Ask, Caller, Gate};
use crate::interfaces::enrollment::{self, ChildAges, Enrollment as EnrollmentInput};
use crate::interfaces::standing::standings;
use crate::sources::Sources;

/// Answers buffered ahead of a slow reader.
const INTAKE_BUFFER: usize = 256;
/// Most applications of one intake stream checked together. A refusal
/// (quota, approval) ends the stream; applications behind it in the chunks
/// in flight are checked and audited but not answered.
const INTAKE_CHUNK: usize = 256;
/// Chunks of one stream being checked at once, answered in order. A
/// refusal's chunk and the one after it may both have been checked and
/// audited when the stream ends.
const CHUNKS_IN_FLIGHT: usize = 2;

/// Who counts as a child for the check (the catalogue's `subject_ages`).
fn child_ages(gate: &Gate) -> ChildAges {
    ChildAges::from_catalogue(gate.catalogue().interface(ENROLLMENT_CHECK).and_then(|i| i.subject_ages))
}

/// An intake stream that broke off: the answers sent before it stand.
fn broke_off() -> ServiceError {
    ServiceError::Aborted("the intake stream broke off; the applications answered before it stand".into())
}

#[derive(Clone)]
pub struct EnrollmentService {
    gate: Arc<Gate>,
    sources: Sources,
}

impl EnrollmentService {
    pub fn new(gate: Arc<Gate>, sources: Sources) -> Self {
        Self { gate, sources }
    }

    pub fn server(&self) -> EnrollmentServer<Self> {
        EnrollmentServer::new(self.clone())
    }
}

/// An intake application after validation and authorisation.
enum Prepared {
    /// Malformed: answered inline with its error (and audited as refused).
    Answered(Box<EnrollmentCheckResponse>),
    /// The application, its admission and its subjects (child first).
    Admitted(Box<(EnrollmentInput, Admission, Vec<String>)>),
    /// Refused (quota, approval): ends the stream.
    Refused(Status),
}

async fn prepare(gate: &Gate, caller: &Caller, item: Result<EnrollmentCheckRequest, ServiceError>) -> Prepared {
    let item = match item {
        Ok(item) => item,
        // The stream broke, went silent or sent a body that does not
        // decode: charged and audited like any refusal; the stream ends.
        Err(e) => return Prepared::Refused(gate.refuse(caller, ENROLLMENT_CHECK, "", e).await),
    };
    let input = match require_purpose(&item.purpose).and_then(|()| enrollment::validate(&item, today(), child_ages(gate))) {
        Ok(input) => input,
        Err(e) => {
            let (field, reason) = match &e {
                ServiceError::InvalidArgument { field, reason } => (field.clone(), reason.clone()),
                other => (String::new(), other.to_string()),
            };
            let e = ServiceError::invalid(field.clone(), reason.clone());
            // Audited like any refusal; the answer carries the error. An
            // audit write that fails ends the stream: no answer leaves
            // unrecorded, refusals included.
            if let Err(audit_failed) = gate.refuse_item(caller, ENROLLMENT_CHECK, &item.purpose, e).await {
                return Prepared::Refused(audit_failed);
            }
            return Prepared::Answered(Box::new(EnrollmentCheckResponse {
                request_id: item.request_id,
                error: Some(ItemError { field, reason }),
                ..Default::default()
            }));
        }
    };
    let subjects = input.subjects();
    let ask = Ask {
        interface: ENROLLMENT_CHECK,
        purpose: &item.purpose,
        subjects: &subjects,
        units: 1,
        needs: &[],
    };
    match gate.authorise(caller, ask).await {
        Ok(admission) => Prepared::Admitted(Box::new((input, admission, subjects))),
        Err(status) => Prepared::Refused(status),
    }
}

/// A chunk of intake applications: each validated, authorised, minimised
/// and audited on its own, the standings of all of them fetched in one
/// call. Answers in application order; an `Err` ends the stream.
async fn intake_chunk(
    gate: &Gate,
    sources: &Sources,
    caller: &Caller,
    chunk: Vec<Result<EnrollmentCheckRequest, ServiceError>>,
) -> Vec<Result<EnrollmentCheckResponse, Status>> {
    let prepared = join_all(chunk.into_iter().map(|item| prepare(gate, caller, item))).await;
    // Every admitted application's subjects in one list; each keeps its range.
    let mut ids = Vec::new();
    let ranges: Vec<Range<usize>> = prepared
        .iter()
        .map(|p| {
            let start = ids.len();
            if let Prepared::Admitted(admitted) = p {
                ids.extend(admitted.2.iter().cloned());
            }
            start..ids.len()
        })
        .collect();
    let found = if ids.is_empty() {
        Ok(Vec::new())
    } else {
        standings(sources, &ids, today(), PersonView::Standing)
            .await
            .map_err(|e| e.to_string())
    };
    // Each admitted application assessed; the answers released together
    // (one audit record each, handed to the ledger at once), failures
    // audited as refusals.
    let mut answers: Vec<Option<Result<EnrollmentCheckResponse, Status>>> = Vec::with_capacity(prepared.len());
    let (mut assessed, mut slots, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (p, range) in prepared.into_iter().zip(ranges) {
        match p {
            Prepared::Answered(answer) => answers.push(Some(Ok(*answer))),
            Prepared::Refused(status) => answers.push(Some(Err(status))),
            Prepared::Admitted(admitted) => {
                let (input, admission, _) = *admitted;
                let answer = match &found {
                    Ok(all) => enrollment::assess(&input, all.get(range).unwrap_or_default()),
                    Err(e) => Err(ServiceError::Unavailable(format!("the standings fetch failed: {e}"))),
                };
                match answer {
                    Ok(answer) => {
                        slots.push(answers.len());
                        assessed.push((admission, answer));
                    }
                    Err(e) => failed.push((answers.len(), admission, e)),
                }
                answers.push(None);
            }
        }
    }
    let refusals = join_all(
        failed
            .into_iter()
            .map(|(slot, admission, e)| async move { (slot, gate.fail(&admission, e).await) }),
    )
    .await;
    for (slot, status) in refusals {
        answers[slot] = Some(Err(status));
    }
    match gate.release_items(assessed).await {
        Ok(released) => {
            for (slot, answer) in slots.into_iter().zip(released) {
                answers[slot] = Some(Ok(answer));
            }
        }
        Err(status) => {
            for slot in slots {
                answers[slot] = Some(Err(status.clone()));
            }
        }
    }
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err(Status::internal("an application went unanswered"))))
        .collect()
}

type IntakeStream = Pin<Box<dyn Stream<Item = Result<EnrollmentCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn check(&self, request: Request<EnrollmentCheckRequest>) -> Result<Response<EnrollmentCheckResponse>, Status> {
        let sources = self.sources.clone();
        respond(
            answer(
                &self.gate,
                request,
                ENROLLMENT_CHECK,
                |r| &r.purpose,
                |r| {
                    let input = enrollment::validate(r, today(), child_ages(&self.gate))?;
                    let subjects = input.subjects();
                    Ok((input, subjects))
                },
                |input| async move { Ok(Fetched::one(enrollment::check(&sources, &input, today()).await?)) },
            )
            .await,
        )
    }

    type CheckIntakeStream = IntakeStream;

    async fn check_intake(&self, request: Request<Streaming<EnrollmentCheckRequest>>) -> Result<Response<Self::CheckIntakeStream>, Status> {
        let caller = self.gate.authenticate(&request, ENROLLMENT_CHECK).await?;
        let mut items = Box::pin(idle_bounded(request.into_inner(), self.gate.stream_idle, broke_off));
        let (tx, rx) = mpsc::channel(INTAKE_BUFFER);
        let (gate, sources) = (self.gate.clone(), self.sources.clone());
        tokio::spawn(async move {
            // Whatever applications have arrived (up to INTAKE_CHUNK) are
            // checked together: one standings fetch for all of them, and
            // their audit records share the writer's group commits.
            // The next chunk is checked while the last one's audit records
            // are made durable: one stream waiting out every group commit
            // left the cores idle between chunks.
            let chunks =
                futures::StreamExt::ready_chunks(&mut items, INTAKE_CHUNK).map(|chunk| intake_chunk(&gate, &sources, &caller, chunk));
            let mut answered = std::pin::pin!(futures::StreamExt::buffered(chunks, CHUNKS_IN_FLIGHT));
            while let Some(results) = answered.next().await {
                for result in results {
                    let stop = result.is_err();
                    if tx.send(result).await.is_err() || stop {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
