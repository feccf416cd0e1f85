//! Finding the uninsured of a division: ID numbers first, persons last.
//!
//! 1. At once: the registry's persons of the division
//!    (`StreamPersonIds`), the residence service's permit holders who
//!    qualify for resident insurance today (`StreamPermitHolderIds`), and,
//!    for a whole city or counties asked together, everyone the feeds hold
//!    insured (`StreamInsured`, one read shared by the lists found
//!    together; see `insured_reads`). All packed, eight bytes each: a list
//!    holds its division's ID numbers (some 50 MB for Zibo's four million)
//!    while it is found, and its share of a read (about 70 MB) only while
//!    it takes its insured out.
//! 2. The insured are taken out: against the insured set when there is
//!    one to share, otherwise by `CheckInsurance` 10,000 at a time (for a
//!    county asked alone, a read of the whole city's insured would cost
//!    more than its look-ups).
//! 3. The rest are read whole, [`PART`] at a time with [`READS_IN_FLIGHT`]
//!    batches in flight, and handed on as parts.

use std::time::Instant;

use chrono::NaiveDate;
use futures::StreamExt;
use std::future::Future;

use popbase_common::packed::{self, PackedStream};
use popbase_common::validate::MAX_BATCH_IDS;
use popbase_common::{ServiceError, ServiceResult};
use popbase_domain::id_number;
use popbase_proto::common::PackedIdNumbers;
use popbase_proto::feeds::{CheckInsuranceRequest, StreamInsuredRequest};
use popbase_proto::gateway::{ResidentKind, UninsuredResident};
use popbase_proto::household::{GetPersonsRequest, Person, PersonView, RegistrationStatus, StreamPersonIdsRequest};
use popbase_proto::residence::{GetRegistrationsRequest, RegistrationState, ResidenceRegistration, StreamPermitHolderIdsRequest};

use super::PART;
use super::insured_reads::InsuredReads;
use super::insured_set::InsuredSet;
use super::parts::Parts;
use super::places::ReadUse;
use crate::calls::{PermitCalls, RegistryCalls};
use crate::sources::{Sources, upstream};

/// Batches of persons (or of insurance checks) asked at once.
const READS_IN_FLIGHT: usize = 2;

const REGISTRY: &str = "the household registry";
const RESIDENCE: &str = "the residence service";
const FEEDS: &str = "the feeds service";

/// Finds the uninsured of `division` on `today` and hands them to `parts`,
/// registered persons (committee order) first, then permit holders.
/// `read_use`: whether the list may begin a read of the insured (a whole
/// city, or a county among others), only join one, or never use one.
pub async fn find(
    sources: &Sources,
    reads: &InsuredReads,
    read_use: ReadUse,
    division: &str,
    today: NaiveDate,
    parts: &mut Parts,
) -> ServiceResult<()> {
    let started = Instant::now();
    let persons = async {
        let stream = sources
            .registry
            .stream_person_ids(StreamPersonIdsRequest {
                division_code: division.to_string(),
            })
            .await
            .map_err(|s| upstream(REGISTRY, s))?;
        all_ids(stream, REGISTRY).await
    };
    let holders = async {
        let stream = sources
            .permits
            .stream_permit_holder_ids(StreamPermitHolderIdsRequest {
                division_code: division.to_string(),
                on: Some(today.into()),
            })
            .await
            .map_err(|s| upstream(RESIDENCE, s))?;
        all_ids(stream, RESIDENCE).await
    };
    let stream_insured = || async {
        let stream = sources.feeds.stream_insured(StreamInsuredRequest {}).await;
        stream.map_err(|s| upstream(FEEDS, s))
    };
    // The read is held only while the insured are taken out, not while
    // the residents are read whole and sent at the department's pace.
    let (registered, holders, insured_held, listed_ms) = {
        let early = match read_use {
            ReadUse::Begins => reads.join_or_begin(),
            ReadUse::Joins => reads.current(),
            ReadUse::Never => None,
        };
        let insured = async {
            match &early {
                Some(read) => read.set(stream_insured).await.map(Some),
                None => Ok(None),
            }
        };
        let (persons, holders, insured) = futures::future::try_join3(persons, holders, insured).await?;
        // A list that found no read joins one begun by the lists that came
        // after it while its numbers were being listed (a county that asked
        // alone; a city that found no place free for a read).
        let late = match (read_use, insured) {
            (ReadUse::Begins | ReadUse::Joins, None) => reads.current(),
            _ => None,
        };
        let insured = match (&late, insured) {
            (Some(read), None) => Some(read.set(stream_insured).await?),
            (_, insured) => insured,
        };
        let listed_ms = started.elapsed().as_millis();
        let registered = uninsured_of(sources, persons, REGISTRY, insured).await?;
        let holders = uninsured_of(sources, holders, RESIDENCE, insured).await?;
        (registered, holders, insured.map_or(0, InsuredSet::len), listed_ms)
    };
    read_whole(Persons(sources.registry.clone()), registered, parts).await?;
    let registered = parts.found;
    read_whole(Holders(sources.permits.clone()), holders, parts).await?;
    // Counts and times only: no person in the log.
    tracing::info!(
        division,
        registered,
        holders = parts.found - registered,
        insured_held,
        listed_ms,
        total_ms = started.elapsed().as_millis(),
        "uninsured list found"
    );
    Ok(())
}

/// `work` as a task of its own. All-in-one, a batch is read by the role's
/// handler on the calling thread; batches in flight within one task would
/// take turns on one core, as tasks they are read on both.
async fn spawned<T: Send + 'static>(work: impl Future<Output = ServiceResult<T>> + Send + 'static) -> ServiceResult<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("a list's read task ended: {e}")))?
}

/// Every message of a role's stream: a role that sends nothing for
/// [`packed::STALL`], or whose stream ends before its last message, fails
/// the list UNAVAILABLE (a frozen role costs a bounded wait; a cut-short
/// answer is never taken for a whole one).
async fn all_ids(stream: PackedStream, source: &'static str) -> ServiceResult<Vec<PackedIdNumbers>> {
    let mut messages = Vec::new();
    packed::read_whole(stream, packed::STALL, |message| messages.push(message))
        .await
        .map_err(|s| upstream(source, s))?;
    Ok(messages)
}

/// The ID numbers of `messages` in order; a packed value that is no ID
/// number fails the list rather than dropping someone from it.
fn unpacked(messages: Vec<PackedIdNumbers>, source: &'static str) -> impl Iterator<Item = ServiceResult<String>> {
    messages.into_iter().flat_map(move |message| {
        let packed = message.ids.into_iter().map(move |p| {
            id_number::unpack(p).ok_or_else(|| ServiceError::Unavailable(format!("{source} sent a value that is no ID number")))
        });
        packed.chain(message.unpacked.into_iter().map(Ok))
    })
}

/// Those of `ids` with no active medical insurance, in their order.
/// Against the insured set the numbers stay packed until found uninsured;
/// otherwise the feeds are asked [`MAX_BATCH_IDS`] at a time, each batch
/// unpacked only when it is asked.
async fn uninsured_of(
    sources: &Sources,
    ids: Vec<PackedIdNumbers>,
    source: &'static str,
    insured: Option<&InsuredSet>,
) -> ServiceResult<Vec<String>> {
    if let Some(insured) = insured {
        let mut uninsured = Vec::new();
        for message in ids {
            let kept = PackedIdNumbers {
                ids: message.ids.into_iter().filter(|&p| !insured.contains_packed(p)).collect(),
                unpacked: message.unpacked.into_iter().filter(|id| !insured.contains(id)).collect(),
                ..Default::default()
            };
            for id in unpacked(vec![kept], source) {
                uninsured.push(id?);
            }
        }
        return Ok(uninsured);
    }
    let mut numbers = unpacked(ids, source);
    let batches = std::iter::from_fn(move || {
        let batch: ServiceResult<Vec<String>> = numbers.by_ref().take(MAX_BATCH_IDS).collect();
        match batch {
            Ok(batch) if batch.is_empty() => None,
            other => Some(other),
        }
    });
    let mut checked = futures::stream::iter(batches)
        .map(|batch| {
            let feeds = sources.feeds.clone();
            spawned(async move {
                let id_numbers = batch?;
                let request = CheckInsuranceRequest { id_numbers };
                let asked = request.id_numbers.len();
                let active = feeds
                    .check_insurance(request.clone())
                    .await
                    .map_err(|s| upstream(FEEDS, s))?
                    .into_inner()
                    .active;
                if active.len() != asked {
                    return Err(ServiceError::Unavailable(format!(
                        "{FEEDS} answered {} of {asked} checks",
                        active.len()
                    )));
                }
                let uninsured = request.id_numbers.into_iter().zip(active).filter(|(_, insured)| !insured);
                Ok(uninsured.map(|(id, _)| id).collect::<Vec<_>>())
            })
        })
        .buffered(READS_IN_FLIGHT);
    let mut uninsured = Vec::new();
    while let Some(batch) = checked.next().await {
        uninsured.extend(batch?);
    }
    Ok(uninsured)
}

/// What a list reads whole of the residents found uninsured, [`PART`] at a
/// time with [`READS_IN_FLIGHT`] batches in flight, each as the list's item.
trait ReadWhole: Clone + Send + Sync + 'static {
    fn read(&self, id_numbers: Vec<String>) -> impl Future<Output = ServiceResult<Vec<UninsuredResident>>> + Send;
}

/// Registered persons, those no longer registered (died or left since the
/// index was read) left out.
#[derive(Clone)]
struct Persons(RegistryCalls);

impl ReadWhole for Persons {
    async fn read(&self, id_numbers: Vec<String>) -> ServiceResult<Vec<UninsuredResident>> {
        let request = GetPersonsRequest {
            id_numbers,
            view: PersonView::Full as i32,
            as_of: None,
        };
        let persons = self
            .0
            .get_persons(request)
            .await
            .map_err(|s| upstream(REGISTRY, s))?
            .into_inner()
            .persons;
        let active = persons.into_iter().filter(|p| p.status == RegistrationStatus::Active as i32);
        Ok(active.map(registered_resident).collect())
    }
}

/// Permit holders, those whose registration ended since the scan left out.
#[derive(Clone)]
struct Holders(PermitCalls);

impl ReadWhole for Holders {
    async fn read(&self, id_numbers: Vec<String>) -> ServiceResult<Vec<UninsuredResident>> {
        let request = GetRegistrationsRequest { id_numbers };
        let registrations = self
            .0
            .get_registrations(request)
            .await
            .map_err(|s| upstream(RESIDENCE, s))?
            .into_inner()
            .registrations;
        let active = registrations.into_iter().filter(|r| r.state == RegistrationState::Active as i32);
        Ok(active.map(permit_holder).collect())
    }
}

/// Reads `ids` whole through `reader` and hands the residents on as parts.
async fn read_whole(reader: impl ReadWhole, ids: Vec<String>, parts: &mut Parts) -> ServiceResult<()> {
    let batches: Vec<Vec<String>> = ids.chunks(PART).map(<[String]>::to_vec).collect();
    let mut read = futures::stream::iter(batches)
        .map(|id_numbers| {
            let reader = reader.clone();
            spawned(async move { reader.read(id_numbers).await })
        })
        .buffered(READS_IN_FLIGHT);
    while let Some(residents) = read.next().await {
        parts.add(residents?).await?;
    }
    Ok(())
}

fn registered_resident(person: Person) -> UninsuredResident {
    UninsuredResident {
        birth_year: person.birth_date.map_or(0, |d| d.year),
        committee_code: person.address.map(|a| a.committee_code).unwrap_or_default(),
        id_number: person.id_number,
        name: person.name,
        sex: person.sex,
        kind: ResidentKind::Registered as i32,
        phone: person.phone,
    }
}

fn permit_holder(registration: ResidenceRegistration) -> UninsuredResident {
    UninsuredResident {
        birth_year: registration.birth_date.map_or(0, |d| d.year),
        committee_code: registration.address.map(|a| a.committee_code).unwrap_or_default(),
        id_number: registration.id_number,
        name: registration.name,
        sex: registration.sex,
        kind: ResidentKind::PermitHolder as i32,
        phone: registration.phone,
    }
}
