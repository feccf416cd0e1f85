//! Prometheus metrics for every role: RPC counts and latencies (a tower layer
//! on each gRPC server) and RocksDB figures of each open store, served as the
//! text exposition format on `GET /metrics`.
//!
//! Labels carry method paths and status codes only, never request contents:
//! a method is named only when the binary serves it ([`crate::methods`]),
//! a code only when it is a gRPC status number, so no caller can add a
//! series or break the exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use popbase_storage::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{Role, Shutdown};

mod process;
mod stores;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default, Clone)]
struct RpcStats {
    count: u64,
    sum_seconds: f64,
    /// Cumulative counts per bucket of `BUCKETS`.
    buckets: [u64; BUCKETS.len()],
}

/// Writes a component's own metrics (HELP, TYPE and samples) on each scrape.
pub type Renderer = Arc<dyn Fn(&mut String) + Send + Sync>;

/// One registry per process, shared by every role it serves.
#[derive(Default)]
pub struct Metrics {
    /// (role, method, grpc code) -> stats.
    rpcs: Mutex<BTreeMap<(&'static str, &'static str, &'static str), RpcStats>>,
    stores: Mutex<Vec<Store>>,
    renderers: Mutex<Vec<Renderer>>,
    /// role -> calls refused OVERLOADED by the role's port.
    shed: Mutex<BTreeMap<&'static str, u64>>,
    /// The backup directory whose sets' age is reported.
    backups: Mutex<Option<std::path::PathBuf>>,
    /// (name, PEM file) of the certificates this process presents.
    certificates: Mutex<Vec<(&'static str, std::path::PathBuf)>>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Reports this store's figures on every scrape.
    pub fn watch_store(&self, store: Store) {
        self.stores.lock().unwrap_or_else(|p| p.into_inner()).push(store);
    }

    /// Reports the time of the newest backup set per role under `root`
    /// (the manifests' times: a listing per scrape, no engine opened).
    pub fn watch_backups(&self, root: std::path::PathBuf) {
        *self.backups.lock().unwrap_or_else(|p| p.into_inner()) = Some(root);
    }

    /// Reports when the certificate in the PEM file `path` expires, as `name`.
    pub fn watch_certificate(&self, name: &'static str, path: std::path::PathBuf) {
        self.certificates.lock().unwrap_or_else(|p| p.into_inner()).push((name, path));
    }

    /// Adds a component's metrics (the gateway's audit writer, say) to every scrape.
    pub fn add_renderer(&self, renderer: Renderer) {
        self.renderers.lock().unwrap_or_else(|p| p.into_inner()).push(renderer);
    }

    /// Counts one call `role`'s port refused for want of a slot.
    pub fn count_shed(&self, role: Role) {
        *self.shed.lock().unwrap_or_else(|p| p.into_inner()).entry(role.name()).or_default() += 1;
    }

    /// Counts one answered request to the method at `path` with gRPC `code`.
    pub fn observe(&self, role: Role, path: &str, code: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let key = (role.name(), crate::methods::label(path), code_label(code));
        let mut rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let stats = rpcs.entry(key).or_default();
        stats.count += 1;
        stats.sum_seconds += seconds;
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        out.push_str("# HELP popbase_grpc_requests_total gRPC requests answered, by role, method and status code.\n");
        out.push_str("# TYPE popbase_grpc_requests_total counter\n");
        for ((role, method, code), stats) in &rpcs {
            let _ = writeln!(
                out,
                "popbase_grpc_requests_total{{role=\"{}\",method=\"{}\",code=\"{}\"}} {}",
                LabelValue(role),
                LabelValue(method),
                LabelValue(code),
                stats.count
            );
        }
        out.push_str("# HELP popbase_grpc_request_duration_seconds Time to answer a gRPC request (to response headers).\n");
        out.push_str("# TYPE popbase_grpc_request_duration_seconds histogram\n");
        let mut by_method: BTreeMap<(&str, &str), RpcStats> = BTreeMap::new();
        for ((role, method, _), stats) in &rpcs {
            let total = by_method.entry((role, method)).or_default();
            total.count += stats.count;
            total.sum_seconds += stats.sum_seconds;
            for (t, b) in total.buckets.iter_mut().zip(stats.buckets) {
                *t += b;
            }
        }
        for ((role, method), stats) in &by_method {
            let labels = format!("role=\"{}\",method=\"{}\"", LabelValue(role), LabelValue(method));
            for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(
                    out,
                    "popbase_grpc_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "popbase_grpc_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(out, "popbase_grpc_request_duration_seconds_sum{{{labels}}} {}", stats.sum_seconds);
            let _ = writeln!(out, "popbase_grpc_request_duration_seconds_count{{{labels}}} {}", stats.count);
        }
        out.push_str("# HELP popbase_shed_calls_total Calls refused OVERLOADED because the port had its limit of calls in flight.\n");
        out.push_str("# TYPE popbase_shed_calls_total counter\n");
        for (role, refused) in self.shed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "popbase_shed_calls_total{{role=\"{}\"}} {refused}", LabelValue(role));
        }
        self.render_stores(&mut out);
        self.render_backups(&mut out);
        self.render_certificates(&mut out);
        process::render(&mut out);
        let renderers = self.renderers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for render in renderers {
            render(&mut out);
        }
        out
    }

    fn render_backups(&self, out: &mut String) {
        let Some(root) = self.backups.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        out.push_str("# HELP popbase_backup_last_success_timestamp_seconds When the newest complete backup set of a role was taken (Unix seconds).\n");
        out.push_str("# TYPE popbase_backup_last_success_timestamp_seconds gauge\n");
        for (role, at) in crate::backup_set::newest_per_role(&root) {
            let _ = writeln!(
                out,
                "popbase_backup_last_success_timestamp_seconds{{role=\"{}\"}} {at}",
                LabelValue(&role)
            );
        }
    }

    fn render_stores(&self, out: &mut String) {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner()).clone();
        stores::render(&stores, out);
    }

    fn render_certificates(&self, out: &mut String) {
        let watched = self.certificates.lock().unwrap_or_else(|p| p.into_inner()).clone();
        out.push_str("# HELP popbase_certificate_expiry_timestamp_seconds When a certificate this process presents stops being valid (Unix seconds, read from its file on each scrape).\n");
        out.push_str("# TYPE popbase_certificate_expiry_timestamp_seconds gauge\n");
        for (name, path) in watched {
            if let Some(at) = crate::cert::pem_file_not_after(&path) {
                let _ = writeln!(
                    out,
                    "popbase_certificate_expiry_timestamp_seconds{{certificate=\"{}\"}} {at}",
                    LabelValue(name)
                );
            }
        }
    }
}

/// A label value in the text exposition format: backslash, double quote
/// and line feed escaped, so no value (however it came to be) can end its
/// label or its line. Values are closed sets today (served methods, codes,
/// roles, tables); this keeps a scrape parseable if one ever is not.
pub struct LabelValue<'a>(pub &'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The gRPC status codes (0-16) and `transport`, as labels; anything else `other`.
fn code_label(code: &str) -> &'static str {
    const CODES: [&str; 17] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    ];
    match code {
        "transport" => "transport",
        _ => CODES.iter().find(|c| **c == code).copied().unwrap_or("other"),
    }
}

/// Tower layer recording every request of one role's server.
#[derive(Clone)]
pub struct MetricsLayer {
    role: Role,
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(role: Role, metrics: Arc<Metrics>) -> Self {
        Self { role, metrics }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            role: self.role,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    role: Role,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = crate::methods::label(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        let (role, metrics) = (self.role, Arc::clone(&self.metrics));
        Box::pin(async move {
            let result = future.await;
            // Errors answered before any message carry grpc-status in the
            // headers; answers that began streaming report it in trailers,
            // which this layer does not wait for: they count as "0" here.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_string(),
                Err(_) => "transport".to_string(),
            };
            metrics.observe(role, method, &code, started.elapsed());
            crate::propagation::record_status(&code);
            result
        })
    }
}

/// Serves `GET /metrics` on `listener` until shutdown. A deliberately small
/// HTTP/1.1 responder: one request per connection, no keep-alive.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait() => return,
        };
        let Ok((mut socket, _)) = accepted else { continue };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut request = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let (status, body) = if request.starts_with(b"GET /metrics ") || request.starts_with(b"GET /metrics?") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "not found; try /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects `name=value` of every field recorded on a span after it was opened.
    struct Recorded(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorded {
        fn on_record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            struct Visit<'a>(&'a mut Vec<String>);
            impl tracing::field::Visit for Visit<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    self.0.push(format!("{}={value:?}", field.name()));
                }
            }
            values.record(&mut Visit(&mut self.0.lock().expect("lock")));
        }
    }

    /// A call answered with `code` through the metrics layer, inside the server span.
    async fn recorded_for(code: &'static str) -> Vec<String> {
        use tower::Layer as _;
        use tower::ServiceExt as _;
        use tracing::Instrument as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Recorded(seen.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let answer = tower::service_fn(move |_: http::Request<()>| async move {
            Ok::<_, std::convert::Infallible>(http::Response::builder().header("grpc-status", code).body(()).expect("response"))
        });
        let service = MetricsLayer::new(Role::Gateway, Metrics::new()).layer(answer);
        let request = http::Request::builder()
            .uri("/popbase.gateway.v1.Persons/PersonSummary")
            .body(())
            .expect("request");
        let span = crate::propagation::server_span("gateway", &http::Request::builder().uri("/x/Y").body(()).expect("request"));
        service.oneshot(request).instrument(span).await.expect("answer");
        seen.lock().expect("lock").clone()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn refused_calls_mark_their_span_as_errors_with_the_grpc_code() {
        let refused = recorded_for("7").await;
        assert!(refused.contains(&"rpc.grpc.status_code=7".to_string()), "{refused:?}");
        assert!(refused.contains(&"otel.status_code=\"ERROR\"".to_string()), "{refused:?}");
        let answered = recorded_for("0").await;
        assert!(answered.contains(&"rpc.grpc.status_code=0".to_string()), "{answered:?}");
        assert!(!answered.iter().any(|f| f.starts_with("otel.status_code")), "{answered:?}");
    }

    #[test]
    fn label_values_cannot_end_their_label_or_line() {
        let hostile = "/popbase.x\",role=\"gateway\",code=\"0\\\nnext 1";
        assert_eq!(
            LabelValue(hostile).to_string(),
            "/popbase.x\\\",role=\\\"gateway\\\",code=\\\"0\\\\\\nnext 1"
        );
        assert_eq!(LabelValue("Persons/PersonSummary").to_string(), "Persons/PersonSummary");
    }

    /// A caller's path never becomes a label: junk paths (one crafted to
    /// inject labels among them) count as one `unknown` series, and every
    /// sample line stays well-formed.
    #[test]
    fn callers_cannot_write_labels_or_add_series() {
        let metrics = Metrics::default();
        let junk = ["/popbase.x\",role=\"gateway\",code=\"0", "/a\nb", "/popbase.ops.v1.Ops/Nope"];
        for i in 0..1000 {
            let path = format!("{}{i}", junk[i % junk.len()]);
            metrics.observe(Role::Gateway, &path, "12", Duration::from_millis(1));
        }
        metrics.observe(
            Role::Gateway,
            "/popbase.ops.v1.Ops/GetStoreStats",
            "not a code\"",
            Duration::from_millis(1),
        );
        let text = metrics.render();
        let samples: Vec<&str> = text.lines().filter(|l| l.starts_with("popbase_grpc_requests_total{")).collect();
        assert_eq!(
            samples,
            [
                "popbase_grpc_requests_total{role=\"gateway\",method=\"/popbase.ops.v1.Ops/GetStoreStats\",code=\"other\"} 1",
                "popbase_grpc_requests_total{role=\"gateway\",method=\"unknown\",code=\"12\"} 1000",
            ]
        );
    }

    #[test]
    fn histograms_are_cumulative_and_counted_per_code() {
        let metrics = Metrics::default();
        metrics.observe(
            Role::Household,
            "/popbase.ops.v1.Ops/GetStoreStats",
            "0",
            Duration::from_micros(300),
        );
        metrics.observe(Role::Household, "/popbase.ops.v1.Ops/GetStoreStats", "0", Duration::from_millis(30));
        metrics.observe(Role::Household, "/popbase.ops.v1.Ops/GetStoreStats", "3", Duration::from_secs(9));
        let text = metrics.render();
        let method = "role=\"household\",method=\"/popbase.ops.v1.Ops/GetStoreStats\"";
        assert!(
            text.contains(&format!("popbase_grpc_requests_total{{{method},code=\"0\"}} 2")),
            "{text}"
        );
        assert!(text.contains(&format!("popbase_grpc_requests_total{{{method},code=\"3\"}} 1")));
        assert!(text.contains(&format!("popbase_grpc_request_duration_seconds_bucket{{{method},le=\"0.0005\"}} 1")));
        assert!(text.contains(&format!("popbase_grpc_request_duration_seconds_bucket{{{method},le=\"0.05\"}} 2")));
        assert!(text.contains(&format!("popbase_grpc_request_duration_seconds_bucket{{{method},le=\"5\"}} 2")));
        assert!(text.contains(&format!("popbase_grpc_request_duration_seconds_bucket{{{method},le=\"+Inf\"}} 3")));
        assert!(text.contains(&format!("popbase_grpc_request_duration_seconds_count{{{method}}} 3")));
    }
}
