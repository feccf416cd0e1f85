//! Server setup shared by every role: health, reflection, one span per RPC,
//! the mesh's check of internal callers, graceful shutdown.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::{Routes, RoutesBuilder};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use std::sync::Arc;

use crate::deadline::DeadlineLayer;
use crate::limits::LimitsConfig;
use crate::load_shed::LoadShedLayer;
use crate::mesh::Mesh;
use crate::mesh::guard::MeshGuardLayer;
use crate::metrics::{Metrics, MetricsLayer};
use crate::{Role, Shutdown, propagation};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection setup: {0}")]
    Reflection(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// What a role serves: its gRPC services and the names health reports on.
pub struct RoleServices {
    pub role: Role,
    pub routes: RoutesBuilder,
    /// Fully qualified gRPC service names (e.g. `popbase.ops.v1.Ops`).
    pub service_names: Vec<&'static str>,
    /// TLS (and client-certificate checks) for this role's listener.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// This process's mesh identity when each call must come from a mesh
    /// identity the mesh policy allows (see [`crate::mesh::policy`]).
    pub mesh_guard: Option<crate::mesh::MeshIdentity>,
    /// Where this role reports its health: the process's shared reporter
    /// when several roles (and the kubelet's health port) share one.
    pub health: ProcessHealth,
    /// Deadlines and admission limits of this port (`[limits]`).
    pub limits: LimitsConfig,
}

impl RoleServices {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            routes: Routes::builder(),
            service_names: Vec::new(),
            tls: None,
            mesh_guard: None,
            health: ProcessHealth::new(),
            limits: LimitsConfig::default(),
        }
    }

    /// Puts this role's port in the mesh: mutual TLS with the process's
    /// mesh certificate, and every call checked against the mesh policy.
    pub fn in_mesh(&mut self, mesh: &Mesh) -> &mut Self {
        self.tls = Some(mesh.server_tls());
        self.mesh_guard = Some(mesh.identity());
        self
    }

    /// Adds a generated tonic server and marks its name for health reporting.
    pub fn add<S>(&mut self, service: S) -> &mut Self
    where
        S: tower_service::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }
}

/// The connections `listener` accepts, with Nagle's algorithm off.
///
/// `Server::tcp_nodelay` only applies to listeners tonic binds itself; on
/// ours, small answers would otherwise sit until the peer's delayed ACK
/// (about 40 ms on Linux), a stall that showed in the load tester's p99.9.
fn accepted(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The health of every role of this process, reported on each role's
/// port and, for the kubelet, on one plaintext port ([`serve_health`]).
#[derive(Clone, Default)]
pub struct ProcessHealth {
    reporter: HealthReporter,
}

impl ProcessHealth {
    pub fn new() -> Self {
        Self::default()
    }

    fn server(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    async fn set(&self, names: &[&'static str], status: ServingStatus) {
        for name in names {
            self.reporter.set_service_status(*name, status).await;
        }
    }
}

/// The services every port serves beside its role's: health and reflection.
pub const EVERY_PORT: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Reflection listing exactly what one port serves: its services, health
/// and reflection itself (not every service the binary knows).
fn reflection_names(service_names: &[&'static str]) -> impl Iterator<Item = &'static str> {
    service_names.iter().copied().chain(EVERY_PORT)
}

/// HTTP/2 flow-control windows of every port. h2 bounds the framing
/// overhead of the small DATA frames it holds unread to half the
/// connection window (its defence against floods of tiny frames, answered
/// GOAWAY `too_many_data_frames`): a frame of p < 256 bytes costs 256 − p.
/// A Python grpcio client sends each ~111-byte intake item in its own
/// frame (145 of budget), so a stream whose handler is busy holds up to
/// `STREAM_WINDOW / 111 × 145 ≈ 1.31 × STREAM_WINDOW` of it before flow
/// control stops the client. hyper's defaults (1 MiB each) let one stream
/// overrun the budget, and intakes of 5,000 items were cut off. Here a
/// connection's budget (6 MiB) covers `limits.max_concurrent_streams`
/// (64) such streams waiting at once (64 × 86 KB), and a flood of 1-byte
/// frames still ends after ~24,000 unread ones. Uploads stay fast on a
/// LAN: a 64 KiB window is refilled by every read.
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 12 * 1024 * 1024;

/// How long in-flight calls may run on after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `services` on `listener` (RPCs recorded in `metrics`) until `shutdown` fires, then drains
/// in-flight calls. Health starts SERVING for every named service and turns
/// NOT_SERVING the moment shutdown begins, so load balancers stop routing
/// before connections close.
pub async fn serve(services: RoleServices, listener: TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) -> Result<(), ServeError> {
    let shutdown_for_deadline = shutdown.clone();
    let RoleServices {
        role,
        mut routes,
        service_names,
        tls,
        mesh_guard,
        health,
        limits,
    } = services;
    health.set(&service_names, ServingStatus::Serving).await;
    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(popbase_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(popbase_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in reflection_names(&service_names) {
        reflection_v1 = reflection_v1.with_service_name(name);
        reflection_v1alpha = reflection_v1alpha.with_service_name(name);
    }
    let reflection_v1 = reflection_v1.build_v1().map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection_v1alpha
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    routes
        .add_service(health.server())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let role_name = role.name();
    let signal = async move {
        shutdown.wait().await;
        health.set(&[""], ServingStatus::NotServing).await;
        health.set(&service_names, ServingStatus::NotServing).await;
        tracing::info!(role = role_name, "draining");
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    if role == Role::Gateway {
        // Departments' clients keep one connection for hours: a graceful
        // GOAWAY after a while (calls in flight finish) lets them spread
        // over the replicas the HPA added.
        builder = builder.max_connection_age(limits.gateway_connection_age());
    }
    // Outermost first: every answer is counted (refusals included), the
    // mesh refuses strangers before they take a slot, and an admitted call
    // runs under its deadline.
    let server = builder
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .trace_fn(move |request| propagation::server_span(role_name, request))
        .layer(MetricsLayer::new(role, metrics.clone()))
        .layer(MeshGuardLayer::new(role, mesh_guard))
        .layer(LoadShedLayer::new(role, limits.max_concurrent_calls, metrics))
        .layer(DeadlineLayer::new(limits.request_timeout()))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(accepted(listener), signal);
    // Idle client connections (other roles' channels in this process) can
    // hold a graceful drain open until keepalive gives up; in-flight calls
    // get DRAIN_TIMEOUT, then the remaining connections are dropped.
    let drain_deadline = async {
        shutdown_for_deadline.wait().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => result?,
        () = drain_deadline => tracing::warn!(role = role_name, "drain timed out; closing the remaining connections"),
    }
    tracing::info!(role = role_name, "stopped");
    Ok(())
}

/// Serves only `grpc.health.v1.Health`, plaintext, on `listener`: the
/// kubelet's probes carry no client certificate, and this port answers
/// nothing else. It stops when `shutdown` fires (the roles report
/// NOT_SERVING on it first).
pub async fn serve_health(health: ProcessHealth, listener: TcpListener, shutdown: Shutdown) -> Result<(), ServeError> {
    Server::builder()
        .add_service(health.server())
        .serve_with_incoming_shutdown(accepted(listener), async move {
            shutdown.wait().await;
            // Let probes see NOT_SERVING while the roles drain.
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut incoming = accepted(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let stream = incoming.next().await.expect("a connection").expect("accepted");
        assert!(stream.nodelay().expect("socket option"), "TCP_NODELAY is set on accepted sockets");
    }

    /// Reflection on a port lists what that port serves, nothing the binary
    /// merely knows (the gateway's port used to list the internal services).
    #[tokio::test]
    async fn reflection_lists_only_the_services_of_its_port() {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

        let dir = tempfile::tempdir().expect("tempdir");
        let mut services = RoleServices::new(Role::Household);
        services.add(
            crate::ops::OpsService::new(
                Role::Household,
                Vec::new(),
                &crate::Config {
                    data_dir: dir.path().to_path_buf(),
                    ..Default::default()
                },
            )
            .into_server(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let shutdown = Shutdown::new();
        let server = tokio::spawn(serve(services, listener, Metrics::new(), shutdown.clone()));
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection")
            .into_inner();
        let answer = answers.next().await.expect("an answer").expect("listed");
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a service list: {answer:?}");
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "popbase.ops.v1.Ops"
            ]
        );
        drop(answers);
        shutdown.trigger();
        server.await.expect("server task").expect("served");
    }
}
