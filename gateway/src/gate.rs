//! The one answer path. Every gateway RPC goes through these steps, in
//! this order, and each outcome (answer or refusal) leaves exactly one
//! audit record before the caller hears anything:
//!
//! 1. [`Gate::authenticate`]: certificate or token → department;
//! 2. [`Gate::authorise`]: catalogue (share class), approval, purpose,
//!    quota, then consent per subject unless a legal basis stands in;
//! 3. the interface fetches (gRPC to the services);
//! 4. [`Gate::release`]: minimise to the approved fields, audit, answer.
//!
//! Malformed input after authentication ([`Gate::refuse`]) and fetch
//! failures ([`Gate::fail`]) are audited as refusals too; how refusals are
//! charged and recorded is in [`crate::refusing`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use popbase_common::limits::LimitsConfig;
use popbase_common::load_shed::{self, KeyedLimit, KeyedSlot};
use popbase_common::{ServiceError, propagation};
use popbase_domain::pseudonym::{DomainPseudonyms, Pseudonymizer};
use popbase_export::deidentify::EXPORT_DOMAIN;
use popbase_proto::gateway::Access;
use tonic::{Request, Status};

use crate::audit::{AuditEntry, log::yyyymmdd};
use crate::auth::Authenticator;
use crate::catalogue::{Approval, Catalogue, ShareClass};
use crate::denial::{Denial, reason};
use crate::ledger::{ConsentUse, Ledger};
use crate::live_catalogue::LiveCatalogue;
use crate::quota::Quotas;
use crate::refusals::{Culprit, RefusalBudget};

/// The interface name of a refusal summary record (see [`crate::refusals`]).
pub const REFUSALS_INTERFACE: &str = "REFUSALS";

/// Pseudonym domain of audit subjects and consent keys.
pub const SUBJECT_DOMAIN: &str = "gateway-subject";

/// An authenticated department, holding one of its places among the
/// department's calls in flight until the call (and every clone) ends.
#[derive(Debug, Clone)]
pub struct Caller {
    pub department: String,
    _slot: Arc<KeyedSlot>,
}

/// What a call asks for, before it is authorised.
pub struct Ask<'a> {
    pub interface: &'static str,
    pub purpose: &'a str,
    /// ID numbers the answer is about (consent is checked for each).
    pub subjects: &'a [String],
    /// Quota units: 1 per call, or per item of a stream.
    pub units: u64,
    /// Catalogue fields the request itself uses (PersonSummary's `as_of`):
    /// refused NOT_APPROVED unless the approval lists each.
    pub needs: &'a [&'static str],
}

/// An authorised call: what the fetch may use and the answer may carry.
#[derive(Debug, Clone)]
pub struct Admission {
    pub interface: &'static str,
    pub purpose: String,
    /// The catalogue's approval it rests on (shared, not copied per call).
    approval: Arc<Approval>,
    pub(crate) subjects: Vec<String>,
}

impl Admission {
    pub fn department(&self) -> &str {
        &self.approval.department
    }

    /// The fields the answer may carry.
    pub fn fields(&self) -> &BTreeSet<String> {
        &self.approval.fields
    }

    pub fn allows(&self, field: &str) -> bool {
        self.approval.fields.contains(field)
    }

    /// This admission releasing only `fields` of what the approval allows
    /// (a subscription's chosen fields), about `subjects` (pseudonyms).
    pub(crate) fn narrowed(&self, fields: &[String], subjects: Vec<String>) -> Admission {
        let mut approval = (*self.approval).clone();
        approval.fields.retain(|f| fields.contains(f));
        Admission {
            interface: self.interface,
            purpose: self.purpose.clone(),
            approval: Arc::new(approval),
            subjects,
        }
    }

    /// The same release about other subjects (pseudonyms), sharing the approval.
    pub(crate) fn about(&self, subjects: Vec<String>) -> Admission {
        Admission { subjects, ..self.clone() }
    }
}

/// Clears what the approval does not allow; names the fields left.
pub trait Minimise {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String>;
}

/// Field-by-field minimisation: answers whether each catalogue field is
/// approved and remembers the ones that are, for the audit record.
pub struct Release<'a> {
    approved: &'a BTreeSet<String>,
    fields: Vec<String>,
}

impl<'a> Release<'a> {
    pub fn new(approved: &'a BTreeSet<String>) -> Self {
        Self {
            approved,
            fields: Vec::new(),
        }
    }

    /// Whether the answer may keep `field` (the caller clears it if not).
    pub fn keep(&mut self, field: &str) -> bool {
        let allowed = self.approved.contains(field);
        if allowed {
            self.fields.push(field.to_string());
        }
        allowed
    }

    pub fn into_fields(self) -> Vec<String> {
        self.fields
    }
}

impl<T: Minimise> Minimise for Vec<T> {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        let mut released = BTreeSet::new();
        for item in self.iter_mut() {
            released.extend(item.minimise(approved));
        }
        released.into_iter().collect()
    }
}

/// The audit entry of an answer released under `approval`.
fn released(approval: &Approval, interface: &str, purpose: String, subjects: Vec<String>, fields: Vec<String>, count: u64) -> AuditEntry {
    AuditEntry {
        department: approval.department.clone(),
        interface: interface.into(),
        purpose,
        subjects,
        fields,
        allowed: true,
        reason: String::new(),
        trace_id: propagation::current_trace_id(),
        count,
        subjects_digest: Vec::new(),
        subject_ids: Vec::new(),
        export: None,
    }
}

pub struct Gate {
    /// The sharing catalogue, replaceable while serving (see [`LiveCatalogue`]).
    pub live_catalogue: Arc<LiveCatalogue>,
    auth: Authenticator,
    pub(crate) quotas: Quotas,
    /// Each department's calls in flight (`limits.max_calls_per_department`).
    in_flight: KeyedLimit,
    /// How long a department's stream may send nothing (`limits.stream_idle_secs`).
    pub(crate) stream_idle: Duration,
    /// Refusals audited one by one per caller and window; the rest summarised.
    pub(crate) refusals: RefusalBudget,
    /// Refusals by reason code and whether each was audited on its own.
    pub(crate) refusal_counts: Mutex<BTreeMap<(&'static str, bool), u64>>,
    /// Consents and the audit trail: in this process or the `ledger` role.
    pub ledger: Arc<dyn Ledger>,
    /// Keyed once per domain: every audited answer pseudonymises its subjects.
    subject_pseudonyms: DomainPseudonyms,
    export_pseudonyms: DomainPseudonyms,
    /// Subscription streams and deliveries on this replica (metrics).
    pub subscription_figures: crate::subscriptions::figures::SubscriptionFigures,
}

impl Gate {
    pub fn new(
        catalogue: Arc<LiveCatalogue>,
        auth: Authenticator,
        ledger: Arc<dyn Ledger>,
        pseudonyms: Pseudonymizer,
        limits: &LimitsConfig,
    ) -> Self {
        Self {
            live_catalogue: catalogue,
            auth,
            quotas: Quotas::default(),
            in_flight: KeyedLimit::new(limits.max_calls_per_department),
            stream_idle: limits.stream_idle(),
            refusals: RefusalBudget::new(limits.refusals_per_window, limits.refusal_window()),
            refusal_counts: Mutex::default(),
            ledger,
            subject_pseudonyms: pseudonyms.domain(SUBJECT_DOMAIN),
            export_pseudonyms: pseudonyms.domain(EXPORT_DOMAIN),
            subscription_figures: Default::default(),
        }
    }

    /// The sharing catalogue of the moment (take it once per call).
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.live_catalogue.get()
    }

    /// The pseudonyms exports carry (one domain for every dataset, so the
    /// bureau can join them; another than the audit's).
    pub fn export_pseudonyms(&self) -> DomainPseudonyms {
        self.export_pseudonyms.clone()
    }

    /// The keyed pseudonym under which the gateway knows a person.
    pub fn pseudonym(&self, id_number: &str) -> String {
        self.subject_pseudonyms.pseudonym(id_number)
    }

    pub(crate) async fn record(&self, entry: AuditEntry) -> Result<u64, Status> {
        self.ledger.append(entry).await.map_err(Status::from)
    }

    /// Step 1: certificate or token → department (a failure is audited),
    /// and a place among the department's calls in flight.
    pub async fn authenticate<T>(&self, request: &Request<T>, interface: &'static str) -> Result<Caller, Status> {
        let department = self.identify(request, interface).await?;
        match self.in_flight.try_enter(&department) {
            Some(slot) => Ok(Caller {
                department,
                _slot: Arc::new(slot),
            }),
            None => {
                let overloaded = load_shed::overloaded("this department", self.in_flight.limit());
                Err(self
                    .deny(Culprit::Department(department), interface, "", Vec::new(), overloaded)
                    .await)
            }
        }
    }

    /// The department `request` comes from (certificate or token), or the
    /// audited refusal of a caller that does not authenticate, charged to
    /// its address.
    pub(crate) async fn identify<T>(&self, request: &Request<T>, interface: &str) -> Result<String, Status> {
        let certs = request.peer_certs();
        match self.auth.authenticate(request.metadata(), certs.as_deref().map(|c| c.as_slice())) {
            Ok(department) => Ok(department),
            Err(denial) => {
                let peer = Culprit::Peer(request.remote_addr().map(|a| a.ip()));
                Err(self.deny(peer, interface, "", Vec::new(), denial.into()).await)
            }
        }
    }

    /// Step 2: catalogue, approval, purpose, quota, consent.
    pub async fn authorise(&self, caller: &Caller, ask: Ask<'_>) -> Result<Admission, Status> {
        let subjects: Vec<String> = ask.subjects.iter().map(|id| self.pseudonym(id)).collect();
        let culprit = Culprit::Department(caller.department.clone());
        match self.check(caller, &ask, &subjects).await {
            Ok(Ok(approval)) => Ok(Admission {
                interface: ask.interface,
                purpose: ask.purpose.to_string(),
                approval,
                subjects,
            }),
            Ok(Err(denial)) => Err(self.deny(culprit, ask.interface, ask.purpose, subjects, denial.into()).await),
            Err(error) => Err(self.deny(culprit, ask.interface, ask.purpose, subjects, error).await),
        }
    }

    async fn check(&self, caller: &Caller, ask: &Ask<'_>, subjects: &[String]) -> Result<Result<Arc<Approval>, Denial>, ServiceError> {
        let catalogue = self.catalogue();
        let Some(interface) = catalogue
            .interface(ask.interface)
            .filter(|i| i.share_class != ShareClass::NotShared)
        else {
            return Ok(Err(Denial::new(
                reason::NOT_IN_CATALOGUE,
                format!("{} is not shared by the catalogue", ask.interface),
            )));
        };
        let Some(approval) = catalogue.approval(&caller.department, ask.interface) else {
            return Ok(Err(Denial::new(
                reason::NOT_APPROVED,
                format!("{} is not approved for {}", ask.interface, caller.department),
            )));
        };
        if !approval.purposes.iter().any(|p| p == ask.purpose) {
            return Ok(Err(Denial::new(
                reason::PURPOSE_MISMATCH,
                format!("the purpose is not approved for {} on {}", caller.department, ask.interface),
            )));
        }
        if let Some(field) = ask.needs.iter().find(|f| !approval.fields.contains(**f)) {
            return Ok(Err(Denial::new(
                reason::NOT_APPROVED,
                format!("{} with {field} is not approved for {}", ask.interface, caller.department),
            )));
        }
        let Some(department) = catalogue.department(&caller.department) else {
            return Ok(Err(Denial::new(reason::UNKNOWN_DEPARTMENT, "department left the catalogue")));
        };
        let now = Utc::now();
        if let Err(denial) = self
            .quotas
            .take(
                self.ledger.as_ref(),
                department,
                yyyymmdd(popbase_domain::clock::city_day(now)),
                ask.units,
                Instant::now(),
            )
            .await?
        {
            return Ok(Err(denial));
        }
        if interface.share_class == ShareClass::Conditional && interface.legal_basis.is_empty() && !subjects.is_empty() {
            let used = ConsentUse {
                subjects,
                department: &caller.department,
                interface: ask.interface,
                purpose: ask.purpose,
                today: popbase_domain::clock::city_day(now),
            };
            if let Err(denial) = self.ledger.use_consents(used).await? {
                return Ok(Err(denial));
            }
        }
        Ok(Ok(approval.clone()))
    }

    /// Step 4: minimise `answer` to the approval, audit, hand it back.
    /// `listed` are the ID numbers a list answer turned out to be about;
    /// `count` the records it holds.
    pub async fn release<T: Minimise>(&self, admission: Admission, mut answer: T, listed: &[String], count: u64) -> Result<T, Status> {
        let fields = answer.minimise(admission.fields());
        let mut subjects = admission.subjects;
        subjects.extend(listed.iter().map(|id| self.pseudonym(id)));
        self.record(released(
            &admission.approval,
            admission.interface,
            admission.purpose,
            subjects,
            fields,
            count,
        ))
        .await?;
        Ok(answer)
    }

    /// Step 4 for the items of a stream, each with its own admission: each
    /// minimised and recorded as one answer, the records handed to the
    /// ledger together. All leave once all are durable, or none does.
    pub async fn release_items<T: Minimise>(&self, items: Vec<(Admission, T)>) -> Result<Vec<T>, Status> {
        let mut entries = Vec::with_capacity(items.len());
        let mut answers = Vec::with_capacity(items.len());
        for (admission, mut answer) in items {
            let fields = answer.minimise(admission.fields());
            entries.push(released(
                &admission.approval,
                admission.interface,
                admission.purpose,
                admission.subjects,
                fields,
                1,
            ));
            answers.push(answer);
        }
        self.ledger.append_many(entries).await.map_err(Status::from)?;
        Ok(answers)
    }

    /// Step 4 of a write, before it is forwarded: the durable record of
    /// what the department writes (the kinds as fields, the persons as
    /// subjects, how many). An error means the write must not be applied.
    pub async fn commit_write(&self, admission: &Admission, kinds: Vec<String>, count: u64) -> Result<u64, Status> {
        let purpose = admission.purpose.clone();
        let subjects = admission.subjects.clone();
        self.record(released(&admission.approval, admission.interface, purpose, subjects, kinds, count))
            .await
    }

    /// The audit entry of an answer released under `admission` with
    /// `fields` (a bulk export's records start from it).
    pub(crate) fn released_entry(&self, admission: &Admission, fields: Vec<String>) -> AuditEntry {
        released(
            &admission.approval,
            admission.interface,
            admission.purpose.clone(),
            Vec::new(),
            fields,
            0,
        )
    }

    /// The newest `limit` accesses to the data of the person `id_number`:
    /// answers about them (under their audit pseudonym) and bulk exports
    /// that carried them (under their export pseudonym), newest first.
    pub async fn accesses_of(&self, id_number: &str, limit: usize) -> Result<Vec<Access>, ServiceError> {
        let (audit_pseudonym, export_pseudonym) = (self.pseudonym(id_number), self.export_pseudonyms.pseudonym(id_number));
        let answered = self.ledger.accesses_of(&audit_pseudonym, limit);
        let exported = self.ledger.accesses_of(&export_pseudonym, limit);
        let (answered, exported) = futures::future::try_join(answered, exported).await?;
        let mut accesses: Vec<Access> = answered.into_iter().chain(exported).collect();
        accesses.sort_by_key(|a| std::cmp::Reverse(a.at_unix_millis));
        accesses.truncate(limit);
        // What each rested on, for the person reading their log.
        let catalogue = self.catalogue();
        for access in &mut accesses {
            if let Some(interface) = catalogue.interface(&access.interface) {
                access.legal_basis = interface.legal_basis.clone();
                access.rests_on_consent = interface.legal_basis.is_empty() && interface.share_class == ShareClass::Conditional;
            }
        }
        Ok(accesses)
    }
}
