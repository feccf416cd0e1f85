//! The ledger over a store in this process: the `ledger` role serves it,
//! and an all-in-one gateway calls it directly.

use chrono::NaiveDate;
use popbase_common::ServiceResult;
use popbase_proto::gateway::{Access, AuditSearchResponse, ChainHead, ChainVerification, Consent, Position, Subscription, Usage};
use popbase_proto::ledger::{AuditSearch, StoredCatalogue};
use popbase_storage::Store;

use std::sync::Arc;

use super::catalogue_book::CatalogueBook;
use super::quota_book::{Granted, QuotaBook};
use super::{ConsentUse, Ledger};
use crate::audit::{AuditEntry, AuditLog, check, query};
use crate::consent::{ConsentStore, GrantKey};
use crate::denial::Denial;
use crate::subscriptions::book::SubscriptionBook;

/// Consents and the audit writer over one open ledger store. Clones share
/// the writer (one chain tip per store).
#[derive(Clone)]
pub struct LocalLedger {
    pub consents: ConsentStore,
    pub audit: AuditLog,
    pub quotas: Arc<QuotaBook>,
    pub subscriptions: SubscriptionBook,
    pub catalogues: Arc<CatalogueBook>,
    /// Where the head publisher appends signed heads, and its public key
    /// (set by the `ledger` role once the publisher starts).
    published: Arc<std::sync::OnceLock<(Vec<String>, String)>>,
}

impl LocalLedger {
    /// Opens the ledger over `store` (schema [`crate::tables::SCHEMA`]) and
    /// starts its audit writer, continuing the chain.
    pub fn start(store: Store) -> popbase_storage::StorageResult<Self> {
        Ok(Self {
            consents: ConsentStore::new(store.clone()),
            quotas: Arc::new(QuotaBook::new(store.clone())),
            subscriptions: SubscriptionBook::new(store.clone()),
            catalogues: Arc::new(CatalogueBook::new(store.clone())),
            published: Arc::default(),
            audit: AuditLog::start(store)?,
        })
    }

    pub fn store(&self) -> &Store {
        self.audit.store()
    }

    /// Records where signed heads are published (head file and mirror) and
    /// the key they verify with, for `VerifyChain`'s answer.
    pub fn set_published(&self, sinks: &[std::path::PathBuf], public_key_hex: String) {
        let sinks = sinks.iter().map(|p| p.display().to_string()).collect();
        let _ = self.published.set((sinks, public_key_hex));
    }
}

#[tonic::async_trait]
impl Ledger for LocalLedger {
    async fn use_consents(&self, ask: ConsentUse<'_>) -> ServiceResult<Result<(), Denial>> {
        for subject in ask.subjects {
            let key = GrantKey {
                subject,
                department: ask.department,
                interface: ask.interface,
                purpose: ask.purpose,
            };
            if let Err(denial) = self.consents.check_and_use(&key, ask.today)? {
                return Ok(Err(denial));
            }
        }
        Ok(Ok(()))
    }

    async fn put_consent(&self, key: &GrantKey<'_>, consent: Consent) -> ServiceResult<Consent> {
        self.consents.grant(key, consent)
    }

    async fn end_consent(&self, key: &GrantKey<'_>, at_millis: i64) -> ServiceResult<Consent> {
        self.consents.revoke(key, at_millis)
    }

    async fn consents_of(&self, subject: &str, today: NaiveDate) -> ServiceResult<Vec<Consent>> {
        self.consents.list(subject, today)
    }

    async fn append(&self, entry: AuditEntry) -> ServiceResult<u64> {
        self.audit.append(entry).await
    }

    /// One hand-over to the writer for them all.
    async fn append_many(&self, entries: Vec<AuditEntry>) -> ServiceResult<Vec<u64>> {
        Ok(self.audit.append_many(entries).await?.collect())
    }

    async fn head(&self) -> ServiceResult<ChainHead> {
        Ok(self.audit.head())
    }

    async fn accesses_of(&self, subject: &str, limit: usize) -> ServiceResult<Vec<Access>> {
        Ok(query::accesses(self.store(), subject, limit)?)
    }

    async fn catalogue(&self) -> ServiceResult<Option<StoredCatalogue>> {
        self.catalogues.current()
    }

    async fn put_catalogue(&self, expected_version: u64, toml: String, applied_by: String) -> ServiceResult<StoredCatalogue> {
        let book = self.catalogues.clone();
        let at = chrono::Utc::now().timestamp_millis();
        blocking(move || book.put(expected_version, toml, applied_by, at)).await
    }

    async fn verify_chain(&self, run: bool) -> ServiceResult<ChainVerification> {
        let (store, published) = (self.store().clone(), self.published.clone());
        let now = chrono::Utc::now().timestamp_millis();
        blocking(move || {
            let mut outcome = if run {
                check::run(&store, check::MAX_RECORDS_PER_RUN, now)?
            } else {
                check::last(&store)?
            };
            if let Some((sinks, key)) = published.get() {
                outcome.published_heads = sinks.clone();
                outcome.head_public_key_hex = key.clone();
            }
            Ok(outcome)
        })
        .await
    }

    async fn search_audit(&self, search: AuditSearch) -> ServiceResult<AuditSearchResponse> {
        let store = self.store().clone();
        blocking(move || Ok(query::search(&store, &search)?)).await
    }

    async fn usage_between(&self, from: u32, to: u32, department: &str) -> ServiceResult<Vec<Usage>> {
        Ok(query::usage(self.store(), from, to, department)?)
    }

    async fn take_quota(&self, department: &str, day: u32, units: u64, daily_quota: u64, replica: &str) -> ServiceResult<Granted> {
        let (book, department, replica) = (self.quotas.clone(), department.to_string(), replica.to_string());
        tokio::task::spawn_blocking(move || book.take(&department, day, units, daily_quota, &replica))
            .await
            .map_err(|e| popbase_common::ServiceError::Internal(format!("quota task failed: {e}")))?
            .map_err(Into::into)
    }

    async fn create_subscription(&self, subscription: Subscription) -> ServiceResult<Subscription> {
        let book = self.subscriptions.clone();
        blocking(move || book.create(subscription)).await
    }

    async fn subscription(&self, id: &str) -> ServiceResult<Option<Subscription>> {
        let (book, id) = (self.subscriptions.clone(), id.to_string());
        blocking(move || book.get(&id)).await
    }

    async fn update_roster(&self, id: &str, add: Vec<String>, remove: Vec<String>) -> ServiceResult<Subscription> {
        let (book, id) = (self.subscriptions.clone(), id.to_string());
        blocking(move || book.update_roster(&id, &add, &remove)).await
    }

    async fn roster_page(&self, id: &str, after: &str, limit: usize) -> ServiceResult<Vec<String>> {
        let (book, id, after) = (self.subscriptions.clone(), id.to_string(), after.to_string());
        blocking(move || book.roster_page(&id, &after, limit)).await
    }

    async fn acknowledge(&self, id: &str, position: Position, at_millis: i64) -> ServiceResult<Subscription> {
        let (book, id) = (self.subscriptions.clone(), id.to_string());
        blocking(move || book.acknowledge(&id, &position, at_millis)).await
    }
}

/// Store work that may take a while (a roster page of 50,000 keys, an
/// fsynced commit) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ServiceResult<T> + Send + 'static) -> ServiceResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| popbase_common::ServiceError::Internal(format!("ledger task failed: {e}")))?
}
