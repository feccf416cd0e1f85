//! The ledger: the gateway's state (citizens' consents and the audit
//! trail) behind one interface, so the answer path does not care where it
//! lives. In all-in-one mode, and in tests, it is [`LocalLedger`] over the
//! store in this process; a gateway Deployment scaled by an HPA holds no
//! state and reaches the `ledger` role with [`RemoteLedger`]. Either way the
//! ledger only ever sees subjects' keyed pseudonyms, never ID numbers.

pub mod catalogue_book;
mod local;
pub mod quota_book;
mod remote;
pub mod wire;

use chrono::NaiveDate;
use popbase_common::ServiceResult;
use popbase_proto::gateway::{Access, AuditSearchResponse, ChainHead, ChainVerification, Consent, Position, Subscription, Usage};
use popbase_proto::ledger::{AuditSearch, StoredCatalogue};

pub use local::LocalLedger;
pub use quota_book::Granted;
pub use remote::RemoteLedger;

use crate::audit::AuditEntry;
use crate::consent::GrantKey;
use crate::denial::Denial;

/// One use of the subjects' grants: who asks, through which interface,
/// for which purpose, on which day.
pub struct ConsentUse<'a> {
    /// Keyed pseudonyms of the persons the answer is about.
    pub subjects: &'a [String],
    pub department: &'a str,
    pub interface: &'a str,
    pub purpose: &'a str,
    pub today: NaiveDate,
}

#[tonic::async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Checks each subject's grant and counts the use of use-limited ones;
    /// the first subject without a standing grant ends the check.
    async fn use_consents(&self, ask: ConsentUse<'_>) -> ServiceResult<Result<(), Denial>>;
    /// Records (or renews) a grant; a renewal starts a fresh use count.
    async fn put_consent(&self, key: &GrantKey<'_>, consent: Consent) -> ServiceResult<Consent>;
    /// Marks a grant revoked at `at_millis` (NotFound when there is none).
    async fn end_consent(&self, key: &GrantKey<'_>, at_millis: i64) -> ServiceResult<Consent>;
    /// Every grant of one subject, with its state on `today`.
    async fn consents_of(&self, subject: &str, today: NaiveDate) -> ServiceResult<Vec<Consent>>;
    /// Chains one record; answers its sequence number once it is durable.
    async fn append(&self, entry: AuditEntry) -> ServiceResult<u64>;
    /// Chains several records (the items of a stream) consecutively;
    /// their sequence numbers, in order, once all are durable.
    async fn append_many(&self, entries: Vec<AuditEntry>) -> ServiceResult<Vec<u64>>;
    /// The newest durable record's seq and hash.
    async fn head(&self) -> ServiceResult<ChainHead>;
    /// The newest `limit` accesses to one subject's data.
    async fn accesses_of(&self, subject: &str, limit: usize) -> ServiceResult<Vec<Access>>;
    /// The newest applied sharing catalogue, if one was applied.
    async fn catalogue(&self) -> ServiceResult<Option<StoredCatalogue>>;
    /// Applies the version after `expected_version` (ABORTED if stale).
    async fn put_catalogue(&self, expected_version: u64, toml: String, applied_by: String) -> ServiceResult<StoredCatalogue>;
    /// The chain's own check: run onward from the last verified record
    /// (`run`), or only the last outcome; with where heads are published.
    async fn verify_chain(&self, run: bool) -> ServiceResult<ChainVerification>;
    /// One page of an audit search (subject as its pseudonym, limit bounded).
    async fn search_audit(&self, search: AuditSearch) -> ServiceResult<AuditSearchResponse>;
    /// Usage rows of days `from..=to` (yyyymmdd), of one department or all.
    async fn usage_between(&self, from: u32, to: u32, department: &str) -> ServiceResult<Vec<Usage>>;
    /// Grants up to `units` of `department`'s daily quota on `day`, counted
    /// across replicas and restarts (see [`quota_book`]).
    async fn take_quota(&self, department: &str, day: u32, units: u64, daily_quota: u64, replica: &str) -> ServiceResult<Granted>;
    /// Records a new change-notification subscription (see
    /// [`crate::subscriptions`]); ABORTED if its id is taken.
    async fn create_subscription(&self, subscription: Subscription) -> ServiceResult<Subscription>;
    async fn subscription(&self, id: &str) -> ServiceResult<Option<Subscription>>;
    /// Adds and removes roster members (subject pseudonyms).
    async fn update_roster(&self, id: &str, add: Vec<String>, remove: Vec<String>) -> ServiceResult<Subscription>;
    /// Roster pseudonyms after `after`, in order, at most `limit`.
    async fn roster_page(&self, id: &str, after: &str, limit: usize) -> ServiceResult<Vec<String>>;
    /// Moves the acknowledged position on (never back).
    async fn acknowledge(&self, id: &str, position: Position, at_millis: i64) -> ServiceResult<Subscription>;
}
