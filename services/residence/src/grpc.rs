//! Thin gRPC adapter of `ResidencePermits`: validate at the edge, run the
//! lifecycle on the blocking pool, map errors once.

use chrono::NaiveDate;
use popbase_common::packed::{self, PackedStream};
use popbase_common::validate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Date;
use popbase_proto::residence::residence_permits_server::{ResidencePermits, ResidencePermitsServer};
use popbase_proto::residence::{
    ApplyForPermitRequest, CancelPermitRequest, CheckResidentsRequest, CheckResidentsResponse, EndorsePermitRequest, ExpirePermitsRequest,
    ExpirePermitsResponse, GetPermitRequest, GetRegistrationsRequest, GetRegistrationsResponse, GetResidentRequest, ListResidentsRequest,
    ListResidentsResponse, PermitDecision, RegisterResidenceRequest, ResidenceBasis, ResidencePermit, ResidenceRegistration, Resident,
    StreamPermitHolderIdsRequest,
};
use tonic::{Request, Response, Status};

use crate::Permits;
use crate::expiry::read_on;

/// The actor recorded in the change log for calls without the gateway's
/// `popbase-actor` (loads and checks from inside the platform); the
/// gateway names the department and officer of each write it forwards.
const ACTOR: &str = "residence-api";

pub struct PermitsService {
    permits: Permits,
}

impl PermitsService {
    pub fn new(permits: Permits) -> Self {
        Self { permits }
    }

    pub fn into_server(self) -> ResidencePermitsServer<Self> {
        ResidencePermitsServer::new(self)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Permits) -> ServiceResult<T> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let permits = self.permits.clone();
        let answer = tokio::task::spawn_blocking(move || work(&permits))
            .await
            .map_err(|e| ServiceError::Internal(format!("residence task failed: {e}")))??;
        Ok(Response::new(answer))
    }
}

fn today() -> NaiveDate {
    popbase_domain::clock::today()
}

/// An optional date defaulting to today, never in the future.
fn on(field: &str, value: Option<&Date>) -> ServiceResult<NaiveDate> {
    match value.filter(|d| !d.is_unset()) {
        None => Ok(today()),
        Some(_) => validate::date(field, value, Some(today())),
    }
}

fn permit_number(field: &str, value: &str) -> ServiceResult<String> {
    if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServiceError::invalid(field, "must be 16 digits (city, year, serial)"));
    }
    Ok(value.to_string())
}

fn registration(value: Option<&ResidenceRegistration>) -> ServiceResult<ResidenceRegistration> {
    let r = value.ok_or_else(|| ServiceError::invalid("registration", "is required"))?;
    let id = validate::id_number("registration.id_number", &r.id_number, today())?;
    validate::text("registration.name", r.name.trim(), 1, 40)?;
    validate::address("registration.address", r.address.as_ref())?;
    let basis = validate::enumeration::<ResidenceBasis>("registration.basis", r.basis)?;
    if !r.hukou_county_code.is_empty() {
        validate::division(
            "registration.hukou_county_code",
            &r.hukou_county_code,
            popbase_domain::DivisionLevel::County,
        )?;
    }
    if basis == ResidenceBasis::Accompanying {
        validate::id_number("registration.accompanies_id_number", &r.accompanies_id_number, today())?;
    }
    let registered_on = match r.registered_on.as_ref().filter(|d| !d.is_unset()) {
        None => None,
        Some(_) => Some(validate::date(
            "registration.registered_on",
            r.registered_on.as_ref(),
            Some(today()),
        )?),
    };
    Ok(ResidenceRegistration {
        id_number: id.as_str().to_string(),
        name: r.name.trim().to_string(),
        sex: validate::sex_of(&id) as i32,
        birth_date: Some(id.birth_date().into()),
        registered_on: registered_on.map(Into::into),
        ..r.clone()
    })
}

#[tonic::async_trait]
impl ResidencePermits for PermitsService {
    async fn register_residence(&self, request: Request<RegisterResidenceRequest>) -> Result<Response<ResidenceRegistration>, Status> {
        let actor = popbase_common::actor::of(request.metadata(), ACTOR)?;
        let registration = registration(request.get_ref().registration.as_ref())?;
        let on = registration.registered_on.and_then(|d| d.to_naive()).unwrap_or_else(today);
        self.run(move |p| p.register(&actor, registration, on)).await
    }

    async fn apply_for_permit(&self, request: Request<ApplyForPermitRequest>) -> Result<Response<PermitDecision>, Status> {
        let actor = popbase_common::actor::of(request.metadata(), ACTOR)?;
        let r = request.into_inner();
        let id = validate::id_number("id_number", &r.id_number, today())?;
        let on = on("on", r.on.as_ref())?;
        let basis = validate::enumeration::<ResidenceBasis>("basis", r.basis)?;
        validate::text("evidence", &r.evidence, 0, 100)?;
        self.run(move |p| p.apply(&actor, id.as_str(), on, basis, &r.evidence)).await
    }

    async fn endorse_permit(&self, request: Request<EndorsePermitRequest>) -> Result<Response<ResidencePermit>, Status> {
        let actor = popbase_common::actor::of(request.metadata(), ACTOR)?;
        let r = request.into_inner();
        let number = permit_number("permit_number", &r.permit_number)?;
        let on = on("on", r.on.as_ref())?;
        self.run(move |p| p.endorse(&actor, &number, on)).await
    }

    async fn cancel_permit(&self, request: Request<CancelPermitRequest>) -> Result<Response<ResidencePermit>, Status> {
        let actor = popbase_common::actor::of(request.metadata(), ACTOR)?;
        let r = request.into_inner();
        let number = permit_number("permit_number", &r.permit_number)?;
        let on = on("on", r.on.as_ref())?;
        validate::text("reason", &r.reason, 1, 100)?;
        self.run(move |p| p.cancel(&actor, &number, on)).await
    }

    async fn expire_permits(&self, request: Request<ExpirePermitsRequest>) -> Result<Response<ExpirePermitsResponse>, Status> {
        let on = on("on", request.get_ref().on.as_ref())?;
        self.run(move |p| {
            Ok(ExpirePermitsResponse {
                expired: p.expire_due(ACTOR, on)?,
            })
        })
        .await
    }

    async fn get_resident(&self, request: Request<GetResidentRequest>) -> Result<Response<Resident>, Status> {
        let id = validate::id_number("id_number", &request.get_ref().id_number, today())?;
        self.run(move |p| {
            let registration = p
                .registration(id.as_str())?
                .ok_or_else(|| ServiceError::not_found(format!("resident {}", id.masked())))?;
            let on = today();
            Ok(Resident {
                registration: Some(registration),
                permits: p.permits_of(id.as_str())?.into_iter().map(|p| read_on(p, on)).collect(),
            })
        })
        .await
    }

    async fn get_permit(&self, request: Request<GetPermitRequest>) -> Result<Response<ResidencePermit>, Status> {
        let number = permit_number("permit_number", &request.get_ref().permit_number)?;
        self.run(move |p| {
            p.permit(&number)?
                .map(|p| read_on(p, today()))
                .ok_or_else(|| ServiceError::not_found(format!("permit {number}")))
        })
        .await
    }

    async fn list_residents(&self, request: Request<ListResidentsRequest>) -> Result<Response<ListResidentsResponse>, Status> {
        let r = request.into_inner();
        let division = validate::division_prefix("division_code", &r.division_code)?.code.clone();
        let (size, after) = validate::page("page", r.page.as_ref())?;
        self.run(move |p| {
            let (registrations, last) = p.registrations_under(&division, after.as_deref(), size)?;
            Ok(ListResidentsResponse {
                registrations,
                next_page_token: last.map(|k| validate::encode_page_token(&k)).unwrap_or_default(),
            })
        })
        .await
    }

    async fn get_registrations(&self, request: Request<GetRegistrationsRequest>) -> Result<Response<GetRegistrationsResponse>, Status> {
        let ids = request.into_inner().id_numbers;
        validate::id_batch("id_numbers", &ids)?;
        self.run(move |p| {
            let registrations = p.registrations(&ids)?.into_iter().map(Option::unwrap_or_default).collect();
            Ok(GetRegistrationsResponse { registrations })
        })
        .await
    }

    type StreamPermitHolderIdsStream = PackedStream;

    async fn stream_permit_holder_ids(&self, request: Request<StreamPermitHolderIdsRequest>) -> Result<Response<PackedStream>, Status> {
        let r = request.into_inner();
        let division = validate::division_prefix("division_code", &r.division_code)?.code.clone();
        let on = validate::optional_date("on", r.on.as_ref())?.unwrap_or_else(today);
        let permits = self.permits.clone();
        Ok(Response::new(packed::stream_from_scan(move |packer| {
            crate::holders::for_each_holder_under(&permits, &division, on, |id| packer.push(id))
        })))
    }

    async fn check_residents(&self, request: Request<CheckResidentsRequest>) -> Result<Response<CheckResidentsResponse>, Status> {
        let ids = request.into_inner().id_numbers;
        validate::id_batch("id_numbers", &ids)?;
        self.run(move |p| {
            let known = p.has_registrations(&ids)?;
            Ok(CheckResidentsResponse { known })
        })
        .await
    }
}
