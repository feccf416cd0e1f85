//! Audit: the chain head and usage statistics, for auditors.

use std::sync::Arc;

use popbase_common::{ServiceError, validate};
use popbase_proto::gateway::audit_server::{Audit, AuditServer};
use popbase_proto::gateway::{ChainHead, ChainHeadRequest, UsageStatisticsRequest, UsageStatisticsResponse};
use tonic::{Request, Response, Status};

use super::{Fetched, MAX_CODE_CHARS, answer, respond, whole_answer};
use crate::audit::log::yyyymmdd;
use crate::catalogue::interface;
use crate::gate::Gate;

/// Longest period one statistics call covers.
const MAX_DAYS: i64 = 366;

whole_answer!(ChainHead, "head");
whole_answer!(UsageStatisticsResponse, "usage");

#[derive(Clone)]
pub struct AuditService {
    gate: Arc<Gate>,
}

impl AuditService {
    pub fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }

    pub fn server(&self) -> AuditServer<Self> {
        AuditServer::new(self.clone())
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn get_chain_head(&self, request: Request<ChainHeadRequest>) -> Result<Response<ChainHead>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::AUDIT_CHAIN_HEAD,
                |r| &r.purpose,
                |_| Ok(((), Vec::new())),
                |()| async move { Ok(Fetched::one(gate.ledger.head().await?)) },
            )
            .await,
        )
    }

    async fn usage_statistics(&self, request: Request<UsageStatisticsRequest>) -> Result<Response<UsageStatisticsResponse>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::USAGE_STATISTICS,
                |r| &r.purpose,
                |r| {
                    let from = validate::date("from", r.from.as_ref(), None)?;
                    let to = validate::date("to", r.to.as_ref(), None)?;
                    if to < from || (to - from).num_days() > MAX_DAYS {
                        return Err(ServiceError::invalid(
                            "to",
                            format!("must be on or after from, at most {MAX_DAYS} days later"),
                        ));
                    }
                    validate::text("department", &r.department, 0, MAX_CODE_CHARS)?;
                    Ok(((yyyymmdd(from), yyyymmdd(to), r.department.clone()), Vec::new()))
                },
                |(from, to, department)| async move {
                    let usage = gate.ledger.usage_between(from, to, &department).await?;
                    let count = usage.len() as u64;
                    Ok(Fetched::counted(UsageStatisticsResponse { usage }, count))
                },
            )
            .await,
        )
    }
}
