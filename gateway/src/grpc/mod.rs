//! Thin tonic adapters: each RPC is the gate's path around one interface.

pub mod audit;
pub mod catalogue;
pub mod consents;
pub mod departments;
pub mod enrollment;
pub mod export;
pub mod export_pump;
pub mod inbound;
pub mod ledger;
pub mod lists;
pub mod malformed;
pub mod operations;
pub mod subscriptions;
pub mod writes;

use std::future::Future;

use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult, validate};
use tonic::{Request, Response, Status};

use crate::gate::{Admission, Ask, Caller, Gate, Minimise};

pub(crate) fn today() -> NaiveDate {
    popbase_domain::clock::today()
}

/// What a fetch hands back: the answer, the ID numbers a list turned out
/// to hold (audit subjects beyond the asked ones) and the record count.
pub(crate) struct Fetched<T> {
    pub answer: T,
    pub listed: Vec<String>,
    pub count: u64,
}

impl<T> Fetched<T> {
    pub fn one(answer: T) -> Self {
        Self::counted(answer, 1)
    }

    /// An answer holding `count` records about the asked subjects only.
    pub fn counted(answer: T, count: u64) -> Self {
        Self {
            answer,
            listed: Vec::new(),
            count,
        }
    }
}

/// Longest purpose code, request id or catalogue name accepted.
pub(crate) const MAX_CODE_CHARS: usize = 64;

/// Every gateway call names its purpose (a short catalogue code: it is
/// stored in the audit record).
pub(crate) fn require_purpose(purpose: &str) -> ServiceResult<()> {
    if purpose.is_empty() {
        return Err(ServiceError::invalid(
            "purpose",
            "name the purpose of the call (a catalogue purpose code)",
        ));
    }
    validate::text("purpose", purpose, 1, MAX_CODE_CHARS)?;
    Ok(())
}

/// The whole path for a unary call (or a list answered at once):
/// authenticate → validate → authorise → fetch → minimise + audit → answer.
/// `validate` returns the checked input and the ID numbers it is about.
pub(crate) async fn answer<Req, In, Out, Fut>(
    gate: &Gate,
    request: Request<Req>,
    interface: &'static str,
    purpose: impl Fn(&Req) -> &str,
    validate: impl FnOnce(&Req) -> ServiceResult<(In, Vec<String>)>,
    fetch: impl FnOnce(In) -> Fut,
) -> Result<Out, Status>
where
    Fut: Future<Output = ServiceResult<Fetched<Out>>>,
    Out: Minimise,
{
    answer_needing(gate, request, interface, purpose, |_| &[], validate, fetch).await
}

/// [`answer`] for a request that may itself use catalogue fields
/// (`needs`, e.g. PersonSummary's `as_of`): the approval must list them.
pub(crate) async fn answer_needing<Req, In, Out, Fut>(
    gate: &Gate,
    request: Request<Req>,
    interface: &'static str,
    purpose: impl Fn(&Req) -> &str,
    needs: impl Fn(&Req) -> &'static [&'static str],
    validate: impl FnOnce(&Req) -> ServiceResult<(In, Vec<String>)>,
    fetch: impl FnOnce(In) -> Fut,
) -> Result<Out, Status>
where
    Fut: Future<Output = ServiceResult<Fetched<Out>>>,
    Out: Minimise,
{
    let (_caller, input, admission) = admit(gate, &request, interface, purpose, needs, validate).await?;
    match fetch(input).await {
        Ok(fetched) => gate.release(admission, fetched.answer, &fetched.listed, fetched.count).await,
        Err(e) => Err(gate.fail(&admission, e).await),
    }
}

/// Steps 1-3 of every answer: authenticate (the caller holds one of its
/// department's places in flight), validate (a refusal audited), authorise.
/// `validate` returns the checked input and the ID numbers it is about.
pub(crate) async fn admit<Req, In>(
    gate: &Gate,
    request: &Request<Req>,
    interface: &'static str,
    purpose: impl Fn(&Req) -> &str,
    needs: impl Fn(&Req) -> &'static [&'static str],
    validate: impl FnOnce(&Req) -> ServiceResult<(In, Vec<String>)>,
) -> Result<(Caller, In, Admission), Status> {
    let caller = gate.authenticate(request, interface).await?;
    let body = request.get_ref();
    let purpose = purpose(body).to_string();
    let (input, subjects) = match require_purpose(&purpose).and_then(|()| validate(body)) {
        Ok(v) => v,
        Err(e) => return Err(gate.refuse(&caller, interface, &purpose, e).await),
    };
    let ask = Ask {
        interface,
        purpose: &purpose,
        subjects: &subjects,
        units: 1,
        needs: needs(body),
    };
    let admission = gate.authorise(&caller, ask).await?;
    Ok((caller, input, admission))
}

pub(crate) fn respond<T>(result: Result<T, Status>) -> Result<Response<T>, Status> {
    result.map(Response::new)
}

/// Minimise for answers that are one catalogue field as a whole.
macro_rules! whole_answer {
    ($ty:ty, $field:literal) => {
        impl $crate::gate::Minimise for $ty {
            fn minimise(&mut self, approved: &std::collections::BTreeSet<String>) -> Vec<String> {
                if approved.contains($field) {
                    vec![$field.to_string()]
                } else {
                    *self = Default::default();
                    Vec::new()
                }
            }
        }
    };
}
pub(crate) use whole_answer;
