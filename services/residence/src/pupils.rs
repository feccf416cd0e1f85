//! 政策找人 for compulsory education today, for a county or larger: the
//! children of school age under the division with an active residence
//! registration and a valid permit of their own or of the parent they
//! accompany (两为主、以居住证为主要依据; the rule of
//! `entitlements::evaluate`), whom the feeds hold no enrolment (学籍) for.
//! Qualifying is read from one pass over the permits and the division's
//! registration index, the age from the ID number itself; the feeds are
//! asked `CheckEnrolled` 10,000 at a time instead of each child's records.

use chrono::NaiveDate;
use popbase_common::ServiceError;
use popbase_common::upstream::Upstream;
use popbase_common::validate::MAX_BATCH_IDS;
use popbase_domain::IdNumber;
use popbase_domain::calendar::age_on;
use popbase_proto::feeds::CheckEnrolledRequest;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::residence::{Entitlement, Policy};
use popbase_storage::keys;
use tokio::sync::mpsc;
use tonic::Status;

use crate::Permits;
use crate::entitlements::{Facts, SCHOOL_AGES, evaluate};
use crate::holders::valid_holders;
use crate::tables::{self, REGISTRATIONS_BY_COMMITTEE};

/// Sends each unenrolled child's entitlement, with its basis, in committee
/// order until the reader goes; an error ends the stream.
pub async fn send_unenrolled(
    permits: Permits,
    mut feeds: FeedsClient<Upstream>,
    division: String,
    on: NaiveDate,
    sender: mpsc::Sender<Result<Entitlement, Status>>,
) {
    if let Err(e) = unenrolled(&permits, &mut feeds, &division, on, &sender).await {
        let _ = sender.send(Err(e.into())).await;
    }
}

async fn unenrolled(
    permits: &Permits,
    feeds: &mut FeedsClient<Upstream>,
    division: &str,
    on: NaiveDate,
    sender: &mpsc::Sender<Result<Entitlement, Status>>,
) -> Result<(), ServiceError> {
    let (scanned, division_code) = (permits.clone(), division.to_string());
    let qualifying = tokio::task::spawn_blocking(move || qualifying_children(&scanned, &division_code, on))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
    for batch in qualifying.chunks(MAX_BATCH_IDS) {
        let enrolled = feeds
            .check_enrolled(CheckEnrolledRequest {
                id_numbers: batch.to_vec(),
            })
            .await
            .map_err(|e| ServiceError::Unavailable(format!("feeds service: {}", e.message())))?
            .into_inner()
            .enrolled;
        if enrolled.len() != batch.len() {
            return Err(ServiceError::Unavailable(
                "feeds service: CheckEnrolled answered a different count".into(),
            ));
        }
        let unenrolled: Vec<String> = batch.iter().zip(enrolled).filter(|(_, e)| !e).map(|(id, _)| id.clone()).collect();
        let store = permits.clone();
        let found = tokio::task::spawn_blocking(move || entitlements(&store, &unenrolled, on))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        for entitlement in found {
            if sender.send(Ok(entitlement)).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The children under `division_code` who qualify on `on`, in committee
/// order: school age by their ID number, then a valid permit of their own
/// or (their registration read) of the parent they accompany.
fn qualifying_children(permits: &Permits, division_code: &str, on: NaiveDate) -> Result<Vec<String>, ServiceError> {
    let holders = valid_holders(permits, on)?;
    let mut children = Vec::new();
    let registered_under = tables::division_prefix(division_code);
    permits
        .store()
        .bulk_index_keys(&REGISTRATIONS_BY_COMMITTEE, &registered_under, |key| {
            let id = keys::second_str_ref(key)?;
            let school_age = IdNumber::parse(&id, on).is_ok_and(|n| SCHOOL_AGES.contains(&age_on(n.birth_date(), on)));
            if !school_age {
                return Ok(true);
            }
            let qualifies = holders.contains(id.as_ref())
                || permits
                    .registration(&id)?
                    .is_some_and(|r| !r.accompanies_id_number.is_empty() && holders.contains(&r.accompanies_id_number));
            if qualifies {
                children.push(id.into_owned());
            }
            Ok(true)
        })?;
    Ok(children)
}

/// The education entitlements of `ids` (known unenrolled), with their basis.
fn entitlements(permits: &Permits, ids: &[String], on: NaiveDate) -> Result<Vec<Entitlement>, ServiceError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(registration) = permits.registration(id)? else { continue };
        let own = permits.permits_of(id)?;
        let accompanied = match registration.accompanies_id_number.as_str() {
            "" => Vec::new(),
            parent => permits.permits_of(parent)?,
        };
        let facts = Facts {
            registration: &registration,
            permits: &own,
            accompanied_permits: &accompanied,
            feeds: &[],
        };
        let education = evaluate(on, &facts)
            .into_iter()
            .find(|e| e.policy == Policy::CompulsoryEducation as i32 && e.qualifies && !e.used);
        found.extend(education);
    }
    Ok(found)
}
