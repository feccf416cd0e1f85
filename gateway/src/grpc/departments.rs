//! InsuranceGap, EmployerLocality and PersonSummary.

use std::sync::Arc;

use futures::StreamExt;
use popbase_common::limits::LimitsConfig;
use popbase_proto::gateway::locality_server::{Locality, LocalityServer};
use popbase_proto::gateway::medical_insurance_server::{MedicalInsurance, MedicalInsuranceServer};
use popbase_proto::gateway::persons_server::{Persons, PersonsServer};
use popbase_proto::gateway::{
    EmployerLocalityRequest, EmployerLocalityResponse, InsuranceGapRequest, PersonSummaryRequest, PersonSummaryResponse, UninsuredResident,
};
use tonic::{Request, Response, Status};

use super::lists::{Listed, answer_list};
use super::{Fetched, answer, answer_needing, respond, today};
use crate::catalogue::interface;
use crate::gate::Gate;
use crate::interfaces::{insurance, locality, person};
use crate::sources::Sources;

#[derive(Clone)]
pub struct DepartmentServices {
    gate: Arc<Gate>,
    sources: Sources,
    /// This replica's uninsured lists in flight (`limits.max_city_lists`).
    lists: insurance::ListsInFlight,
}

impl DepartmentServices {
    pub fn new(gate: Arc<Gate>, sources: Sources, limits: &LimitsConfig) -> Self {
        let share_window = std::time::Duration::from_secs(limits.list_share_secs);
        Self {
            gate,
            sources,
            lists: insurance::ListsInFlight::new(limits.max_city_lists, share_window),
        }
    }

    pub fn insurance(&self) -> MedicalInsuranceServer<Self> {
        MedicalInsuranceServer::new(self.clone())
    }

    pub fn locality(&self) -> LocalityServer<Self> {
        LocalityServer::new(self.clone())
    }

    pub fn persons(&self) -> PersonsServer<Self> {
        PersonsServer::new(self.clone())
    }
}

type UninsuredStream = Listed<UninsuredResident>;

#[tonic::async_trait]
impl MedicalInsurance for DepartmentServices {
    type InsuranceGapStream = UninsuredStream;

    async fn insurance_gap(&self, request: Request<InsuranceGapRequest>) -> Result<Response<Self::InsuranceGapStream>, Status> {
        let city = self.gate.catalogue().city.clone();
        let sources = self.sources.clone();
        let lists = self.lists.clone();
        let list = answer_list(
            &self.gate,
            request,
            interface::INSURANCE_GAP,
            |r| &r.purpose,
            |r| insurance::validate(r, &city),
            |division| {
                // Places are taken once the call is authorised, so a caller
                // that may not ask cannot crowd out one that may.
                match lists.admit(&division) {
                    Ok(admitted) => insurance::gap(sources, lists, division, today(), admitted).right_stream(),
                    Err(full) => futures::stream::once(futures::future::ready(Err(full))).left_stream(),
                }
            },
        )
        .await?;
        Ok(Response::new(list))
    }
}

#[tonic::async_trait]
impl Locality for DepartmentServices {
    async fn employer_locality(&self, request: Request<EmployerLocalityRequest>) -> Result<Response<EmployerLocalityResponse>, Status> {
        let city = self.gate.catalogue().city.clone();
        let sources = self.sources.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::EMPLOYER_LOCALITY,
                |r| &r.purpose,
                |r| Ok((locality::validate(r, &city)?, Vec::new())),
                |asked| async move { Ok(Fetched::one(locality::locate(&sources, asked, &self.gate.catalogue().city).await?)) },
            )
            .await,
        )
    }
}

#[tonic::async_trait]
impl Persons for DepartmentServices {
    async fn person_summary(&self, request: Request<PersonSummaryRequest>) -> Result<Response<PersonSummaryResponse>, Status> {
        let sources = self.sources.clone();
        respond(
            answer_needing(
                &self.gate,
                request,
                interface::PERSON_SUMMARY,
                |r| &r.purpose,
                person::needs,
                |r| {
                    let (id, as_of) = person::validate(r, today())?;
                    Ok(((id.clone(), as_of), vec![id]))
                },
                |(id, as_of)| async move { Ok(Fetched::one(person::summary(&sources, &id, today(), as_of).await?)) },
            )
            .await,
        )
    }
}
