//! Audit: the chain head, usage statistics and searches of the trail, for auditors.

use std::sync::Arc;

use popbase_common::{ServiceError, validate};
use popbase_proto::gateway::audit_server::{Audit, AuditServer};
use popbase_proto::gateway::{
    AuditSearchRequest, AuditSearchResponse, ChainHead, ChainHeadRequest, ChainVerification, UsageStatisticsRequest,
    UsageStatisticsResponse, VerifyChainRequest,
};
use popbase_proto::ledger::AuditSearch;
use tonic::{Request, Response, Status};

use super::{Fetched, MAX_CODE_CHARS, answer, respond, today, whole_answer};
use crate::audit::log::yyyymmdd;
use crate::audit::query::MAX_SEARCH_PAGE;
use crate::catalogue::interface;
use crate::gate::Gate;

/// Longest period one statistics call covers.
const MAX_DAYS: i64 = 366;

whole_answer!(ChainHead, "head");
whole_answer!(UsageStatisticsResponse, "usage");
whole_answer!(AuditSearchResponse, "records");
whole_answer!(ChainVerification, "verification");

/// Records per search page when the request names no limit.
const DEFAULT_SEARCH_PAGE: u32 = 50;

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

    async fn search_audit(&self, request: Request<AuditSearchRequest>) -> Result<Response<AuditSearchResponse>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::AUDIT_SEARCH,
                |r| &r.purpose,
                |r| {
                    let subject = match r.subject_id_number.as_str() {
                        "" => None,
                        id => Some(validate::id_number("subject_id_number", id, today())?.as_str().to_string()),
                    };
                    validate::text("department", &r.department, 0, MAX_CODE_CHARS)?;
                    validate::text("interface", &r.interface, 0, MAX_CODE_CHARS)?;
                    if r.limit > MAX_SEARCH_PAGE {
                        return Err(ServiceError::invalid("limit", format!("at most {MAX_SEARCH_PAGE}")));
                    }
                    if r.from_unix_millis < 0 || r.to_unix_millis < 0 {
                        return Err(ServiceError::invalid(
                            "from_unix_millis",
                            "times are milliseconds since 1970, not negative",
                        ));
                    }
                    if r.to_unix_millis != 0 && r.to_unix_millis < r.from_unix_millis {
                        return Err(ServiceError::invalid("to_unix_millis", "is before from_unix_millis"));
                    }
                    let search = AuditSearch {
                        subject: subject.as_deref().map(|id| self.gate.pseudonym(id)).unwrap_or_default(),
                        department: r.department.clone(),
                        interface: r.interface.clone(),
                        from_unix_millis: r.from_unix_millis,
                        to_unix_millis: r.to_unix_millis,
                        after_seq: r.after_seq,
                        limit: if r.limit == 0 { DEFAULT_SEARCH_PAGE } else { r.limit },
                    };
                    // A search for a person is an access to their data: the
                    // record of it names them, so their access log shows it.
                    Ok((search, subject.into_iter().collect()))
                },
                |search| async move {
                    let page = gate.ledger.search_audit(search).await?;
                    let count = page.records.len() as u64;
                    Ok(Fetched::counted(page, count))
                },
            )
            .await,
        )
    }

    async fn verify_chain(&self, request: Request<VerifyChainRequest>) -> Result<Response<ChainVerification>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::AUDIT_CHAIN_VERIFY,
                |r| &r.purpose,
                |r| Ok((r.run, Vec::new())),
                |run| async move { Ok(Fetched::one(gate.ledger.verify_chain(run).await?)) },
            )
            .await,
        )
    }
}
