//! The feeds store's change log as changes for subscribers: a
//! medical-insurance record's status, and marriage registrations.
//!
//! Ingest batches record keys only (values would double a full re-send's
//! writes), so a change carries the record as it is when the change is
//! read: a later correction of the same record shows its newer state.

use popbase_common::ServiceResult;
use popbase_common::changes::ChangeReader;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{EnrollmentStatus, MarriageEvent};
use popbase_proto::gateway::{Change, ChangeKind, ChangeSource};
use popbase_storage::{ChangeBatch, ChangeOp, Read, Store};

use crate::FeedStore;
use crate::tables::RECORDS;

/// The batch reason of departments' record writes.
const INGEST: &str = "feed_ingest";

pub struct FeedChanges {
    feeds: FeedStore,
}

impl FeedChanges {
    pub fn new(feeds: FeedStore) -> Self {
        Self { feeds }
    }
}

fn status_name(status: EnrollmentStatus) -> &'static str {
    match status {
        EnrollmentStatus::Active => "active",
        EnrollmentStatus::Suspended => "suspended",
        EnrollmentStatus::Terminated => "terminated",
        EnrollmentStatus::Unspecified => "unspecified",
    }
}

impl ChangeReader for FeedChanges {
    fn source(&self) -> ChangeSource {
        ChangeSource::Feeds
    }

    fn store(&self) -> &Store {
        self.feeds.store()
    }

    fn wants(&self, reason: &str) -> bool {
        reason == INGEST
    }

    fn read(&self, batch: &ChangeBatch, out: &mut Vec<Change>) -> ServiceResult<()> {
        for change in batch.changes_in(RECORDS.name()) {
            if change.op != ChangeOp::Put as i32 {
                continue;
            }
            let Some(record) = self.store().get(&RECORDS, &change.key)? else {
                continue;
            };
            match record.value.payload {
                Some(Payload::MedicalInsurance(insurance)) => out.push(Change {
                    kind: ChangeKind::InsuranceStatus as i32,
                    id_number: insurance.id_number.clone(),
                    relation: "subject".into(),
                    occurred_on: insurance.since,
                    committee_code: insurance.insured_county_code.clone(),
                    detail: status_name(insurance.status()).into(),
                    ..Default::default()
                }),
                Some(Payload::Marriage(marriage)) => {
                    let kind = match marriage.event() {
                        MarriageEvent::Marriage => ChangeKind::Marriage,
                        MarriageEvent::Divorce => ChangeKind::Divorce,
                        MarriageEvent::Unspecified => continue,
                    };
                    let parties = [&marriage.party_a_id_number, &marriage.party_b_id_number];
                    for party in parties.into_iter().filter(|p| !p.is_empty()) {
                        out.push(Change {
                            kind: kind as i32,
                            id_number: party.clone(),
                            relation: "party".into(),
                            occurred_on: marriage.date,
                            committee_code: marriage.registry_county_code.clone(),
                            ..Default::default()
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
