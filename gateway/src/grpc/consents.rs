//! Consents: grants, revocations, a citizen's grants and accesses. Called
//! by the service platform the citizen signs in to, through the same gate.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::calendar::age_on;
use popbase_domain::mask::mask_id_number;
use popbase_proto::gateway::consents_server::{Consents, ConsentsServer};
use popbase_proto::gateway::{
    Consent, ConsentState, GrantConsentRequest, ListAccessesRequest, ListAccessesResponse, ListConsentsRequest, ListConsentsResponse,
    RevokeConsentRequest,
};
use popbase_proto::household::{GetPersonsRequest, PersonView, RegistrationStatus};
use tonic::{Request, Response, Status};

use super::{Fetched, MAX_CODE_CHARS, answer, respond, today, whole_answer};
use crate::catalogue::{Catalogue, ShareClass, interface};
use crate::consent::{GrantKey, state_on};
use crate::denial::{Denial, reason};
use crate::gate::Gate;
use crate::sources::{Sources, upstream};

/// Age of majority: a guardian may consent for a younger subject.
const ADULT_AGE: u32 = 18;
/// Most accesses listed at once.
const MAX_ACCESSES: u32 = 1000;

whole_answer!(Consent, "consent");
whole_answer!(ListConsentsResponse, "consent");
whole_answer!(ListAccessesResponse, "access");

#[derive(Clone)]
pub struct ConsentService {
    gate: Arc<Gate>,
    sources: Sources,
}

impl ConsentService {
    pub fn new(gate: Arc<Gate>, sources: Sources) -> Self {
        Self { gate, sources }
    }

    pub fn server(&self) -> ConsentsServer<Self> {
        ConsentsServer::new(self.clone())
    }
}

/// The (department, interface, purpose) a grant or revocation names.
fn target<'a>(catalogue: &Catalogue, department: &'a str, interface: &'a str, purpose: &'a str) -> ServiceResult<()> {
    if catalogue.department(department).is_none() {
        return Err(ServiceError::invalid("department", "is not a catalogued department"));
    }
    match catalogue.interface(interface) {
        None => return Err(ServiceError::invalid("interface", "is not a catalogued interface")),
        Some(i) if i.share_class == ShareClass::NotShared => return Err(ServiceError::invalid("interface", "is not shared")),
        Some(_) => {}
    }
    let approved = catalogue
        .approval(department, interface)
        .is_some_and(|a| a.purposes.iter().any(|p| p == purpose));
    if !approved {
        return Err(ServiceError::invalid(
            "grant_purpose",
            "is not a purpose the catalogue approves for this department and interface",
        ));
    }
    Ok(())
}

/// The `subject_id_number` of a request, checked.
fn subject_id(value: &str) -> ServiceResult<String> {
    Ok(validate::id_number("subject_id_number", value, today())?.as_str().to_string())
}

/// A subject's ID number and, when someone acts for them, the guardian's.
type ActingFor = (String, Option<String>);

/// The subject and, when someone else acts for them, the guardian
/// (`guardian_id_number`, checked); both are the call's audit subjects.
fn subject_and_guardian(subject: &str, guardian: &str) -> ServiceResult<(ActingFor, Vec<String>)> {
    let subject = subject_id(subject)?;
    let guardian = match guardian {
        "" => None,
        id => Some(validate::id_number("guardian_id_number", id, today())?.as_str().to_string()).filter(|g| *g != subject),
    };
    let subjects = std::iter::once(subject.clone()).chain(guardian.clone()).collect();
    Ok(((subject, guardian), subjects))
}

struct Grant {
    subject: String,
    /// The subject's birth date, from the validated ID number.
    birth: NaiveDate,
    grantor: Option<String>,
    request: GrantConsentRequest,
    from: NaiveDate,
    until: NaiveDate,
}

fn validate_grant(catalogue: &Catalogue, r: &GrantConsentRequest) -> ServiceResult<Grant> {
    let today = today();
    let subject_id = validate::id_number("subject_id_number", &r.subject_id_number, today)?;
    let birth = subject_id.birth_date();
    let subject = subject_id.as_str().to_string();
    let grantor = match r.grantor_id_number.as_str() {
        "" => None,
        id => Some(validate::id_number("grantor_id_number", id, today)?.as_str().to_string()).filter(|g| *g != subject),
    };
    target(catalogue, &r.department, &r.interface, &r.grant_purpose)?;
    let from = validate::date("valid_from", r.valid_from.as_ref(), None)?;
    let until = validate::date("valid_until", r.valid_until.as_ref(), None)?;
    if until < from {
        return Err(ServiceError::invalid("valid_until", "is before valid_from"));
    }
    if until < today {
        return Err(ServiceError::invalid("valid_until", "has already passed"));
    }
    Ok(Grant {
        subject,
        birth,
        grantor,
        request: r.clone(),
        from,
        until,
    })
}

/// A subject grants in person only from `self_consent_age` on (PIPL art.
/// 31); a younger subject's grant must name a parent or guardian. The age
/// comes from the ID number's birth date, so no registry read is needed.
fn check_own_consent(grant: &Grant, self_consent_age: u32) -> ServiceResult<()> {
    if age_on(grant.birth, today()) < self_consent_age {
        return Err(Denial::new(
            reason::NOT_GUARDIAN,
            format!(
                "the subject is under {self_consent_age}: a parent or guardian the registry shows must grant the consent (grantor_id_number)"
            ),
        )
        .into());
    }
    Ok(())
}

impl ConsentService {
    /// A guardian may consent only for a minor whose registry record names
    /// them as father, mother or statutory guardian.
    async fn check_guardian(&self, subject: &str, grantor: &str) -> ServiceResult<()> {
        let person = self
            .sources
            .registry
            .get_persons(GetPersonsRequest {
                id_numbers: vec![subject.to_string()],
                view: PersonView::Standing as i32,
                as_of: None,
            })
            .await
            .map_err(|s| upstream("the household registry", s))?
            .into_inner()
            .persons
            .pop()
            .filter(|p| p.status == RegistrationStatus::Active as i32);
        let Some(person) = person else {
            return Err(Denial::new(
                reason::NOT_GUARDIAN,
                "the registry does not hold the subject, so guardianship cannot be shown",
            )
            .into());
        };
        let birth = person.birth_date.and_then(|d| d.to_naive());
        if birth.is_none_or(|b| age_on(b, today()) >= ADULT_AGE) {
            return Err(Denial::new(reason::NOT_GUARDIAN, "the subject is an adult and must consent in person").into());
        }
        if ![&person.father_id_number, &person.mother_id_number, &person.guardian_id_number]
            .iter()
            .any(|id| id.as_str() == grantor)
        {
            return Err(Denial::new(
                reason::NOT_GUARDIAN,
                "the registry does not show the grantor as the subject's parent or guardian",
            )
            .into());
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Consents for ConsentService {
    async fn grant(&self, request: Request<GrantConsentRequest>) -> Result<Response<Consent>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::CONSENT_REGISTRY,
                |r| &r.purpose,
                |r| {
                    let grant = validate_grant(&self.gate.catalogue(), r)?;
                    let subjects = std::iter::once(grant.subject.clone()).chain(grant.grantor.clone()).collect();
                    Ok((grant, subjects))
                },
                |grant| async move {
                    match &grant.grantor {
                        Some(grantor) => self.check_guardian(&grant.subject, grantor).await?,
                        None => check_own_consent(&grant, self.gate.catalogue().self_consent_age)?,
                    }
                    let r = &grant.request;
                    let subject = gate.pseudonym(&grant.subject);
                    let key = GrantKey {
                        subject: &subject,
                        department: &r.department,
                        interface: &r.interface,
                        purpose: &r.grant_purpose,
                    };
                    let mut consent = Consent {
                        masked_subject_id_number: mask_id_number(&grant.subject),
                        granted_by_guardian: grant.grantor.is_some(),
                        department: r.department.clone(),
                        interface: r.interface.clone(),
                        grant_purpose: r.grant_purpose.clone(),
                        valid_from: Some(grant.from.into()),
                        valid_until: Some(grant.until.into()),
                        use_limit: r.use_limit,
                        uses: 0,
                        state: 0,
                        granted_at_unix_millis: Utc::now().timestamp_millis(),
                        revoked_at_unix_millis: 0,
                    };
                    consent = gate.ledger.put_consent(&key, consent).await?;
                    consent.state = state_on(&consent, today()) as i32;
                    Ok(Fetched::one(consent))
                },
            )
            .await,
        )
    }

    async fn revoke(&self, request: Request<RevokeConsentRequest>) -> Result<Response<Consent>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::CONSENT_REGISTRY,
                |r| &r.purpose,
                |r| {
                    let ((subject, guardian), subjects) = subject_and_guardian(&r.subject_id_number, &r.guardian_id_number)?;
                    if self.gate.catalogue().department(&r.department).is_none() {
                        return Err(ServiceError::invalid("department", "is not a catalogued department"));
                    }
                    // Not checked against the catalogue: a grant outlives a withdrawn approval and must stay revocable.
                    validate::text("interface", &r.interface, 1, MAX_CODE_CHARS)?;
                    validate::text("grant_purpose", &r.grant_purpose, 1, MAX_CODE_CHARS)?;
                    Ok(((subject, guardian, r.clone()), subjects))
                },
                |(subject, guardian, r)| async move {
                    if let Some(guardian) = &guardian {
                        self.check_guardian(&subject, guardian).await?;
                    }
                    let pseudonym = gate.pseudonym(&subject);
                    let key = GrantKey {
                        subject: &pseudonym,
                        department: &r.department,
                        interface: &r.interface,
                        purpose: &r.grant_purpose,
                    };
                    let mut consent = gate.ledger.end_consent(&key, Utc::now().timestamp_millis()).await?;
                    consent.state = ConsentState::Revoked as i32;
                    Ok(Fetched::one(consent))
                },
            )
            .await,
        )
    }

    async fn list_consents(&self, request: Request<ListConsentsRequest>) -> Result<Response<ListConsentsResponse>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::CONSENT_REGISTRY,
                |r| &r.purpose,
                |r| subject_and_guardian(&r.subject_id_number, &r.guardian_id_number),
                |(subject, guardian)| async move {
                    if let Some(guardian) = &guardian {
                        self.check_guardian(&subject, guardian).await?;
                    }
                    let consents = gate.ledger.consents_of(&gate.pseudonym(&subject), today()).await?;
                    let count = consents.len() as u64;
                    Ok(Fetched::counted(ListConsentsResponse { consents }, count))
                },
            )
            .await,
        )
    }

    async fn list_accesses(&self, request: Request<ListAccessesRequest>) -> Result<Response<ListAccessesResponse>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::ACCESS_LOG,
                |r| &r.purpose,
                |r| {
                    let ((subject, guardian), subjects) = subject_and_guardian(&r.subject_id_number, &r.guardian_id_number)?;
                    if r.limit > MAX_ACCESSES {
                        return Err(ServiceError::invalid("limit", format!("at most {MAX_ACCESSES}")));
                    }
                    let limit = if r.limit == 0 { 100 } else { r.limit as usize };
                    Ok(((subject, guardian, limit), subjects))
                },
                |(subject, guardian, limit)| async move {
                    if let Some(guardian) = &guardian {
                        self.check_guardian(&subject, guardian).await?;
                    }
                    let accesses = gate.accesses_of(&subject, limit).await?;
                    let count = accesses.len() as u64;
                    Ok(Fetched::counted(ListAccessesResponse { accesses }, count))
                },
            )
            .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn born(birth: NaiveDate) -> Grant {
        Grant {
            subject: String::new(),
            birth,
            grantor: None,
            request: GrantConsentRequest::default(),
            from: birth,
            until: birth,
        }
    }

    #[test]
    fn a_subject_consents_in_person_from_the_fourteenth_birthday() {
        let today = today();
        let fourteenth = today
            .with_year(today.year() - 14)
            .unwrap_or(today - chrono::Duration::days(14 * 365));
        assert!(check_own_consent(&born(fourteenth), 14).is_ok(), "14 today");
        let refused = check_own_consent(&born(fourteenth + chrono::Duration::days(1)), 14).expect_err("14 tomorrow");
        assert!(refused.to_string().contains("under 14"), "{refused}");
        assert!(
            check_own_consent(&born(fourteenth + chrono::Duration::days(1)), 13).is_ok(),
            "the catalogue's age"
        );
    }
}
