//! How one role calls another. When the callee runs in another process the
//! client goes over a traced gRPC channel; when it runs in this process
//! (all-in-one) the client calls straight into the callee's router, which
//! skips the socket, HTTP/2 framing and two kernel crossings per call, and
//! the callee's RPC metrics are still recorded. Either way requests are
//! encoded and decoded as protobuf by the same generated code, so nothing
//! behaves differently but the cost.

use std::convert::Infallible;
use std::sync::Arc;

use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::Channel;
use tower::Layer as _;
use tower::util::BoxCloneSyncService;

use crate::Role;
use crate::deadline::DeadlineLayer;
use crate::mesh::Mesh;
use crate::metrics::{Metrics, MetricsLayer};
use crate::propagation::traced;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A transport failure of either kind. A named type rather than a boxed
/// `dyn Error`: generated clients over a boxed-error service trip the
/// compiler's higher-ranked lifetime checks inside `async_trait` handlers.
#[derive(Debug)]
pub struct UpstreamError(BoxError);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// The transport of a generated client (`FooClient<Upstream>`), whichever way it goes.
pub type Upstream = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, UpstreamError>;

/// How this process reaches other roles over the network: plaintext, or
/// mutual TLS with its mesh certificate.
#[derive(Clone, Debug)]
pub struct Dialer {
    tls: Option<tonic::transport::ClientTlsConfig>,
    /// Longest a call may wait for its answer (see [`crate::deadline`]).
    request_timeout: std::time::Duration,
}

impl Default for Dialer {
    fn default() -> Self {
        Self {
            tls: None,
            request_timeout: crate::limits::LimitsConfig::default().upstream_timeout(),
        }
    }
}

/// How long connecting to another role may take before the call fails
/// `UNAVAILABLE` (a stopped or unreachable pod), rather than hang.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Dialer {
    /// Plaintext: an all-in-one process's own ports, or a development cluster.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Mutual TLS as this process's mesh identity.
    pub fn mesh(mesh: &Mesh) -> Self {
        Self {
            tls: Some(mesh.client_tls()),
            ..Self::default()
        }
    }

    /// The same dialer with calls bounded by `timeout` (`limits.upstream_timeout_secs`).
    pub fn with_request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The dialer for an optional mesh.
    pub fn for_mesh(mesh: Option<&Mesh>) -> Self {
        mesh.map_or_else(Self::plaintext, Self::mesh)
    }

    /// The dialer of a configured mesh certificate (a tool's: `popbase
    /// backup`, `feed-load`), plaintext when none is configured.
    pub fn from_config(config: &crate::config::MeshConfig) -> Result<Self, crate::mesh::MeshError> {
        Ok(Self::for_mesh(Mesh::load(config)?.as_ref()))
    }

    /// Whether calls go over mutual TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A lazily connecting channel to `address`. With TLS an `http://`
    /// address is dialled as `https://` (tonic only speaks TLS to an https
    /// URI) and any other scheme is refused: a mesh process never falls
    /// back to plaintext, whatever the case or spelling of the address.
    pub fn channel(&self, what: &str, address: &str) -> Result<Channel, String> {
        let bad = |e: &dyn std::fmt::Display| format!("bad {what} upstream address {address:?}: {e}");
        let uri: http::Uri = address.parse().map_err(|e| bad(&e))?;
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
        let (http, https) = (scheme.as_deref() == Some("http"), scheme.as_deref() == Some("https"));
        let uri = match &self.tls {
            Some(_) if http || https => {
                let mut parts = uri.into_parts();
                parts.scheme = Some(http::uri::Scheme::HTTPS);
                http::Uri::from_parts(parts).map_err(|e| bad(&e))?
            }
            Some(_) => return Err(bad(&"the mesh dials http:// or https:// addresses")),
            None if https => {
                return Err(format!(
                    "{what} upstream {address:?} is https but this process has no mesh certificate"
                ));
            }
            None => uri,
        };
        let mut endpoint = Channel::builder(uri).connect_timeout(CONNECT_TIMEOUT);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS for the {what} upstream: {e}"))?;
        }
        Ok(endpoint.connect_lazy())
    }
}

/// A client transport to `address` that connects on first use, carries
/// the caller's trace context and bounds each call by the dialer's
/// request timeout (or the call's own shorter `grpc-timeout`).
pub fn remote(what: &str, address: &str, dialer: &Dialer) -> Result<Upstream, String> {
    let channel = dialer.channel(what, address)?;
    let service = tower::ServiceExt::<http::Request<Body>>::map_response(traced(channel), |response| response.map(Body::new));
    let service = DeadlineLayer::new(dialer.request_timeout).layer(service);
    let service = tower::ServiceExt::<http::Request<Body>>::map_err(service, |e| UpstreamError(e.into()));
    Ok(BoxCloneSyncService::new(service))
}

/// A client transport into `routes`, the gRPC services `role` serves in
/// this process; calls are counted under `role` like those from the socket.
pub fn in_process(role: Role, routes: Routes, metrics: Arc<Metrics>) -> Upstream {
    let counted = MetricsLayer::new(role, metrics).layer(routes);
    let service = tower::ServiceExt::<http::Request<Body>>::map_err(counted, |never: Infallible| -> UpstreamError { match never {} });
    BoxCloneSyncService::new(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::OpsService;
    use crate::server::RoleServices;
    use popbase_proto::ops::GetStoreStatsRequest;
    use popbase_proto::ops::ops_client::OpsClient;

    /// A generated client over the in-process transport reaches the role's
    /// handler, and the call shows in the role's metrics as if it came
    /// over the socket.
    #[tokio::test]
    async fn a_client_calls_a_role_in_process_and_the_call_is_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut services = RoleServices::new(Role::Household);
        services.add(
            OpsService::new(
                Role::Household,
                Vec::new(),
                &crate::Config {
                    data_dir: dir.path().to_path_buf(),
                    ..Default::default()
                },
            )
            .into_server(),
        );
        let metrics = Metrics::new();
        let upstream = in_process(Role::Household, services.routes.clone().routes(), metrics.clone());
        let stats = OpsClient::new(upstream)
            .get_store_stats(GetStoreStatsRequest {})
            .await
            .expect("answered in process")
            .into_inner();
        assert_eq!(stats.role, "household");
        let text = metrics.render();
        assert!(
            text.contains("popbase_grpc_requests_total{role=\"household\",method=\"/popbase.ops.v1.Ops/GetStoreStats\",code=\"0\"} 1"),
            "{text}"
        );
        let unknown = remote("feeds", "not a uri", &Dialer::plaintext()).expect_err("refused");
        assert!(unknown.contains("feeds"), "{unknown}");
    }

    /// With a mesh certificate every address is dialled over TLS, whatever
    /// the case of its scheme; other schemes are refused.
    #[tokio::test]
    async fn a_mesh_dialer_never_falls_back_to_plaintext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = crate::mesh::pki::Pki::new("test CA").expect("CA");
        let issued = pki.issue(crate::mesh::MeshIdentity::Gateway, &["127.0.0.1"]).expect("issue");
        std::fs::write(dir.path().join("ca.pem"), pki.ca_pem()).expect("write");
        crate::mesh::pki::write_pair(dir.path(), "gateway", &issued.cert_pem, &issued.key_pem).expect("write");
        let config = crate::config::MeshConfig {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("gateway.pem"),
            key: dir.path().join("gateway.key"),
            plaintext: false,
        };
        let mesh = crate::mesh::Mesh::load(&config).expect("load").expect("a mesh");
        let dialer = Dialer::mesh(&mesh);
        // A plaintext server: a TLS client must fail against it, not talk.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut services = RoleServices::new(Role::Household);
        services.add(
            OpsService::new(
                Role::Household,
                Vec::new(),
                &crate::Config {
                    data_dir: dir.path().to_path_buf(),
                    ..Default::default()
                },
            )
            .into_server(),
        );
        let shutdown = crate::Shutdown::new();
        tokio::spawn(crate::server::serve(services, listener, Metrics::new(), shutdown.clone()));
        for address in [format!("http://{addr}"), format!("HTTP://{addr}"), format!("Http://{addr}")] {
            let channel = dialer.channel("household", &address).expect("a channel");
            let answer = OpsClient::new(channel).get_store_stats(GetStoreStatsRequest {}).await;
            assert!(answer.is_err(), "{address} was dialled in plaintext");
        }
        assert!(dialer.channel("household", &format!("grpc://{addr}")).is_err());
        assert!(Dialer::plaintext().channel("household", &format!("https://{addr}")).is_err());
        shutdown.trigger();
    }
}
