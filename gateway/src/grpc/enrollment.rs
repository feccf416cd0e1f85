//! Enrollment: one application, or a whole intake as a bidirectional
//! stream. The stream authenticates once; each item is authorised,
//! minimised and audited on its own, so a malformed item answers with its
//! error and the intake goes on, while a denial (quota, approval) ends it.

use std::pin::Pin;
use std::sync::Arc;

use popbase_common::ServiceError;
use popbase_proto::gateway::enrollment_server::{Enrollment, EnrollmentServer};
use popbase_proto::gateway::{EnrollmentCheckRequest, EnrollmentCheckResponse, ItemError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{Fetched, answer, require_purpose, respond, today};
use crate::catalogue::interface::ENROLLMENT_CHECK;
use crate::gate::{Ask, Caller, Gate};
use crate::interfaces::enrollment;
use crate::sources::Sources;

/// Answers buffered ahead of a slow reader.
const INTAKE_BUFFER: usize = 256;
/// Applications of one intake stream checked at once. A refusal (quota,
/// approval) ends the stream; applications already in flight behind it
/// are checked and audited but not answered.
const INTAKE_IN_FLIGHT: usize = 64;

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

/// One intake item through authorise → fetch → release. `Ok(answer)` goes
/// to the caller (with `error` set for a malformed item); `Err` ends the stream.
async fn intake_item(
    gate: &Gate,
    sources: &Sources,
    caller: &Caller,
    item: EnrollmentCheckRequest,
) -> Result<EnrollmentCheckResponse, Status> {
    let input = match require_purpose(&item.purpose).and_then(|()| enrollment::validate(&item, today())) {
        Ok(input) => input,
        Err(e) => {
            let (field, reason) = match &e {
                ServiceError::InvalidArgument { field, reason } => (field.clone(), reason.clone()),
                other => (String::new(), other.to_string()),
            };
            // Audited like any refusal; the answer carries the error.
            let _ = gate.refuse(caller, ENROLLMENT_CHECK, &item.purpose, e).await;
            return Ok(EnrollmentCheckResponse {
                request_id: item.request_id,
                error: Some(ItemError { field, reason }),
                ..Default::default()
            });
        }
    };
    let subjects = input.subjects();
    let ask = Ask {
        interface: ENROLLMENT_CHECK,
        purpose: &item.purpose,
        subjects: &subjects,
        units: 1,
    };
    let admission = gate.authorise(caller, ask).await?;
    match enrollment::check(sources, &input, today()).await {
        Ok(found) => gate.release(&admission, found, &[], 1).await,
        Err(e) => Err(gate.fail(&admission, e).await),
    }
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
                    let input = enrollment::validate(r, today())?;
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
        let mut items = request.into_inner();
        let (tx, rx) = mpsc::channel(INTAKE_BUFFER);
        let (gate, sources) = (self.gate.clone(), self.sources.clone());
        tokio::spawn(async move {
            // Items are checked INTAKE_IN_FLIGHT at a time (answers keep the
            // order of the applications), so their fetches overlap and their
            // audit records share group commits instead of one fsync each.
            let answers = futures::StreamExt::buffered(
                futures::StreamExt::map(&mut items, |item| {
                    let (gate, sources, caller) = (gate.clone(), sources.clone(), caller.clone());
                    async move {
                        match item {
                            Ok(item) => intake_item(&gate, &sources, &caller, item).await,
                            Err(status) => Err(status),
                        }
                    }
                }),
                INTAKE_IN_FLIGHT,
            );
            let mut answers = std::pin::pin!(answers);
            while let Some(result) = answers.next().await {
                let stop = result.is_err();
                if tx.send(result).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
