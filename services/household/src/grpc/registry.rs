//! `HouseholdRegistry`: look-ups by ID number, household and division.

use popbase_common::ServiceError;
use popbase_common::packed::{self, PackedStream};
use popbase_common::validate;
use popbase_domain::DivisionLevel;
use popbase_proto::household::household_registry_server::{HouseholdRegistry, HouseholdRegistryServer};
use popbase_proto::household::{
    AddressMatch, CheckPersonsRequest, CheckPersonsResponse, GetHouseholdRequest, GetHouseholdResponse, GetPersonRequest,
    GetPersonsRequest, GetPersonsResponse, ListPersonsRequest, ListPersonsResponse, LocateAddressRequest, LocateAddressResponse, Person,
    PersonView, StreamPersonIdsRequest,
};
use tonic::{Request, Response, Status};

use super::input::household_id;
use crate::Registry;
use crate::gazetteer::Located;

/// Longest written address located.
const MAX_ADDRESS_CHARS: usize = 200;

pub struct RegistryService {
    registry: Registry,
}

impl RegistryService {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    pub fn into_server(self) -> HouseholdRegistryServer<Self> {
        HouseholdRegistryServer::new(self)
    }
}

/// Registry calls are short RocksDB reads; running them on the async worker
/// is cheaper than a hop to the blocking pool.
#[tonic::async_trait]
impl HouseholdRegistry for RegistryService {
    async fn get_person(&self, request: Request<GetPersonRequest>) -> Result<Response<Person>, Status> {
        let id = validate::id_number("id_number", &request.get_ref().id_number, popbase_domain::clock::today())?;
        let person = self
            .registry
            .person(id.as_str())
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("person {}", id.masked())))?;
        Ok(Response::new(person))
    }

    async fn get_household(&self, request: Request<GetHouseholdRequest>) -> Result<Response<GetHouseholdResponse>, Status> {
        let household_id_value = &request.get_ref().household_id;
        household_id("household_id", household_id_value)?;
        let household = self
            .registry
            .household(household_id_value)
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("household {household_id_value}")))?;
        let members = self.registry.members(household_id_value).map_err(ServiceError::from)?;
        Ok(Response::new(GetHouseholdResponse {
            household: Some(household),
            members,
        }))
    }

    async fn list_persons(&self, request: Request<ListPersonsRequest>) -> Result<Response<ListPersonsResponse>, Status> {
        let request = request.into_inner();
        let division = validate::division_prefix("division_code", &request.division_code)?;
        let (size, after) = validate::page("page", request.page.as_ref())?;
        let (persons, last) = self
            .registry
            .persons_under(&division.code, after.as_deref(), size)
            .map_err(ServiceError::from)?;
        tracing::debug!(division = %division.code, returned = persons.len(), "listed persons");
        Ok(Response::new(ListPersonsResponse {
            persons,
            next_page_token: last.map(|k| validate::encode_page_token(&k)).unwrap_or_default(),
        }))
    }

    type StreamPersonIdsStream = PackedStream;

    async fn stream_person_ids(&self, request: Request<StreamPersonIdsRequest>) -> Result<Response<PackedStream>, Status> {
        let division = validate::division_prefix("division_code", &request.get_ref().division_code)?
            .code
            .clone();
        let registry = self.registry.clone();
        Ok(Response::new(packed::stream_from_scan(move |packer| {
            registry.for_each_person_id_under(&division, |id| packer.push(id))
        })))
    }

    async fn check_persons(&self, request: Request<CheckPersonsRequest>) -> Result<Response<CheckPersonsResponse>, Status> {
        let ids = &request.get_ref().id_numbers;
        validate::id_batch("id_numbers", ids)?;
        let known = self.registry.contains_persons(ids).map_err(ServiceError::from)?;
        Ok(Response::new(CheckPersonsResponse { known }))
    }

    async fn get_persons(&self, request: Request<GetPersonsRequest>) -> Result<Response<GetPersonsResponse>, Status> {
        let request = request.get_ref();
        let ids = &request.id_numbers;
        validate::id_batch("id_numbers", ids)?;
        let view =
            PersonView::try_from(request.view).map_err(|_| ServiceError::invalid("view", format!("unknown value {}", request.view)))?;
        let as_of = match request.as_of.as_ref().filter(|d| !d.is_unset()) {
            None => None,
            Some(_) => Some(validate::date(
                "as_of",
                request.as_of.as_ref(),
                Some(popbase_domain::clock::today()),
            )?),
        };
        let persons = match (as_of, view) {
            // A past day reads the whole record from the change log's images.
            (Some(day), _) => self.registry.persons_as_of(ids, day),
            (None, PersonView::Unspecified | PersonView::Full) => self.registry.persons(ids),
            (None, PersonView::Standing) => self.registry.person_standings(ids),
        }
        .map_err(ServiceError::from)?;
        Ok(Response::new(GetPersonsResponse {
            persons: persons.into_iter().map(Option::unwrap_or_default).collect(),
        }))
    }

    async fn locate_address(&self, request: Request<LocateAddressRequest>) -> Result<Response<LocateAddressResponse>, Status> {
        let r = request.into_inner();
        let text = validate::text("text", &r.text, 2, MAX_ADDRESS_CHARS)?.to_string();
        let city = validate::division("city_code", &r.city_code, DivisionLevel::City)?.code.clone();
        let registry = self.registry.clone();
        let (_, located) = super::blocking(move || Ok(registry.locate_address(&text, &city)?)).await?;
        let (outcome, committee_codes, reason) = match located {
            Located::Resolved(code) => (AddressMatch::Resolved, vec![code], String::new()),
            Located::Ambiguous(codes) => (AddressMatch::Ambiguous, codes, String::new()),
            Located::NotFound(why) => (AddressMatch::NotFound, Vec::new(), why.to_string()),
        };
        Ok(Response::new(LocateAddressResponse {
            outcome: outcome as i32,
            committee_codes,
            reason,
        }))
    }
}
