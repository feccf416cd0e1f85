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
pub fn server_span(role: &'static str, request: &http::Request<()>) -> Span {
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        popbase.role = role,
        rpc.method = %request.uri().path(),
    );
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

    #[test]
    fn no_trace_means_no_trace_id() {
        assert_eq!(current_trace_id(), "");
    }
}
