//! Bodies that do not decode are refusals like any other. tonic decodes a
//! unary or server-streaming request before the handler runs, so such a
//! call never reaches the gate's answer path: [`Charged`] wraps each
//! gateway service, recognises the answer of a body that did not decode
//! (our codec's MALFORMED_BODY, or prost's INTERNAL "failed to decode" from
//! Arrow Flight's generated server) and hands the call to
//! [`Gate::refuse_malformed`], which charges, audits and answers it.
//! Streamed items that do not decode reach their handler as an error and
//! are charged there ([`malformed_item`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use popbase_common::ServiceError;
use popbase_proto::codec::MALFORMED_BODY;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::catalogue::interface;
use crate::gate::Gate;

/// A gateway service whose malformed calls are charged to their caller.
#[derive(Clone)]
pub struct Charged<S> {
    inner: S,
    gate: Arc<Gate>,
}

/// `service`, its malformed calls charged through `gate`.
pub fn charged<S>(gate: &Arc<Gate>, service: S) -> Charged<S> {
    Charged {
        inner: service,
        gate: gate.clone(),
    }
}

impl<S: NamedService> NamedService for Charged<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower_service::Service<http::Request<Body>> for Charged<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // Who called, kept for the rare refusal: headers (credentials) and
        // extensions (peer address and certificates), not the body.
        let (parts, body) = request.into_parts();
        let caller = http::Request::from_parts(parts.clone(), ());
        let answered = self.inner.call(http::Request::from_parts(parts, body));
        let gate = self.gate.clone();
        Box::pin(async move {
            let response = answered.await?;
            let Some(message) = malformed_answer(response.headers()) else {
                return Ok(response);
            };
            let interface = interface_of(caller.uri().path());
            let request = tonic::Request::from_http(caller);
            let refusal = gate
                .refuse_malformed(&request, interface, ServiceError::invalid("body", message))
                .await;
            Ok(refusal.into_http())
        })
    }
}

/// The reason of a trailers-only answer refusing a body that did not
/// decode, or `None` for any other answer.
fn malformed_answer(headers: &http::HeaderMap) -> Option<String> {
    headers.get("grpc-status")?;
    let status = Status::from_header_map(headers)?;
    malformed_reason(&status)
}

/// Why `status` refuses a body, when it refuses one for not decoding.
fn malformed_reason(status: &Status) -> Option<String> {
    let ours = status.code() == Code::InvalidArgument
        && status.metadata().get("popbase-reason").and_then(|v| v.to_str().ok()) == Some(MALFORMED_BODY);
    // prost's own codec (Arrow Flight's generated server) calls it INTERNAL.
    let prosts = popbase_common::malformed::is_prost_decode_failure(status);
    if ours {
        Some(status.message().trim_start_matches("invalid body: ").to_string())
    } else if prosts {
        Some("not a valid Arrow Flight message".to_string())
    } else {
        None
    }
}

/// The refusal to answer for a streamed item that did not decode (charged
/// like a malformed call), or `None` when the stream failed otherwise.
pub(crate) fn malformed_item(status: &Status) -> Option<ServiceError> {
    malformed_reason(status).map(|message| ServiceError::invalid("body", message))
}

/// The catalogue interface a gateway method answers for (`unknown` for a
/// path that is none of them: the audit record never takes caller text).
pub fn interface_of(path: &str) -> &'static str {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
    let service = service.rsplit('.').next().unwrap_or("");
    match (service, method) {
        ("Enrollment", "Check" | "CheckIntake") => interface::ENROLLMENT_CHECK,
        ("MedicalInsurance", "InsuranceGap") => interface::INSURANCE_GAP,
        ("Locality", "EmployerLocality") => interface::EMPLOYER_LOCALITY,
        ("Persons", "PersonSummary") => interface::PERSON_SUMMARY,
        ("Consents", "ListAccesses") => interface::ACCESS_LOG,
        ("Consents", "Grant" | "Revoke" | "ListConsents") => interface::CONSENT_REGISTRY,
        ("Audit", "GetChainHead") => interface::AUDIT_CHAIN_HEAD,
        ("Audit", "UsageStatistics") => interface::USAGE_STATISTICS,
        ("Audit", "SearchAudit") => interface::AUDIT_SEARCH,
        ("Audit", "VerifyChain") => interface::AUDIT_CHAIN_VERIFY,
        ("Operations", "PlatformHealth") => interface::PLATFORM_HEALTH,
        ("SharingCatalogue", "GetCatalogue" | "ValidateCatalogue") => interface::SHARING_CATALOGUE,
        ("SharingCatalogue", "ApplyCatalogue") => interface::CATALOGUE_CHANGE,
        ("DepartmentFeeds", "Submit") => interface::SUBMIT_FEED,
        ("RegistryEvents", "Submit") => interface::SUBMIT_LIFE_EVENT,
        ("ResidenceEvents", "Submit") => interface::SUBMIT_RESIDENCE,
        ("FlightService", _) => interface::EXPORT,
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_catalogue_interfaces_and_nothing_else() {
        assert_eq!(
            interface_of("/popbase.gateway.v1.Enrollment/CheckIntake"),
            interface::ENROLLMENT_CHECK
        );
        assert_eq!(interface_of("/popbase.gateway.v1.Consents/ListAccesses"), interface::ACCESS_LOG);
        assert_eq!(interface_of("/popbase.gateway.v1.Audit/SearchAudit"), interface::AUDIT_SEARCH);
        assert_eq!(
            interface_of("/popbase.gateway.v1.SharingCatalogue/ApplyCatalogue"),
            interface::CATALOGUE_CHANGE
        );
        assert_eq!(interface_of("/arrow.flight.protocol.FlightService/DoGet"), interface::EXPORT);
        assert_eq!(interface_of("/popbase.x\",role=\"gateway/Check"), "unknown");
        assert_eq!(interface_of(""), "unknown");
    }

    #[test]
    fn only_decode_failures_count_as_malformed() {
        let ours = popbase_proto::codec::malformed::<popbase_proto::gateway::PersonSummaryRequest>();
        assert_eq!(
            malformed_item(&ours).map(|e| e.to_string()).unwrap_or_default(),
            ServiceError::invalid("body", "not a valid PersonSummaryRequest message").to_string()
        );
        let prosts = Status::internal("failed to decode Protobuf message: Ticket.ticket: invalid wire type");
        assert!(malformed_item(&prosts).is_some());
        let mut headers = http::HeaderMap::new();
        prosts.add_header(&mut headers).expect("headers");
        assert!(malformed_answer(&headers).is_some(), "read back from a trailers-only answer");
        assert!(malformed_item(&Status::invalid_argument("id_number: bad checksum")).is_none());
        assert!(malformed_item(&Status::internal("disk full")).is_none());
        assert!(malformed_answer(&http::HeaderMap::new()).is_none());
    }
}
