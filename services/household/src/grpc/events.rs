//! `LifeEvents`: validate, run the event on the blocking pool, answer the receipt.

use std::sync::Arc;

use popbase_common::validate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Sex;
use popbase_proto::household::life_events_server::{LifeEvents, LifeEventsServer};
use popbase_proto::household::{
    ChangeAddressRequest, ChangeHeadRequest, CreateCollectiveHouseholdRequest, EventReceipt, HouseholdKind, IssueFamilyBookRequest,
    ListEventsRequest, ListEventsResponse, MoveOutReason, MoveOutRequest, MovePersonRequest, RegisterBirthRequest, RegisterDeathRequest,
    Relationship, SettleMoveInRequest, SettlementsSinceRequest, SettlementsSinceResponse, move_person_request,
};
use tonic::{Request, Response, Status};

use super::{blocking, input};
use crate::events::{Birth, MoveKind, MoveTarget};
use crate::settlement::{PlatformSources, PolicySet};
use crate::{Receipt, Registry};

pub struct LifeEventsService {
    registry: Registry,
    policies: Arc<PolicySet>,
    /// Where a settlement's facts come from (see [`crate::settlement::platform`]).
    platform: Option<PlatformSources>,
}

impl LifeEventsService {
    pub fn new(registry: Registry, policies: Arc<PolicySet>, platform: Option<PlatformSources>) -> Self {
        Self {
            registry,
            policies,
            platform,
        }
    }

    pub fn into_server(self) -> LifeEventsServer<Self> {
        LifeEventsServer::new(self)
    }

    async fn run(&self, work: impl FnOnce(&Registry) -> ServiceResult<Receipt> + Send + 'static) -> Result<Response<EventReceipt>, Status> {
        let registry = self.registry.clone();
        let receipt = blocking(move || work(&registry)).await?;
        // Debug only: the audit and the change log are the record of every
        // event; a line per event at a counter's rate (thousands a second)
        // cost CPU and filled the log. No household number: it names a family.
        tracing::debug!(
            event = receipt.event.kind().as_str_name(),
            sequence = receipt.event.sequence,
            "life event recorded"
        );
        Ok(Response::new(EventReceipt {
            event: Some(receipt.event),
            persons: receipt.persons,
            household: receipt.household,
            evaluation: receipt.evaluation,
        }))
    }
}

fn move_request(request: &MovePersonRequest) -> ServiceResult<(crate::EventContext, popbase_domain::IdNumber, MoveTarget)> {
    let context = input::context(request.context.as_ref())?;
    let id = input::id_number("id_number", &request.id_number)?;
    let target = match &request.target {
        Some(move_person_request::Target::Join(join)) => {
            input::household_id("join.household_id", &join.household_id)?;
            MoveTarget::Join {
                household_id: join.household_id.clone(),
                relationship: validate::enumeration::<Relationship>("join.relationship", join.relationship)?,
            }
        }
        Some(move_person_request::Target::NewHouseholdAddress(address)) => {
            MoveTarget::NewHousehold(input::address("new_household_address", Some(address))?)
        }
        None => return Err(ServiceError::invalid("target", "join or new_household_address is required")),
    };
    Ok((context, id, target))
}

#[tonic::async_trait]
impl LifeEvents for LifeEventsService {
    async fn register_birth(&self, request: Request<RegisterBirthRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        let birth = Birth {
            name: validate::text("name", r.name.trim(), 1, 40)?.to_string(),
            sex: match validate::enumeration::<Sex>("sex", r.sex)? {
                Sex::Female => Sex::Female,
                _ => Sex::Male,
            },
            birth_date: validate::date("birth_date", r.birth_date.as_ref(), Some(context.on))?,
            birthplace_code: validate::division("birthplace_code", &r.birthplace_code, popbase_domain::DivisionLevel::County)?
                .code
                .clone(),
            ethnicity: match r.ethnicity.as_str() {
                "" => String::new(),
                e if e.len() == 2 && e.bytes().all(|b| b.is_ascii_digit()) => e.to_string(),
                _ => return Err(ServiceError::invalid("ethnicity", "must be a two-digit GB 3304 code").into()),
            },
            mother: input::optional_id_number("mother_id_number", &r.mother_id_number)?,
            father: input::optional_id_number("father_id_number", &r.father_id_number)?,
            household_id: {
                input::household_id("household_id", &r.household_id)?;
                r.household_id
            },
        };
        self.run(move |registry| registry.register_birth(&context, &birth)).await
    }

    async fn register_death(&self, request: Request<RegisterDeathRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        let id = input::id_number("id_number", &r.id_number)?;
        self.run(move |registry| registry.register_death(&context, &id)).await
    }

    async fn settle_move_in(&self, request: Request<SettleMoveInRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        let (policy_id, mut application) = input::application(r.application.as_ref())?;
        super::settlement::gather_platform_facts(self.platform.as_ref(), &mut application).await?;
        let arriving = r.person;
        if let Some(person) = &arriving {
            validate::text("person.name", person.name.trim(), 1, 40)?;
        }
        let policies = Arc::clone(&self.policies);
        self.run(move |registry| registry.settle(&context, &policies, &policy_id, &application, &r.rule_id, arriving.as_ref()))
            .await
    }

    async fn move_out(&self, request: Request<MoveOutRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        let id = input::id_number("id_number", &r.id_number)?;
        let reason = validate::enumeration::<MoveOutReason>("reason", r.reason)?;
        if reason == MoveOutReason::OutOfCity {
            validate::division("to_code", &r.to_code, popbase_domain::DivisionLevel::County)?;
        }
        self.run(move |registry| registry.move_out(&context, &id, reason, &r.to_code)).await
    }

    async fn transfer_within_city(&self, request: Request<MovePersonRequest>) -> Result<Response<EventReceipt>, Status> {
        let (context, id, target) = move_request(request.get_ref())?;
        self.run(move |registry| registry.move_person(&context, &id, &target, MoveKind::CityTransfer))
            .await
    }

    async fn move_between_households(&self, request: Request<MovePersonRequest>) -> Result<Response<EventReceipt>, Status> {
        let (context, id, target) = move_request(request.get_ref())?;
        self.run(move |registry| registry.move_person(&context, &id, &target, MoveKind::HouseholdMove))
            .await
    }

    async fn create_collective_household(
        &self,
        request: Request<CreateCollectiveHouseholdRequest>,
    ) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        let kind = validate::enumeration::<HouseholdKind>("kind", r.kind)?;
        let unit_name = validate::text("unit_name", r.unit_name.trim(), 1, 80)?.to_string();
        let address = input::address("address", r.address.as_ref())?;
        self.run(move |registry| registry.create_collective(&context, kind, &unit_name, &address))
            .await
    }

    async fn change_head(&self, request: Request<ChangeHeadRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        input::household_id("household_id", &r.household_id)?;
        let head = input::id_number("new_head_id_number", &r.new_head_id_number)?;
        let mut overrides = Vec::new();
        for (i, m) in r.relationships.iter().enumerate() {
            let id = input::id_number(&format!("relationships[{i}].id_number"), &m.id_number)?;
            let relationship = validate::enumeration::<Relationship>(&format!("relationships[{i}].relationship"), m.relationship)?;
            if matches!(relationship, Relationship::Head | Relationship::CollectiveMember) {
                return Err(ServiceError::invalid(format!("relationships[{i}].relationship"), "must be a relationship to the head").into());
            }
            overrides.push((id.as_str().to_string(), relationship));
        }
        self.run(move |registry| registry.change_head(&context, &r.household_id, head.as_str(), &overrides))
            .await
    }

    async fn change_address(&self, request: Request<ChangeAddressRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        input::household_id("household_id", &r.household_id)?;
        let address = input::address("address", r.address.as_ref())?;
        self.run(move |registry| registry.change_address(&context, &r.household_id, &address))
            .await
    }

    async fn issue_family_book(&self, request: Request<IssueFamilyBookRequest>) -> Result<Response<EventReceipt>, Status> {
        let r = request.into_inner();
        let context = input::context(r.context.as_ref())?;
        input::household_id("household_id", &r.household_id)?;
        let mut members = Vec::new();
        for (i, id) in r.member_id_numbers.iter().enumerate() {
            let id = input::id_number(&format!("member_id_numbers[{i}]"), id)?;
            if members.contains(&id.as_str().to_string()) {
                return Err(ServiceError::invalid(format!("member_id_numbers[{i}]"), "appears twice").into());
            }
            members.push(id.as_str().to_string());
        }
        self.run(move |registry| registry.issue_family_book(&context, &r.household_id, &members))
            .await
    }

    async fn settlements_since(&self, request: Request<SettlementsSinceRequest>) -> Result<Response<SettlementsSinceResponse>, Status> {
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 1000,
            n @ 1..=10_000 => n as usize,
            _ => return Err(ServiceError::invalid("limit", "must be at most 10000").into()),
        };
        let registry = self.registry.clone();
        // The head is read first: a batch committed meanwhile is later than it, never lost.
        let head_sequence = registry.store().last_seq();
        let (settlements, last_sequence, restored) = blocking(move || {
            let restored = registry.store().restore_mark()?;
            let (settlements, last) = registry.settlements_since(r.after_sequence, limit)?;
            Ok((settlements, last, restored))
        })
        .await?;
        Ok(Response::new(SettlementsSinceResponse {
            settlements,
            last_sequence,
            head_sequence,
            log_epoch: restored.map_or(0, |m| m.epoch),
            restored_at_sequence: restored.map_or(0, |m| m.at_seq),
        }))
    }

    async fn list_events(&self, request: Request<ListEventsRequest>) -> Result<Response<ListEventsResponse>, Status> {
        let r = request.into_inner();
        let (from, to) = input::period(r.from.as_ref(), r.to.as_ref())?;
        let (size, after) = validate::page("page", r.page.as_ref())?;
        let registry = self.registry.clone();
        let (events, last) = blocking(move || Ok(registry.events_between(from, to, after.as_deref(), size)?)).await?;
        Ok(Response::new(ListEventsResponse {
            events,
            next_page_token: last.map(|k| validate::encode_page_token(&k)).unwrap_or_default(),
        }))
    }
}
