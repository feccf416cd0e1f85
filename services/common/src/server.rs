//! Server setup shared by every role: health, reflection, one span per RPC,
//! graceful shutdown.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::{Routes, RoutesBuilder};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use std::sync::Arc;

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
}

impl RoleServices {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            routes: Routes::builder(),
            service_names: Vec::new(),
            tls: None,
        }
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

/// Serves `services` on `listener` (RPCs recorded in `metrics`) until `shutdown` fires, then drains
/// in-flight calls. Health starts SERVING for every named service and turns
/// NOT_SERVING the moment shutdown begins, so load balancers stop routing
/// before connections close.
/// How long in-flight calls may run on after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve(services: RoleServices, listener: TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) -> Result<(), ServeError> {
    let shutdown_for_deadline = shutdown.clone();
    let RoleServices {
        role,
        mut routes,
        service_names,
        tls,
    } = services;
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in &service_names {
        reporter.set_service_status(*name, ServingStatus::Serving).await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(popbase_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(popbase_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let role_name = role.name();
    let signal = async move {
        shutdown.wait().await;
        reporter.set_service_status("", ServingStatus::NotServing).await;
        for name in &service_names {
            reporter.set_service_status(*name, ServingStatus::NotServing).await;
        }
        tracing::info!(role = role_name, "draining");
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .trace_fn(move |request| propagation::server_span(role_name, request))
        .layer(MetricsLayer::new(role, metrics))
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
}
