//! 政策找人 in batches, for today. Who qualifies is read from the store in
//! one pass (`holders` for resident insurance, `pupils` for education);
//! the feeds say which of them have used the policy, 10,000 at a time
//! (`CheckInsurance`, `CheckEnrolled`: their current records answer for
//! the end of today); only the rest are assessed whole, with the basis, by
//! `entitlements::evaluate`. `FindUnused` answers this way instead of
//! reading every resident's records one by one.

use chrono::NaiveDate;
use popbase_common::ServiceError;
use popbase_common::upstream::Upstream;
use popbase_common::validate::MAX_BATCH_IDS;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{CheckEnrolledRequest, CheckInsuranceRequest};
use popbase_proto::residence::{Entitlement, Policy};
use tokio::sync::mpsc;
use tonic::Status;

use crate::Permits;
use crate::entitlements::{Facts, evaluate, permits_around};
use crate::{holders, pupils};

/// A policy 政策找人 can answer in batches.
#[derive(Clone, Copy)]
pub enum Batched {
    ResidentInsurance,
    Education,
}

impl Batched {
    /// The batched path for `policy` in `division` on `on`, where there is
    /// one: today only (the feeds' current records are today's), and for
    /// education a county or larger (its pass reads every permit).
    pub fn for_request(policy: Policy, division: &str, on: NaiveDate) -> Option<Self> {
        if on != popbase_domain::clock::today() {
            return None;
        }
        match policy {
            Policy::ResidentMedicalInsurance => Some(Self::ResidentInsurance),
            Policy::CompulsoryEducation if holders::scans_permits(division) => Some(Self::Education),
            _ => None,
        }
    }

    fn policy(self) -> Policy {
        match self {
            Self::ResidentInsurance => Policy::ResidentMedicalInsurance,
            Self::Education => Policy::CompulsoryEducation,
        }
    }

    /// Who under `division` qualifies on `on`, in committee order.
    fn qualifying(self, permits: &Permits, division: &str, on: NaiveDate) -> Result<Vec<String>, ServiceError> {
        match self {
            Self::ResidentInsurance => {
                let mut ids = Vec::new();
                holders::for_each_holder_under(permits, division, on, |id| {
                    ids.push(id.to_string());
                    true
                })?;
                Ok(ids)
            }
            Self::Education => pupils::qualifying_children(permits, division, on),
        }
    }

    /// Which of `id_numbers` the feeds show using the policy, in order.
    async fn used(self, feeds: &mut FeedsClient<Upstream>, id_numbers: Vec<String>) -> Result<Vec<bool>, ServiceError> {
        let asked = id_numbers.len();
        let answer = match self {
            Self::ResidentInsurance => feeds
                .check_insurance(CheckInsuranceRequest { id_numbers })
                .await
                .map(|r| r.into_inner().active),
            Self::Education => feeds
                .check_enrolled(CheckEnrolledRequest { id_numbers })
                .await
                .map(|r| r.into_inner().enrolled),
        };
        let used = answer.map_err(|e| ServiceError::Unavailable(format!("feeds service: {}", e.message())))?;
        if used.len() != asked {
            return Err(ServiceError::Unavailable(format!(
                "feeds service: answered {} of {asked} checks",
                used.len()
            )));
        }
        Ok(used)
    }
}

/// Sends each resident under `division` who qualifies for `batched`'s policy
/// and has not used it, with the basis, in committee order until the reader
/// goes; an error ends the stream.
pub async fn send_unused(
    permits: Permits,
    mut feeds: FeedsClient<Upstream>,
    batched: Batched,
    division: String,
    on: NaiveDate,
    sender: mpsc::Sender<Result<Entitlement, Status>>,
) {
    if let Err(e) = unused(&permits, &mut feeds, batched, division, on, &sender).await {
        let _ = sender.send(Err(e.into())).await;
    }
}

async fn unused(
    permits: &Permits,
    feeds: &mut FeedsClient<Upstream>,
    batched: Batched,
    division: String,
    on: NaiveDate,
    sender: &mpsc::Sender<Result<Entitlement, Status>>,
) -> Result<(), ServiceError> {
    let scanned = permits.clone();
    let qualifying = blocking(move || batched.qualifying(&scanned, &division, on)).await?;
    for batch in qualifying.chunks(MAX_BATCH_IDS) {
        let used = batched.used(feeds, batch.to_vec()).await?;
        let unused: Vec<String> = batch.iter().zip(used).filter(|(_, used)| !used).map(|(id, _)| id.clone()).collect();
        let store = permits.clone();
        let found = blocking(move || assessed(&store, batched.policy(), &unused, on)).await?;
        for entitlement in found {
            if sender.send(Ok(entitlement)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Store reads, off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
}

/// The `policy` entitlements of `ids` (the feeds show none of them using
/// it), with their basis; one no longer qualifying is left out.
fn assessed(permits: &Permits, policy: Policy, ids: &[String], on: NaiveDate) -> Result<Vec<Entitlement>, ServiceError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(registration) = permits.registration(id)? else { continue };
        let (own, accompanied) = permits_around(permits, &registration)?;
        let facts = Facts {
            registration: &registration,
            permits: &own,
            accompanied_permits: &accompanied,
            feeds: &[],
        };
        let entitlement = evaluate(on, &facts)
            .into_iter()
            .find(|e| e.policy == policy as i32 && e.qualifies && !e.used);
        found.extend(entitlement);
    }
    Ok(found)
}
