//! How the gate refuses: every refusal is charged to its caller (a quota
//! unit for an authenticated department, the refusal budget of
//! [`crate::refusals`] for everyone), audited one by one within the budget
//! and summarised past it, and counted for `/metrics`. An audit write that
//! fails turns the refusal into UNAVAILABLE: no answer, refusals included,
//! leaves unrecorded.

use std::sync::Arc;
use std::time::Instant;

use popbase_common::load_shed;
use popbase_common::metrics::LabelValue;
use popbase_common::{ServiceError, propagation};
use tonic::{Request, Status};

use crate::audit::{AuditEntry, log::yyyymmdd};
use crate::denial::reason;
use crate::gate::{Admission, Caller, Gate, REFUSALS_INTERFACE};
use crate::refusals::{Charge, Culprit};

/// Longest purpose stored as sent in a refusal's audit record.
const MAX_AUDITED_PURPOSE: usize = 64;

/// The purpose a refusal's audit record keeps: a catalogue-like code
/// (capital letters and underscores, like every purpose the catalogue
/// names) as it is; anything else (too long, digits that may be an ID
/// number, free text) only as its length and a digest, so a refusal never
/// stores what a caller wrote.
fn audited_purpose(purpose: &str) -> String {
    let code = purpose.len() <= MAX_AUDITED_PURPOSE && purpose.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    if code {
        return purpose.to_string();
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(purpose.as_bytes());
    format!("~{}b:{}", purpose.len(), hex::encode(&digest[..8]))
}

impl Gate {
    /// Audits a refusal of `culprit`'s call (or counts it into the window's
    /// summary once the culprit has used its budget) and answers the status
    /// the caller gets: `error`'s, REFUSAL_FLOOD past the budget. `Err` is
    /// the audit write failing: the call must end with it.
    async fn charge_refusal(
        &self,
        culprit: Culprit,
        interface: &str,
        purpose: &str,
        subjects: Vec<String>,
        error: ServiceError,
    ) -> Result<Status, Status> {
        let code = match &error {
            ServiceError::PermissionDenied { code, .. }
            | ServiceError::ResourceExhausted { code, .. }
            | ServiceError::Unauthenticated { code, .. } => code,
            ServiceError::InvalidArgument { .. } => reason::INVALID_ARGUMENT,
            ServiceError::Aborted(_) => reason::CONFLICT,
            ServiceError::FailedPrecondition { .. } => reason::FAILED_PRECONDITION,
            _ => reason::FETCH_FAILED,
        };
        if code == load_shed::OVERLOADED {
            // Shedding load must not add audit writes: counted into the
            // window's summary record, answered OVERLOADED.
            self.refusals.count_only(&culprit, Instant::now());
            self.count_refusal(code, false);
            return Ok(error.into());
        }
        // A conflict is the platform's race, not the caller's fault, and its
        // code (ABORTED) tells the caller to read again and retry: it is
        // never turned into REFUSAL_FLOOD. Only admitted writes meet one, so
        // their records are bounded by the admitted (rate-limited) calls.
        let charge = if code == reason::CONFLICT {
            Charge::Audit
        } else {
            self.refusals.charge(&culprit, Instant::now())
        };
        self.count_refusal(code, charge == Charge::Audit);
        if charge == Charge::Flood {
            return Ok(ServiceError::ResourceExhausted {
                code: reason::REFUSAL_FLOOD,
                reason: "too many refused calls from this caller; they are counted, not answered one by one, until the window ends".into(),
            }
            .into());
        }
        let entry = AuditEntry {
            department: culprit.department().into(),
            interface: interface.into(),
            purpose: audited_purpose(purpose),
            subjects,
            allowed: false,
            reason: code.into(),
            trace_id: propagation::current_trace_id(),
            ..Default::default()
        };
        self.record(entry).await?;
        Ok(error.into())
    }

    pub(crate) async fn deny(
        &self,
        culprit: Culprit,
        interface: &str,
        purpose: &str,
        subjects: Vec<String>,
        error: ServiceError,
    ) -> Status {
        match self.charge_refusal(culprit, interface, purpose, subjects, error).await {
            Ok(refusal) => refusal,
            Err(audit_failed) => audit_failed,
        }
    }

    fn count_refusal(&self, code: &'static str, audited: bool) {
        *self
            .refusal_counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((code, audited))
            .or_default() += 1;
    }

    /// Writes the summary records of refusal windows that have closed
    /// (every open one when `all`); counts that cannot be written yet are
    /// kept for the next try, so no refusal is lost.
    pub async fn record_refusal_summaries(&self, all: bool) {
        let summaries = self.refusals.closed(Instant::now(), all);
        if summaries.is_empty() {
            return;
        }
        let entries = summaries
            .iter()
            .map(|summary| AuditEntry {
                department: summary.culprit.department().into(),
                interface: REFUSALS_INTERFACE.into(),
                fields: summary.culprit.peer_label().into_iter().collect(),
                allowed: false,
                reason: reason::REFUSAL_FLOOD.into(),
                count: summary.refusals,
                ..Default::default()
            })
            .collect();
        if let Err(e) = self.ledger.append_many(entries).await {
            tracing::warn!(error = %e, "refusal summaries not recorded yet; kept for the next window");
            self.refusals.restore(summaries, Instant::now());
        }
    }

    /// Writes refusal summaries every window until `shutdown`, then the rest.
    pub async fn summarise_refusals(self: Arc<Self>, shutdown: popbase_common::Shutdown) {
        let mut tick = tokio::time::interval(self.refusals.window());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.record_refusal_summaries(false).await,
                () = shutdown.wait() => break,
            }
        }
        self.record_refusal_summaries(true).await;
    }

    /// `/metrics` samples of the gate: refusals by reason, audited one by
    /// one or counted into a summary.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(
            "# HELP popbase_gateway_refusals_total Refused calls by reason; audited=false ones are in a REFUSALS summary record.\n",
        );
        out.push_str("# TYPE popbase_gateway_refusals_total counter\n");
        for ((code, audited), count) in self.refusal_counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "popbase_gateway_refusals_total{{reason=\"{}\",audited=\"{audited}\"}} {count}",
                LabelValue(code)
            );
        }
        self.subscription_figures.render(out);
    }

    /// Malformed input from an authenticated caller: audited, then
    /// answered. It costs the caller a quota unit like an answer would, so
    /// a department past its quota gets QUOTA_EXCEEDED, not endless errors.
    pub async fn refuse(&self, caller: &Caller, interface: &'static str, purpose: &str, error: ServiceError) -> Status {
        match self.refuse_item(caller, interface, purpose, error).await {
            Ok(refusal) | Err(refusal) => refusal,
        }
    }

    /// [`Gate::refuse`] for one item of a stream: `Ok` the item's refusal
    /// (answered in line), `Err` when the stream must end (the audit write
    /// failed).
    pub async fn refuse_item(
        &self,
        caller: &Caller,
        interface: &'static str,
        purpose: &str,
        error: ServiceError,
    ) -> Result<Status, Status> {
        self.refuse_department(&caller.department, interface, purpose, error).await
    }

    /// A refusal charged to `department`: a quota unit, then audited (or
    /// counted past the refusal budget).
    async fn refuse_department(&self, department: &str, interface: &str, purpose: &str, error: ServiceError) -> Result<Status, Status> {
        let catalogue = self.catalogue();
        let error = match catalogue.department(department) {
            Some(entry) => {
                let day = yyyymmdd(popbase_domain::clock::today());
                match self.quotas.take(self.ledger.as_ref(), entry, day, 1, Instant::now()).await {
                    Ok(Ok(())) => error,
                    Ok(Err(denial)) => denial.into(),
                    // The ledger cannot count it: the refusal stands as it was.
                    Err(_) => error,
                }
            }
            None => error,
        };
        self.charge_refusal(Culprit::Department(department.to_string()), interface, purpose, Vec::new(), error)
            .await
    }

    /// A call whose body did not decode, answered inside tonic before any
    /// handler saw it (see [`crate::grpc::malformed`]): charged like any
    /// other malformed input. The caller is identified as far as its
    /// credentials go; one that does not authenticate gets the
    /// authentication refusal (step 1 comes before validation), charged to
    /// its address.
    pub async fn refuse_malformed<T>(&self, request: &Request<T>, interface: &str, error: ServiceError) -> Status {
        let department = match self.identify(request, interface).await {
            Ok(department) => department,
            Err(unauthenticated) => return unauthenticated,
        };
        match self.refuse_department(&department, interface, "", error).await {
            Ok(refusal) | Err(refusal) => refusal,
        }
    }

    /// The fetch failed after authorisation: audited, then answered.
    pub async fn fail(&self, admission: &Admission, error: ServiceError) -> Status {
        let culprit = Culprit::Department(admission.department().to_string());
        self.deny(culprit, admission.interface, &admission.purpose, admission.subjects.clone(), error)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::audited_purpose;

    #[test]
    fn refusals_keep_codes_and_only_a_digest_of_anything_else() {
        assert_eq!(audited_purpose("EMPLOYMENT_SERVICE"), "EMPLOYMENT_SERVICE");
        assert_eq!(audited_purpose(""), "");
        let id = audited_purpose("370302199001011232");
        assert_eq!(id, audited_purpose("370302199001011232"), "stable");
        assert!(id.starts_with("~18b:") && !id.contains("370302"), "{id}");
        let long = audited_purpose(&"A".repeat(1 << 20));
        assert!(long.len() < 32, "a 1 MiB purpose is stored in {} bytes", long.len());
    }
}
