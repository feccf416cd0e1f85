//! The `ledger` role's gRPC face: the gateway's consents and audit trail
//! for gateway replicas in other pods. Internal (NetworkPolicy: gateway
//! pods only); it still checks every request's shape, since a malformed
//! one must not reach the store or the chain.

use popbase_common::{ServiceError, ServiceResult, validate};
use popbase_domain::pseudonym::PSEUDONYM_HEX_LEN;
use popbase_proto::gateway::{AuditSearchResponse, ChainHead, ChainVerification, Consent, Subscription};
use popbase_proto::ledger::ledger_server::{Ledger as LedgerRpc, LedgerServer};
use popbase_proto::ledger::{
    AccessesOfRequest, AccessesOfResponse, AcknowledgeSubscriptionRequest, AppendManyRequest, AppendManyResponse, AppendRequest,
    AppendResponse, AuditEntry, AuditSearch, ConsentsOfRequest, ConsentsOfResponse, EndConsentRequest, GetStoredCatalogue,
    GrantKey as WireKey, HeadRequest, PutConsentRequest, PutStoredCatalogue, RosterPageRequest, RosterPageResponse, RosterUpdate,
    StoredCatalogue, SubscriptionRequest, TakeQuotaRequest, TakeQuotaResponse, UsageBetweenRequest, UsageBetweenResponse,
    UseConsentsRequest, UseConsentsResponse, VerifyChainRun,
};
use tonic::{Request, Response, Status};

use super::MAX_CODE_CHARS;
use crate::audit::{manifest, query::MAX_SEARCH_PAGE};
use crate::ledger::wire::{MAX_APPEND_ENTRIES, borrow_key};
use crate::ledger::{ConsentUse, Ledger, LocalLedger};
use crate::subscriptions::{MAX_ROSTER_CHANGES, book::MAX_ROSTER_PAGE, check_subscription_id};

/// Most subjects one consent check covers (an intake chunk's children and parents).
const MAX_SUBJECTS: usize = 4096;
/// Most accesses listed at once.
const MAX_ACCESSES: u32 = 1000;

#[derive(Clone)]
pub struct LedgerService {
    ledger: LocalLedger,
}

impl LedgerService {
    pub fn new(ledger: LocalLedger) -> Self {
        Self { ledger }
    }

    pub fn server(&self) -> LedgerServer<Self> {
        LedgerServer::new(self.clone())
    }
}

fn subject(field: &str, value: &str) -> ServiceResult<()> {
    if value.len() != PSEUDONYM_HEX_LEN || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ServiceError::invalid(
            field,
            format!("must be a subject pseudonym ({PSEUDONYM_HEX_LEN} hex digits), never an ID number"),
        ));
    }
    Ok(())
}

/// An audit entry as the ledger takes it from a gateway: subjects are
/// pseudonyms, and an export batch's compact ids whole 8-byte values (the
/// message size bounds how many).
fn check_entry(field: &str, entry: &AuditEntry) -> ServiceResult<()> {
    if !entry.subjects.is_empty() {
        let subjects = format!("{field}.subjects");
        for s in &entry.subjects {
            subject(&subjects, s)?;
        }
    }
    if !entry.subject_ids.len().is_multiple_of(manifest::SUBJECT_BYTES) {
        return Err(ServiceError::invalid(
            format!("{field}.subject_ids"),
            format!("must be whole {}-byte subject ids", manifest::SUBJECT_BYTES),
        ));
    }
    Ok(())
}

/// A day written as the number yyyymmdd.
fn day_number(field: &str, day: u32) -> ServiceResult<()> {
    let (year, month, date) = (day / 10_000, day / 100 % 100, day % 100);
    match chrono::NaiveDate::from_ymd_opt(year as i32, month, date) {
        Some(_) => Ok(()),
        None => Err(ServiceError::invalid(field, "must be a date written yyyymmdd")),
    }
}

fn codes(fields: [(&str, &str); 3]) -> ServiceResult<()> {
    for (field, value) in fields {
        validate::text(field, value, 1, MAX_CODE_CHARS)?;
    }
    Ok(())
}

fn key(key: Option<&WireKey>) -> ServiceResult<&WireKey> {
    let key = key.ok_or_else(|| ServiceError::invalid("key", "is required"))?;
    subject("key.subject", &key.subject)?;
    codes([
        ("key.department", &key.department),
        ("key.interface", &key.interface),
        ("key.purpose", &key.purpose),
    ])?;
    Ok(key)
}

#[tonic::async_trait]
impl LedgerRpc for LedgerService {
    async fn use_consents(&self, request: Request<UseConsentsRequest>) -> Result<Response<UseConsentsResponse>, Status> {
        let r = request.into_inner();
        if r.subjects.len() > MAX_SUBJECTS {
            return Err(ServiceError::invalid("subjects", format!("at most {MAX_SUBJECTS}")).into());
        }
        for s in &r.subjects {
            subject("subjects", s)?;
        }
        codes([("department", &r.department), ("interface", &r.interface), ("purpose", &r.purpose)])?;
        let today = validate::date("day", r.day.as_ref(), None)?;
        let ask = ConsentUse {
            subjects: &r.subjects,
            department: &r.department,
            interface: &r.interface,
            purpose: &r.purpose,
            today,
        };
        let answer = match self.ledger.use_consents(ask).await? {
            Ok(()) => UseConsentsResponse::default(),
            Err(denial) => UseConsentsResponse {
                denied_reason: denial.code.to_string(),
                denied_message: denial.reason,
            },
        };
        Ok(Response::new(answer))
    }

    async fn put_consent(&self, request: Request<PutConsentRequest>) -> Result<Response<Consent>, Status> {
        let r = request.into_inner();
        let key = key(r.key.as_ref())?;
        let consent = r.consent.ok_or_else(|| ServiceError::invalid("consent", "is required"))?;
        Ok(Response::new(self.ledger.put_consent(&borrow_key(key), consent).await?))
    }

    async fn end_consent(&self, request: Request<EndConsentRequest>) -> Result<Response<Consent>, Status> {
        let r = request.into_inner();
        let key = key(r.key.as_ref())?;
        if r.at_unix_millis <= 0 {
            return Err(ServiceError::invalid("at_unix_millis", "must be a time after 1970").into());
        }
        Ok(Response::new(self.ledger.end_consent(&borrow_key(key), r.at_unix_millis).await?))
    }

    async fn consents_of(&self, request: Request<ConsentsOfRequest>) -> Result<Response<ConsentsOfResponse>, Status> {
        let r = request.into_inner();
        subject("subject", &r.subject)?;
        let today = validate::date("day", r.day.as_ref(), None)?;
        let consents = self.ledger.consents_of(&r.subject, today).await?;
        Ok(Response::new(ConsentsOfResponse { consents }))
    }

    async fn append(&self, request: Request<AppendRequest>) -> Result<Response<AppendResponse>, Status> {
        let entry = request
            .into_inner()
            .entry
            .ok_or_else(|| ServiceError::invalid("entry", "is required"))?;
        check_entry("entry", &entry)?;
        let seq = self.ledger.append(entry).await?;
        Ok(Response::new(AppendResponse { seq }))
    }

    async fn append_many(&self, request: Request<AppendManyRequest>) -> Result<Response<AppendManyResponse>, Status> {
        let entries = request.into_inner().entries;
        if entries.is_empty() || entries.len() > MAX_APPEND_ENTRIES {
            return Err(ServiceError::invalid("entries", format!("name 1 to {MAX_APPEND_ENTRIES} records")).into());
        }
        for (i, entry) in entries.iter().enumerate() {
            check_entry(&format!("entries[{i}]"), entry)?;
        }
        let seqs = self.ledger.audit.append_many(entries).await?;
        Ok(Response::new(AppendManyResponse { first_seq: seqs.start }))
    }

    async fn head(&self, _request: Request<HeadRequest>) -> Result<Response<ChainHead>, Status> {
        Ok(Response::new(self.ledger.head().await?))
    }

    async fn accesses_of(&self, request: Request<AccessesOfRequest>) -> Result<Response<AccessesOfResponse>, Status> {
        let r = request.into_inner();
        subject("subject", &r.subject)?;
        if r.limit == 0 || r.limit > MAX_ACCESSES {
            return Err(ServiceError::invalid("limit", format!("between 1 and {MAX_ACCESSES}")).into());
        }
        let accesses = self.ledger.accesses_of(&r.subject, r.limit as usize).await?;
        Ok(Response::new(AccessesOfResponse { accesses }))
    }

    async fn get_catalogue(&self, _request: Request<GetStoredCatalogue>) -> Result<Response<StoredCatalogue>, Status> {
        match self.ledger.catalogue().await? {
            Some(stored) => Ok(Response::new(stored)),
            None => Err(ServiceError::not_found("applied catalogue").into()),
        }
    }

    async fn put_catalogue(&self, request: Request<PutStoredCatalogue>) -> Result<Response<StoredCatalogue>, Status> {
        let r = request.into_inner();
        // The gateway validated it; the ledger still refuses what no
        // gateway could load, since every replica would then stop following.
        if r.toml.len() > crate::catalogue::MAX_TEXT_BYTES {
            return Err(ServiceError::invalid("toml", format!("at most {} bytes", crate::catalogue::MAX_TEXT_BYTES)).into());
        }
        crate::catalogue::Catalogue::parse(&r.toml, "the catalogue sent")
            .map_err(|e| ServiceError::invalid("toml", e.without_caller_text()))?;
        validate::text("applied_by", &r.applied_by, 1, MAX_CODE_CHARS)?;
        Ok(Response::new(
            self.ledger.put_catalogue(r.expected_version, r.toml, r.applied_by).await?,
        ))
    }

    async fn verify_chain(&self, request: Request<VerifyChainRun>) -> Result<Response<ChainVerification>, Status> {
        Ok(Response::new(self.ledger.verify_chain(request.into_inner().run).await?))
    }

    async fn search_audit(&self, request: Request<AuditSearch>) -> Result<Response<AuditSearchResponse>, Status> {
        let r = request.into_inner();
        if !r.subject.is_empty() {
            subject("subject", &r.subject)?;
        }
        validate::text("department", &r.department, 0, MAX_CODE_CHARS)?;
        validate::text("interface", &r.interface, 0, MAX_CODE_CHARS)?;
        if r.limit == 0 || r.limit > MAX_SEARCH_PAGE {
            return Err(ServiceError::invalid("limit", format!("between 1 and {MAX_SEARCH_PAGE}")).into());
        }
        if r.from_unix_millis < 0 || r.to_unix_millis < 0 || (r.to_unix_millis != 0 && r.to_unix_millis < r.from_unix_millis) {
            return Err(ServiceError::invalid("to_unix_millis", "times are non-negative and the window ends after it starts").into());
        }
        Ok(Response::new(self.ledger.search_audit(r).await?))
    }

    async fn usage_between(&self, request: Request<UsageBetweenRequest>) -> Result<Response<UsageBetweenResponse>, Status> {
        let r = request.into_inner();
        day_number("from_yyyymmdd", r.from_yyyymmdd)?;
        day_number("to_yyyymmdd", r.to_yyyymmdd)?;
        if r.to_yyyymmdd < r.from_yyyymmdd {
            return Err(ServiceError::invalid("to_yyyymmdd", "must not be before from_yyyymmdd").into());
        }
        validate::text("department", &r.department, 0, MAX_CODE_CHARS)?;
        let usage = self.ledger.usage_between(r.from_yyyymmdd, r.to_yyyymmdd, &r.department).await?;
        Ok(Response::new(UsageBetweenResponse { usage }))
    }

    async fn take_quota(&self, request: Request<TakeQuotaRequest>) -> Result<Response<TakeQuotaResponse>, Status> {
        let r = request.into_inner();
        day_number("day", r.day)?;
        validate::text("department", &r.department, 0, MAX_CODE_CHARS)?;
        validate::text("replica", &r.replica, 0, MAX_CODE_CHARS)?;
        let granted = self
            .ledger
            .take_quota(&r.department, r.day, r.units, r.daily_quota, &r.replica)
            .await?;
        Ok(Response::new(TakeQuotaResponse {
            granted: granted.granted,
            used: granted.used,
            replicas: granted.replicas,
        }))
    }

    async fn create_subscription(&self, request: Request<Subscription>) -> Result<Response<Subscription>, Status> {
        let subscription = request.into_inner();
        check_subscription_id(&subscription.subscription_id)?;
        validate::text("department", &subscription.department, 1, MAX_CODE_CHARS)?;
        Ok(Response::new(self.ledger.create_subscription(subscription).await?))
    }

    async fn get_subscription(&self, request: Request<SubscriptionRequest>) -> Result<Response<Subscription>, Status> {
        let id = request.into_inner().subscription_id;
        check_subscription_id(&id)?;
        let found = self.ledger.subscription(&id).await?;
        Ok(Response::new(found.ok_or_else(|| ServiceError::not_found("subscription"))?))
    }

    async fn update_roster(&self, request: Request<RosterUpdate>) -> Result<Response<Subscription>, Status> {
        let r = request.into_inner();
        check_subscription_id(&r.subscription_id)?;
        for (field, subjects) in [("add", &r.add), ("remove", &r.remove)] {
            if subjects.len() > MAX_ROSTER_CHANGES {
                return Err(ServiceError::invalid(field, format!("at most {MAX_ROSTER_CHANGES} per call")).into());
            }
            for (i, s) in subjects.iter().enumerate() {
                subject(&format!("{field}[{i}]"), s)?;
            }
        }
        Ok(Response::new(self.ledger.update_roster(&r.subscription_id, r.add, r.remove).await?))
    }

    async fn roster_page(&self, request: Request<RosterPageRequest>) -> Result<Response<RosterPageResponse>, Status> {
        let r = request.into_inner();
        check_subscription_id(&r.subscription_id)?;
        if !r.after.is_empty() {
            subject("after", &r.after)?;
        }
        if r.limit == 0 || r.limit as usize > MAX_ROSTER_PAGE {
            return Err(ServiceError::invalid("limit", format!("between 1 and {MAX_ROSTER_PAGE}")).into());
        }
        let subjects = self.ledger.roster_page(&r.subscription_id, &r.after, r.limit as usize).await?;
        Ok(Response::new(RosterPageResponse { subjects }))
    }

    async fn acknowledge(&self, request: Request<AcknowledgeSubscriptionRequest>) -> Result<Response<Subscription>, Status> {
        let r = request.into_inner();
        check_subscription_id(&r.subscription_id)?;
        let position = r.position.ok_or_else(|| ServiceError::invalid("position", "is required"))?;
        let stored = self.ledger.acknowledge(&r.subscription_id, position, r.at_unix_millis).await?;
        Ok(Response::new(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_domain::Pseudonymizer;

    #[test]
    fn an_export_batch_names_its_subjects_in_whole_ids() {
        let whole = AuditEntry {
            subject_ids: vec![7; 16],
            ..Default::default()
        };
        assert!(check_entry("entry", &whole).is_ok());
        let torn = AuditEntry {
            subject_ids: vec![7; 13],
            ..Default::default()
        };
        let refused = check_entry("entries[2]", &torn).expect_err("13 bytes");
        assert!(refused.to_string().contains("entries[2].subject_ids"), "{refused}");
    }

    #[test]
    fn subjects_must_be_pseudonyms_never_id_numbers() {
        let pseudonym = Pseudonymizer::new(b"0123456789abcdef".to_vec()).pseudonym("gateway-subject", "370302199001011232");
        assert!(subject("subjects", &pseudonym).is_ok());
        let refused = subject("subjects", "370302199001011232").expect_err("an ID number");
        assert!(refused.to_string().contains("never an ID number"), "{refused}");
        assert!(subject("subjects", &"g".repeat(PSEUDONYM_HEX_LEN)).is_err(), "hex digits only");
    }

    #[test]
    fn a_grant_key_names_its_bad_field() {
        let pseudonym = "0".repeat(PSEUDONYM_HEX_LEN);
        let wire = WireKey {
            subject: pseudonym,
            department: "civil_affairs".into(),
            interface: String::new(),
            purpose: "TEMPORARY_ASSISTANCE".into(),
        };
        let refused = key(Some(&wire)).expect_err("no interface");
        assert!(matches!(refused, ServiceError::InvalidArgument { ref field, .. } if field == "key.interface"));
        assert!(key(None).is_err());
    }
}
