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
//! A list is whole only when its last part (marked by the finder) has
//! left. Anything else (a source failing, the finder dying, a reader too
//! slow to keep its place) ends the department's stream with an error,
//! never with the plain end of a complete list.
//!
//! Bounds: [`AUDITS_IN_FLIGHT`] parts are audited at once and
//! [`PARTS_WAITING`] audited parts wait for the reader; a reader that
//! takes nothing for `limits.stream_idle_secs` loses the list; one that
//! hangs up stops it; the department's place among its calls in flight is
//! held until the list ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, StreamExt};
use popbase_common::{ServiceError, ServiceResult};
use tokio::sync::mpsc;
use tonic::{Request, Status};

use super::admit;
use crate::gate::{Gate, Minimise};

/// Audited parts waiting for the reader.
pub const PARTS_WAITING: usize = 2;
/// Parts being audited at once.
pub const AUDITS_IN_FLIGHT: usize = 4;

/// A part of a list: its items, the ID numbers they are about, and whether
/// it is the list's last.
pub struct Part<T> {
    pub items: Vec<T>,
    pub listed: Vec<String>,
    pub last: bool,
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
    let no_needs = |_: &Req| -> &'static [&'static str] { &[] };
    let (caller, input, admission) = admit(gate, &request, interface, purpose, no_needs, |r| Ok((validate(r)?, Vec::new()))).await?;
    let parts = fetch(input);
    let (sender, receiver) = mpsc::channel::<Result<Vec<T>, Status>>(PARTS_WAITING);
    let whole = Arc::new(AtomicBool::new(false));
    let gate = Arc::clone(gate);
    let sent_whole = Arc::clone(&whole);
    tokio::spawn(async move {
        // Holds the department's place in flight until the list ends.
        let _caller = caller;
        let idle = gate.stream_idle;
        let last_seen = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&last_seen);
        let for_parts = admission.about(Vec::new());
        // Parts are audited AUDITS_IN_FLIGHT at a time (the ledger makes
        // their records durable together) and leave in order, each once
        // its own record is durable. A part with nothing in it has nothing
        // to record.
        let released = parts
            .inspect(move |part| {
                if matches!(part, Ok(part) if part.last) {
                    seen.store(true, Ordering::Release);
                }
            })
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
        let send_all = async {
            let mut released = std::pin::pin!(released);
            let mut sent_any = false;
            while let Some(part) = released.next().await {
                sent_any = true;
                let failed = part.is_err();
                // A reader too slow to take it loses the list (cut short).
                if sender.send_timeout(part, idle).await.is_err() {
                    return;
                }
                if failed {
                    sent_whole.store(true, Ordering::Release);
                    return;
                }
            }
            let ended = if !last_seen.load(Ordering::Acquire) {
                // The finder stopped without its last part.
                let cut = ServiceError::Unavailable("the list ended before it was found whole".into());
                Err(gate.fail(&admission, cut).await)
            } else if !sent_any {
                // An empty list is recorded too.
                gate.release(admission, Vec::new(), &[], 0).await
            } else {
                Ok(Vec::new())
            };
            if sender.send_timeout(ended, idle).await.is_ok() {
                sent_whole.store(true, Ordering::Release);
            }
        };
        tokio::select! {
            () = send_all => {}
            // The reader hung up: drop the parts, which stops their finder.
            () = sender.closed() => {}
        }
    });
    let parts = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let end = futures::stream::once(async move {
        match whole.load(Ordering::Acquire) {
            true => Ok(Vec::new()),
            false => Err(Status::unavailable(
                "the list was cut short (read too slowly, or its search ended); ask again",
            )),
        }
    });
    let items = parts.chain(end).flat_map(|part| {
        let items: Vec<Result<T, Status>> = match part {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(status) => vec![Err(status)],
        };
        futures::stream::iter(items)
    });
    Ok(Box::pin(items))
}
