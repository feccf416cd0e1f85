//! Lists answered as they are found (医保比对 of a whole city).
//!
//! A city's list runs to hundreds of thousands of residents. Collected
//! whole before its one audit record, the first of them would reach the
//! department only after the last was found, and the gateway would hold
//! them all. Here the list passes the gate once (authenticate → validate →
//! authorise), then leaves in parts: each part minimised and audited with
//! its persons as the record's subjects before it is handed on, so nothing
//! leaves unrecorded and a failed audit ends the list (fail closed).
//!
//! Bounds: [`AUDITS_IN_FLIGHT`] parts are audited at once and
//! [`PARTS_WAITING`] audited parts wait for the reader; a reader
//! that takes nothing for `limits.stream_idle_secs` loses the list; the
//! department's place among its calls in flight is held until the list ends.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use popbase_common::ServiceResult;
use tokio::sync::mpsc;
use tonic::{Request, Status};

use super::require_purpose;
use crate::gate::{Ask, Gate, Minimise};

/// Audited parts waiting for the reader.
pub const PARTS_WAITING: usize = 2;
/// Parts being audited at once.
pub const AUDITS_IN_FLIGHT: usize = 4;

/// A part of a list: its items and the ID numbers they are about.
pub struct Part<T> {
    pub items: Vec<T>,
    pub listed: Vec<String>,
}

/// A list as the department reads it.
pub type Listed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gate's path for a list: `fetch` yields its parts in order; each
/// leaves once its audit record is durable. An empty list is recorded as
/// one empty part, so every answer has its record.
pub(crate) async fn answer_list<Req, In, T, Parts>(
    gate: &Arc<Gate>,
    request: Request<Req>,
    interface: &'static str,
    purpose: impl Fn(&Req) -> &str,
    validate: impl FnOnce(&Req) -> ServiceResult<In>,
    fetch: impl FnOnce(In) -> Parts,
) -> Result<Listed<T>, Status>
where
    Parts: Stream<Item = ServiceResult<Part<T>>> + Send + 'static,
    T: Minimise + Send + 'static,
{
    let caller = gate.authenticate(&request, interface).await?;
    let body = request.get_ref();
    let purpose = purpose(body).to_string();
    let input = match require_purpose(&purpose).and_then(|()| validate(body)) {
        Ok(input) => input,
        Err(e) => return Err(gate.refuse(&caller, interface, &purpose, e).await),
    };
    let ask = Ask {
        interface,
        purpose: &purpose,
        subjects: &[],
        units: 1,
        needs: &[],
    };
    let admission = gate.authorise(&caller, ask).await?;
    let parts = fetch(input);
    let (sender, receiver) = mpsc::channel::<Result<Vec<T>, Status>>(PARTS_WAITING);
    let gate = Arc::clone(gate);
    tokio::spawn(async move {
        // Holds the department's place in flight until the list ends.
        let _caller = caller;
        let idle = gate.stream_idle;
        // Parts are audited AUDITS_IN_FLIGHT at a time (the ledger makes
        // their records durable together) and leave in order, each once
        // its own record is durable. A part with nothing in it has nothing
        // to record.
        let for_parts = admission.about(Vec::new());
        let released = parts
            .filter(|part| futures::future::ready(!matches!(part, Ok(part) if part.items.is_empty())))
            .map(|part| {
                let (gate, admission) = (Arc::clone(&gate), for_parts.about(Vec::new()));
                async move {
                    match part {
                        Ok(part) => {
                            let count = part.items.len() as u64;
                            gate.release(admission, part.items, &part.listed, count).await
                        }
                        Err(e) => Err(gate.fail(&admission, e).await),
                    }
                }
            })
            .buffered(AUDITS_IN_FLIGHT);
        let mut released = std::pin::pin!(released);
        let mut sent_any = false;
        while let Some(part) = released.next().await {
            sent_any = true;
            let failed = part.is_err();
            // Stops when the reader hung up, or took nothing for too long.
            if sender.send_timeout(part, idle).await.is_err() || failed {
                return;
            }
        }
        if !sent_any {
            // An empty list is recorded too.
            let empty = gate.release(admission, Vec::new(), &[], 0).await;
            let _ = sender.send_timeout(empty, idle).await;
        }
    });
    let items = tokio_stream::wrappers::ReceiverStream::new(receiver).flat_map(|part| {
        let items: Vec<Result<T, Status>> = match part {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(status) => vec![Err(status)],
        };
        futures::stream::iter(items)
    });
    Ok(Box::pin(items))
}
