//! `Settlement`: the policies and the evaluation of one application.

use std::sync::Arc;

use popbase_common::ServiceResult;
use popbase_proto::household::settlement_server::{Settlement, SettlementServer};
use popbase_proto::household::{ListPoliciesRequest, ListPoliciesResponse, PolicySummary, SettlementApplication, SettlementEvaluation};
use tonic::{Request, Response, Status};

use super::{blocking, input};
use crate::Registry;
use crate::settlement::{self, Application, PlatformSources, PolicySet};

pub struct SettlementService {
    registry: Registry,
    policies: Arc<PolicySet>,
    platform: Option<PlatformSources>,
}

/// Fills the application's facts from the platform's records, when the
/// registry runs with the roles that hold them.
pub async fn gather_platform_facts(platform: Option<&PlatformSources>, application: &mut Application) -> ServiceResult<()> {
    if let Some(sources) = platform {
        let sponsors: Vec<String> = application.relations.iter().map(|(id, _)| id.clone()).collect();
        application.platform = sources
            .gather(application.applicant_id.as_str(), &sponsors, &application.target, application.on)
            .await?;
    }
    Ok(())
}

impl SettlementService {
    /// `platform`: the feeds and residence roles the facts come from;
    /// `None` evaluates on the registry and the declaration alone.
    pub fn new(registry: Registry, policies: Arc<PolicySet>, platform: Option<PlatformSources>) -> Self {
        Self {
            registry,
            policies,
            platform,
        }
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
                in_force_from: Some(p.in_force_from.0.into()),
                in_force_until: p.in_force_until.map(|d| d.0.into()),
            })
            .collect();
        Ok(Response::new(ListPoliciesResponse { policies }))
    }

    async fn evaluate_settlement(&self, request: Request<SettlementApplication>) -> Result<Response<SettlementEvaluation>, Status> {
        let (policy_id, mut application) = input::application(Some(request.get_ref()))?;
        let policy = self
            .policies
            .in_force(&policy_id, &application.target.committee_code, application.on, "")?
            .clone();
        gather_platform_facts(self.platform.as_ref(), &mut application).await?;
        let registry = self.registry.clone();
        let evaluation = blocking(move || Ok(settlement::evaluate(&registry, &policy, &application)?)).await?;
        Ok(Response::new(evaluation))
    }
}
