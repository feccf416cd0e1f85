//! `Settlement`: the policies and the evaluation of one application.

use std::sync::Arc;

use popbase_common::ServiceError;
use popbase_proto::household::settlement_server::{Settlement, SettlementServer};
use popbase_proto::household::{ListPoliciesRequest, ListPoliciesResponse, PolicySummary, SettlementApplication, SettlementEvaluation};
use tonic::{Request, Response, Status};

use super::{blocking, input};
use crate::Registry;
use crate::settlement::{self, PolicySet};

pub struct SettlementService {
    registry: Registry,
    policies: Arc<PolicySet>,
}

impl SettlementService {
    pub fn new(registry: Registry, policies: Arc<PolicySet>) -> Self {
        Self { registry, policies }
    }

    pub fn into_server(self) -> SettlementServer<Self> {
        SettlementServer::new(self)
    }
}

#[tonic::async_trait]
impl Settlement for SettlementService {
    async fn list_policies(&self, _request: Request<ListPoliciesRequest>) -> Result<Response<ListPoliciesResponse>, Status> {
        let policies = self
            .policies
            .iter()
            .map(|p| PolicySummary {
                policy_id: p.id.clone(),
                title: p.title.clone(),
                document: p.document.clone(),
                city_code: p.city_code.clone(),
                rule_ids: p.rules.iter().map(|r| r.id.clone()).collect(),
                placement_order: p.placement_order.iter().map(|k| k.0 as i32).collect(),
            })
            .collect();
        Ok(Response::new(ListPoliciesResponse { policies }))
    }

    async fn evaluate_settlement(&self, request: Request<SettlementApplication>) -> Result<Response<SettlementEvaluation>, Status> {
        let (policy_id, application) = input::application(Some(request.get_ref()))?;
        let policy = match policy_id.as_str() {
            "" => self
                .policies
                .for_committee(&application.target.committee_code)
                .ok_or_else(|| ServiceError::precondition("target", "no settlement policy governs the city of the target"))?,
            id => self
                .policies
                .get(id)
                .ok_or_else(|| ServiceError::invalid("policy_id", format!("unknown policy {id:?}")))?,
        }
        .clone();
        let registry = self.registry.clone();
        let evaluation = blocking(move || Ok(settlement::evaluate(&registry, &policy, &application)?)).await?;
        Ok(Response::new(evaluation))
    }
}
