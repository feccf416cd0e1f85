//! Logs and traces, from the first line of `main`.
//!
//! * `tracing` with an env-filter, text or JSON output on stderr (stdout is
//!   kept for the machine-readable lines the CLI prints).
//! * OTLP/gRPC trace export when the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   is set; the W3C trace-context propagator is always installed, so trace
//!   ids flow across internal gRPC calls even without an exporter.
//!
//! Spans and logs must never carry clear personal data: use
//! `popbase_domain::mask` helpers for anything that identifies a person.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::TelemetryConfig;

/// Flushes and shuts the exporter down when dropped (end of `main`).
#[must_use = "dropping the guard shuts tracing export down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("popbase: trace exporter shutdown: {err}");
        }
    }
}

/// Installs the global subscriber. Call once, inside the tokio runtime
/// (the OTLP exporter's batch processor runs on it).
pub fn init(service_name: &str, config: &TelemetryConfig) -> Result<TelemetryGuard, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| format!("log filter '{}': {e}", config.log_filter))?;
    let otlp_endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|v| !v.is_empty());
    let provider = match otlp_endpoint {
        Some(_) => Some(otlp_provider(service_name)?),
        None => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("popbase")));
    let json = config.log_format == "json";
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        // Colour only for a person at a terminal: a log file or collector
        // gets plain text, not escape codes.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        registry
            .with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()
    };
    // A second init (tests that start several roles in one process) keeps the first.
    if let Err(err) = result {
        tracing::debug!("telemetry already initialised: {err}");
    }
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing::info!(service = service_name, "exporting traces over OTLP/gRPC");
    }
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(service_name: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    // The async-runtime batch processor exports on tokio, which tonic needs;
    // the default thread-based one would have no reactor.
    let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}
