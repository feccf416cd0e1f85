//! W3C trace context across gRPC calls.
//!
//! Servers open one span per RPC whose parent is taken from the incoming
//! `traceparent` header; clients inject the current span's context into
//! outgoing metadata with [`TraceContextInterceptor`]. Together they make one
//! trace of a department's call through the gateway into each service.

use opentelemetry::propagation::{Extractor, Injector};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The server span of one RPC, child of the caller's trace when it sent one.
/// Only the method path is recorded: request bodies may hold personal data.
///
/// Health checks (the kubelet's every few seconds) get no span: they belong
/// to no request and would fill the traces. The gRPC code and, for any code
/// but OK, the error status are recorded when the answer is known
/// ([`record_status`]).
pub fn server_span(role: &'static str, request: &http::Request<()>) -> Span {
    if request.uri().path().starts_with("/grpc.health.v1.Health/") {
        return Span::none();
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        popbase.role = role,
        rpc.method = %request.uri().path(),
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(parent);
    span
}

/// Records the answer's gRPC `code` on the current server span: a refused or
/// failed call (any code but 0) sets the span's error status, so a trace
/// view shows it red.
pub fn record_status(code: &str) {
    let span = Span::current();
    if let Ok(number) = code.parse::<u8>() {
        span.record("rpc.grpc.status_code", number);
    }
    if code != "0" {
        span.record("otel.status_code", "ERROR");
    }
}

/// A span for background work that calls other roles (a poll, a
/// heartbeat): its trace context is marked not sampled, and carried so to
/// the callee, so the calls it makes leave no trace. Work worth a trace
/// opens its own span outside it.
pub fn unsampled_span(name: &'static str) -> Span {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
    use std::hash::{BuildHasher as _, Hasher as _};
    // Ids only need to be unique, not secret: the std hasher's random keys serve.
    let random = || std::collections::hash_map::RandomState::new().build_hasher().finish().max(1);
    let trace_id = TraceId::from_bytes(
        [random().to_be_bytes(), random().to_be_bytes()]
            .concat()
            .try_into()
            .unwrap_or([1; 16]),
    );
    let parent = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        trace_id,
        SpanId::from_bytes(random().to_be_bytes()),
        TraceFlags::default(),
        true,
        TraceState::default(),
    ));
    let span = tracing::info_span!("background", otel.name = name);
    let _ = span.set_parent(parent);
    span
}

/// Adds `traceparent`/`tracestate` of the current span to outgoing requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let context = Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut MetadataInjector(request.metadata_mut())));
        Ok(request)
    }
}

/// A client channel that carries the caller's trace context: every
/// service-to-service client is built on one, so a department's call is one
/// trace from the gateway into each service.
pub type TracedChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, TraceContextInterceptor>;

pub fn traced(channel: tonic::transport::Channel) -> TracedChannel {
    tonic::service::interceptor::InterceptedService::new(channel, TraceContextInterceptor)
}

/// The W3C trace id of the current span, for audit records ("" when none).
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt;
    let context = Span::current().context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span_context.trace_id().to_string()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

    /// What a client injects is what a server extracts: the same trace id
    /// crosses the hop as a W3C `traceparent` header.
    #[test]
    fn trace_context_survives_a_grpc_hop() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
        let span_id = SpanId::from_hex("00f067aa0ba902b7").expect("hex");
        let sent = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let mut metadata = tonic::metadata::MetadataMap::new();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&sent, &mut MetadataInjector(&mut metadata)));
        let headers = metadata.into_headers();
        assert_eq!(
            headers.get("traceparent").and_then(|v| v.to_str().ok()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let received = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(&headers)));
        assert_eq!(received.span().span_context().trace_id(), trace_id);
        assert_eq!(received.span().span_context().span_id(), span_id);
    }

    /// What the interceptor puts on a call made inside `span`, with an
    /// OpenTelemetry layer installed as a tracer provider would be.
    fn traceparent_inside(make_span: impl Fn() -> Span) -> Option<String> {
        use tracing_subscriber::layer::SubscriberExt as _;
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "test");
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::with_default(subscriber, || {
            let span = make_span();
            let _entered = span.enter();
            let request = tonic::service::Interceptor::call(&mut TraceContextInterceptor, tonic::Request::new(())).expect("intercept");
            request
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    }

    #[test]
    fn background_calls_carry_a_trace_that_is_not_sampled() {
        let request = traceparent_inside(|| tracing::info_span!("grpc.request"));
        assert!(
            request.as_deref().is_some_and(|t| t.ends_with("-01")),
            "a request's trace is sampled: {request:?}"
        );
        let background = traceparent_inside(|| unsampled_span("poll"));
        assert!(
            background.as_deref().is_some_and(|t| t.ends_with("-00")),
            "a poll's is not: {background:?}"
        );
    }

    #[test]
    fn health_checks_get_no_span() {
        let health = http::Request::builder()
            .uri("/grpc.health.v1.Health/Check")
            .body(())
            .expect("request");
        assert!(server_span("household", &health).is_none());
    }

    #[test]
    fn no_trace_means_no_trace_id() {
        assert_eq!(current_trace_id(), "");
    }
}
