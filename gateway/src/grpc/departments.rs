//! InsuranceGap, EmployerLocality and PersonSummary.

use std::sync::Arc;

use futures::StreamExt;
use popbase_common::load_shed::overloaded;
use popbase_proto::gateway::locality_server::{Locality, LocalityServer};
use popbase_proto::gateway::medical_insurance_server::{MedicalInsurance, MedicalInsuranceServer};
use popbase_proto::gateway::persons_server::{Persons, PersonsServer};
use popbase_proto::gateway::{
    EmployerLocalityRequest, EmployerLocalityResponse, InsuranceGapRequest, PersonSummaryRequest, PersonSummaryResponse, UninsuredResident,
};
use tokio::sync::Semaphore;
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
    /// Places for whole-city lists on this replica (`limits.max_city_lists`).
    city_lists: Arc<Semaphore>,
    max_city_lists: usize,
}

impl DepartmentServices {
    pub fn new(gate: Arc<Gate>, sources: Sources, max_city_lists: usize) -> Self {
        Self {
            gate,
            sources,
            city_lists: Arc::new(Semaphore::new(max_city_lists * insurance::CITY_PLACES as usize)),
            max_city_lists,
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
        let (city_lists, max_city_lists) = (Arc::clone(&self.city_lists), self.max_city_lists);
        let list = answer_list(
            &self.gate,
            request,
            interface::INSURANCE_GAP,
            |r| &r.purpose,
            |r| insurance::validate(r, &city),
            |division| {
                // A whole city's list holds some 125 MB while it is found,
                // a county's about a tenth. Places are taken once the call
                // is authorised, so a caller that may not ask cannot crowd
                // out one that may.
                let place = match insurance::places_of(&division) {
                    0 => None,
                    places => match city_lists.try_acquire_many_owned(places) {
                        Ok(place) => Some(place),
                        Err(_) => {
                            let full = overloaded("whole-city lists", max_city_lists);
                            return futures::stream::once(futures::future::ready(Err(full))).left_stream();
                        }
                    },
                };
                insurance::gap(sources, division, today(), place).right_stream()
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
