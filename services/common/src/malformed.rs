//! Bodies that do not decode, answered as the caller's mistake on services
//! whose generated server uses prost's own codec (Arrow Flight's): prost
//! answers those INTERNAL "failed to decode Protobuf message", which would
//! page an operator for a client's bug or a fuzzer's input. Our own
//! services use `popbase_proto::codec` and answer INVALID_ARGUMENT already.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use popbase_proto::codec::MALFORMED_BODY;
use tonic::body::Body;
use tonic::metadata::MetadataValue;
use tonic::server::NamedService;
use tonic::{Code, Status};

/// `S` with prost's decode failures answered INVALID_ARGUMENT naming the
/// body (`popbase-field: body`, `popbase-reason: MALFORMED_BODY`).
#[derive(Clone)]
pub struct MalformedAsInvalid<S>(pub S);

impl<S: NamedService> NamedService for MalformedAsInvalid<S> {
    const NAME: &'static str = S::NAME;
}

/// Whether `status` is prost's own codec refusing a body that does not
/// decode (the gateway's refusal path recognises it too).
pub fn is_prost_decode_failure(status: &Status) -> bool {
    status.code() == Code::Internal && status.message().starts_with("failed to decode Protobuf message")
}

/// The refusal to answer instead, when `headers` are prost's trailers-only
/// decode failure.
fn rewritten(headers: &http::HeaderMap) -> Option<Status> {
    headers.get("grpc-status")?;
    let status = Status::from_header_map(headers)?;
    if !is_prost_decode_failure(&status) {
        return None;
    }
    let mut refusal = Status::invalid_argument("invalid body: not a valid message of this method");
    refusal.metadata_mut().insert("popbase-field", MetadataValue::from_static("body"));
    refusal
        .metadata_mut()
        .insert("popbase-reason", MetadataValue::from_static(MALFORMED_BODY));
    Some(refusal)
}

impl<S> tower_service::Service<http::Request<Body>> for MalformedAsInvalid<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let answered = self.0.call(request);
        Box::pin(async move {
            let response = answered.await?;
            Ok(match rewritten(response.headers()) {
                Some(refusal) => refusal.into_http(),
                None => response,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prosts_decode_failure_is_rewritten() {
        let prosts = Status::internal("failed to decode Protobuf message: invalid wire type value: 7").into_http::<Body>();
        let refusal = rewritten(prosts.headers()).expect("rewritten");
        assert_eq!(refusal.code(), Code::InvalidArgument);
        assert_eq!(refusal.metadata().get("popbase-field").and_then(|v| v.to_str().ok()), Some("body"));
        let other = Status::internal("encoding a schema: broken").into_http::<Body>();
        assert!(rewritten(other.headers()).is_none(), "a real INTERNAL stays one");
        let fine = http::Response::new(Body::empty());
        assert!(rewritten(fine.headers()).is_none());
    }
}
