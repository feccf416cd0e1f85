//! The ledger in another pod: the client a stateless gateway replica uses.

use chrono::NaiveDate;
use popbase_common::upstream::{self, Upstream};
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::{Access, AuditSearchResponse, ChainHead, ChainVerification, Consent, Position, Subscription, Usage};
use popbase_proto::ledger::ledger_client::LedgerClient;
use popbase_proto::ledger::{
    AccessesOfRequest, AcknowledgeSubscriptionRequest, AppendManyRequest, AppendRequest, AuditSearch, ConsentsOfRequest, EndConsentRequest,
    GetStoredCatalogue, HeadRequest, PutConsentRequest, PutStoredCatalogue, RosterPageRequest, RosterUpdate, StoredCatalogue,
    SubscriptionRequest, TakeQuotaRequest, UsageBetweenRequest, UseConsentsRequest, VerifyChainRun,
};
use tonic::{Code, Status};

use super::wire::{MAX_APPEND_ENTRIES, consent_reason, grant_key};
use super::{ConsentUse, Granted, Ledger};
use crate::audit::AuditEntry;
use crate::consent::GrantKey;
use crate::denial::Denial;
use crate::sources::upstream;

#[derive(Clone)]
pub struct RemoteLedger {
    client: LedgerClient<Upstream>,
}

impl RemoteLedger {
    /// A client of the ledger at `address` (connects on first use, through `dialer`).
    pub fn connect_lazy(address: &str, dialer: &upstream::Dialer) -> Result<Self, String> {
        Ok(Self {
            client: LedgerClient::new(upstream::remote("ledger", address, dialer)?),
        })
    }

    fn client(&self) -> LedgerClient<Upstream> {
        self.client.clone()
    }
}

/// What the ledger's status means for the answer path: a missing grant and
/// a lost race keep their meaning; anything else is the ledger failing.
fn ledger_error(status: Status) -> ServiceError {
    match status.code() {
        Code::NotFound => ServiceError::not_found(status.message().trim_end_matches(" not found").to_string()),
        Code::Aborted => ServiceError::Aborted(status.message().to_string()),
        _ => upstream("the ledger", status),
    }
}

#[tonic::async_trait]
impl Ledger for RemoteLedger {
    async fn use_consents(&self, ask: ConsentUse<'_>) -> ServiceResult<Result<(), Denial>> {
        let answer = self
            .client()
            .use_consents(UseConsentsRequest {
                subjects: ask.subjects.to_vec(),
                department: ask.department.to_string(),
                interface: ask.interface.to_string(),
                purpose: ask.purpose.to_string(),
                day: Some(ask.today.into()),
            })
            .await
            .map_err(ledger_error)?
            .into_inner();
        if answer.denied_reason.is_empty() {
            return Ok(Ok(()));
        }
        match consent_reason(&answer.denied_reason) {
            Some(code) => Ok(Err(Denial::new(code, answer.denied_message))),
            None => Err(ServiceError::Internal(format!(
                "the ledger answered an unknown consent reason {:?}",
                answer.denied_reason
            ))),
        }
    }

    async fn put_consent(&self, key: &GrantKey<'_>, consent: Consent) -> ServiceResult<Consent> {
        let request = PutConsentRequest {
            key: Some(grant_key(key)),
            consent: Some(consent),
        };
        Ok(self.client().put_consent(request).await.map_err(ledger_error)?.into_inner())
    }

    async fn end_consent(&self, key: &GrantKey<'_>, at_millis: i64) -> ServiceResult<Consent> {
        let request = EndConsentRequest {
            key: Some(grant_key(key)),
            at_unix_millis: at_millis,
        };
        Ok(self.client().end_consent(request).await.map_err(ledger_error)?.into_inner())
    }

    async fn consents_of(&self, subject: &str, today: NaiveDate) -> ServiceResult<Vec<Consent>> {
        let request = ConsentsOfRequest {
            subject: subject.to_string(),
            day: Some(today.into()),
        };
        Ok(self
            .client()
            .consents_of(request)
            .await
            .map_err(ledger_error)?
            .into_inner()
            .consents)
    }

    async fn append(&self, entry: AuditEntry) -> ServiceResult<u64> {
        let request = AppendRequest { entry: Some(entry) };
        Ok(self.client().append(request).await.map_err(ledger_error)?.into_inner().seq)
    }

    /// One `AppendMany` per run of at most [`MAX_APPEND_ENTRIES`] records.
    async fn append_many(&self, mut entries: Vec<AuditEntry>) -> ServiceResult<Vec<u64>> {
        let mut seqs = Vec::with_capacity(entries.len());
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(MAX_APPEND_ENTRIES));
            let count = entries.len() as u64;
            let request = AppendManyRequest { entries };
            let first = self
                .client()
                .append_many(request)
                .await
                .map_err(ledger_error)?
                .into_inner()
                .first_seq;
            let end = first
                .checked_add(count)
                .ok_or_else(|| ServiceError::Unavailable("the ledger answered an impossible sequence number".into()))?;
            seqs.extend(first..end);
            entries = rest;
        }
        Ok(seqs)
    }

    async fn head(&self) -> ServiceResult<ChainHead> {
        Ok(self.client().head(HeadRequest {}).await.map_err(ledger_error)?.into_inner())
    }

    async fn accesses_of(&self, subject: &str, limit: usize) -> ServiceResult<Vec<Access>> {
        let request = AccessesOfRequest {
            subject: subject.to_string(),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        Ok(self
            .client()
            .accesses_of(request)
            .await
            .map_err(ledger_error)?
            .into_inner()
            .accesses)
    }

    async fn catalogue(&self) -> ServiceResult<Option<StoredCatalogue>> {
        match self.client().get_catalogue(GetStoredCatalogue {}).await {
            Ok(stored) => Ok(Some(stored.into_inner())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(ledger_error(status)),
        }
    }

    async fn put_catalogue(&self, expected_version: u64, toml: String, applied_by: String) -> ServiceResult<StoredCatalogue> {
        let request = PutStoredCatalogue {
            expected_version,
            toml,
            applied_by,
        };
        Ok(self.client().put_catalogue(request).await.map_err(ledger_error)?.into_inner())
    }

    async fn verify_chain(&self, run: bool) -> ServiceResult<ChainVerification> {
        Ok(self
            .client()
            .verify_chain(VerifyChainRun { run })
            .await
            .map_err(ledger_error)?
            .into_inner())
    }

    async fn search_audit(&self, search: AuditSearch) -> ServiceResult<AuditSearchResponse> {
        Ok(self.client().search_audit(search).await.map_err(ledger_error)?.into_inner())
    }

    async fn usage_between(&self, from: u32, to: u32, department: &str) -> ServiceResult<Vec<Usage>> {
        let request = UsageBetweenRequest {
            from_yyyymmdd: from,
            to_yyyymmdd: to,
            department: department.to_string(),
        };
        Ok(self.client().usage_between(request).await.map_err(ledger_error)?.into_inner().usage)
    }

    async fn take_quota(&self, department: &str, day: u32, units: u64, daily_quota: u64, replica: &str) -> ServiceResult<Granted> {
        let request = TakeQuotaRequest {
            department: department.to_string(),
            day,
            units,
            daily_quota,
            replica: replica.to_string(),
        };
        let answer = self.client().take_quota(request).await.map_err(ledger_error)?.into_inner();
        Ok(Granted {
            granted: answer.granted.min(units),
            used: answer.used,
            replicas: answer.replicas.max(1),
        })
    }

    async fn create_subscription(&self, subscription: Subscription) -> ServiceResult<Subscription> {
        Ok(self
            .client()
            .create_subscription(subscription)
            .await
            .map_err(ledger_error)?
            .into_inner())
    }

    async fn subscription(&self, id: &str) -> ServiceResult<Option<Subscription>> {
        let request = SubscriptionRequest {
            subscription_id: id.to_string(),
        };
        match self.client().get_subscription(request).await {
            Ok(answer) => Ok(Some(answer.into_inner())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(ledger_error(status)),
        }
    }

    async fn update_roster(&self, id: &str, add: Vec<String>, remove: Vec<String>) -> ServiceResult<Subscription> {
        let request = RosterUpdate {
            subscription_id: id.to_string(),
            add,
            remove,
        };
        Ok(self.client().update_roster(request).await.map_err(ledger_error)?.into_inner())
    }

    async fn roster_page(&self, id: &str, after: &str, limit: usize) -> ServiceResult<Vec<String>> {
        let request = RosterPageRequest {
            subscription_id: id.to_string(),
            after: after.to_string(),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        Ok(self
            .client()
            .roster_page(request)
            .await
            .map_err(ledger_error)?
            .into_inner()
            .subjects)
    }

    async fn acknowledge(&self, id: &str, position: Position, at_millis: i64) -> ServiceResult<Subscription> {
        let request = AcknowledgeSubscriptionRequest {
            subscription_id: id.to_string(),
            position: Some(position),
            at_unix_millis: at_millis,
        };
        Ok(self.client().acknowledge(request).await.map_err(ledger_error)?.into_inner())
    }
}
