//! Operations: how the storage roles stand (store figures, backups and
//! their age), for the operators' health page. The gateway asks each role's
//! Ops over the mesh, all at once, each within [`ASK_TIMEOUT`]; a role that
//! does not answer is reported unreachable, not waited for.

use std::sync::Arc;
use std::time::Duration;

use popbase_proto::gateway::operations_server::{Operations, OperationsServer};
use popbase_proto::gateway::{PlatformHealthRequest, PlatformHealthResponse, RoleHealth};
use popbase_proto::ops::GetStoreStatsRequest;
use tonic::{Request, Response, Status};

use super::{Fetched, answer, respond, whole_answer};
use crate::catalogue::interface;
use crate::gate::Gate;
use crate::sources::Sources;

/// How long one role's figures may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

whole_answer!(PlatformHealthResponse, "health");

#[derive(Clone)]
pub struct OperationsService {
    gate: Arc<Gate>,
    sources: Sources,
}

impl OperationsService {
    pub fn new(gate: Arc<Gate>, sources: Sources) -> Self {
        Self { gate, sources }
    }

    pub fn server(&self) -> OperationsServer<Self> {
        OperationsServer::new(self.clone())
    }
}

/// Every storage role's figures, asked at once.
async fn health(sources: &Sources) -> PlatformHealthResponse {
    let asks = sources.ops.iter().map(|(role, client)| {
        let mut client = client.clone();
        async move {
            let mut request = Request::new(GetStoreStatsRequest {});
            request.set_timeout(ASK_TIMEOUT);
            match tokio::time::timeout(ASK_TIMEOUT, client.get_store_stats(request)).await {
                Ok(Ok(stats)) => RoleHealth {
                    role: role.to_string(),
                    reachable: true,
                    problem: String::new(),
                    stores: stats.into_inner().stores,
                },
                Ok(Err(status)) => RoleHealth {
                    role: role.to_string(),
                    reachable: false,
                    problem: format!("{:?}", status.code()),
                    stores: Vec::new(),
                },
                Err(_) => RoleHealth {
                    role: role.to_string(),
                    reachable: false,
                    problem: format!("no answer within {} s", ASK_TIMEOUT.as_secs()),
                    stores: Vec::new(),
                },
            }
        }
    });
    PlatformHealthResponse {
        roles: futures::future::join_all(asks).await,
        at_unix_millis: chrono::Utc::now().timestamp_millis(),
    }
}

#[tonic::async_trait]
impl Operations for OperationsService {
    async fn platform_health(&self, request: Request<PlatformHealthRequest>) -> Result<Response<PlatformHealthResponse>, Status> {
        let sources = self.sources.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::PLATFORM_HEALTH,
                |r| &r.purpose,
                |_| Ok(((), Vec::new())),
                |()| async move { Ok(Fetched::one(health(&sources).await)) },
            )
            .await,
        )
    }
}
