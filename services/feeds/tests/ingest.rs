//! Ingest against a real store: every feed kind, malformed, duplicate,
//! out-of-order and unmatched records (nothing lost), and as-of answers.

use std::collections::HashSet;

use popbase_feeds::ingest::tally;
use popbase_feeds::{FeedStore, tables, validate};
use popbase_proto::common::{Address, Date, Sex};
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{
    BirthCertificate, EnrollmentStatus, FeedRecord, Housing, HousingKind, IngestSummary, MarriageEvent, MarriageRegistration,
    MedicalInsurance, MedicalScheme, Outcome, Pension, PensionScheme, School, SchoolStage, Source, StudentState, StudentStatus,
};
use popbase_storage::{Store, StoreOptions};

const ALICE: &str = "370302199001011232";
const BOB: &str = "370302199001011216";
const STRANGER: &str = "110105199001011232";
const DAY: i64 = 24 * 3600 * 1000;
const T0: i64 = 1_700_000_000_000;

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn record(source: Source, id: &str, as_of: i64, payload: Payload) -> FeedRecord {
    FeedRecord {
        source: source as i32,
        record_id: id.into(),
        as_of_unix_millis: as_of,
        payload: Some(payload),
    }
}

fn insurance(id: &str, person: &str, as_of: i64, status: EnrollmentStatus) -> FeedRecord {
    record(
        Source::MedicalInsurance,
        id,
        as_of,
        Payload::MedicalInsurance(MedicalInsurance {
            id_number: person.into(),
            scheme: MedicalScheme::Employee as i32,
            status: status as i32,
            since: date(2020, 1, 1),
            insured_county_code: "370302".into(),
        }),
    )
}

fn every_kind() -> Vec<FeedRecord> {
    let home = Address {
        committee_code: "370302001001".into(),
        detail: "和平路1号".into(),
    };
    vec![
        insurance("mi-1", ALICE, T0, EnrollmentStatus::Active),
        record(
            Source::HumanResources,
            "pen-1",
            T0,
            Payload::Pension(Pension {
                id_number: ALICE.into(),
                scheme: PensionScheme::EnterpriseEmployee as i32,
                status: EnrollmentStatus::Active as i32,
                since: date(2015, 1, 1),
                contribution_months: 120,
            }),
        ),
        record(
            Source::Education,
            "school-1",
            T0,
            Payload::School(School {
                school_id: "S1".into(),
                name: "实验小学".into(),
                stage: SchoolStage::Primary as i32,
                county_code: "370302".into(),
                address: Some(home.clone()),
                district_committee_codes: vec!["370302001001".into()],
            }),
        ),
        record(
            Source::Education,
            "stu-1",
            T0,
            Payload::Student(StudentStatus {
                id_number: BOB.into(),
                school_id: "S1".into(),
                grade: 3,
                state: StudentState::Enrolled as i32,
                since: date(2024, 9, 1),
            }),
        ),
        record(
            Source::Health,
            "birth-1",
            T0,
            Payload::BirthCertificate(BirthCertificate {
                certificate_number: "Q370000001".into(),
                child_name: "新生".into(),
                child_sex: Sex::Female as i32,
                birth_date: date(2024, 5, 1),
                mother_id_number: ALICE.into(),
                ..Default::default()
            }),
        ),
        record(
            Source::CivilAffairs,
            "mar-1",
            T0,
            Payload::Marriage(MarriageRegistration {
                party_a_id_number: ALICE.into(),
                party_b_id_number: BOB.into(),
                event: MarriageEvent::Marriage as i32,
                date: date(2018, 5, 20),
                registry_county_code: "370302".into(),
            }),
        ),
        record(
            Source::Housing,
            "house-1",
            T0,
            Payload::Housing(Housing {
                id_number: BOB.into(),
                kind: HousingKind::Ownership as i32,
                address: Some(home),
                since: date(2019, 1, 1),
                ..Default::default()
            }),
        ),
    ]
}

/// Validates and stores `records` the way the gRPC stream does.
fn ingest(feeds: &FeedStore, records: Vec<FeedRecord>) -> IngestSummary {
    let known: HashSet<String> = [ALICE, BOB].into_iter().map(String::from).collect();
    let mut summary = IngestSummary::default();
    let mut valid = Vec::new();
    for (index, mut record) in records.into_iter().enumerate() {
        match validate::record(&record) {
            Ok(()) => {
                popbase_feeds::ingest::normalise_ids(&mut record);
                valid.push((index as u64, record));
            }
            Err(popbase_common::ServiceError::InvalidArgument { field, reason }) => tally(
                &mut summary,
                popbase_proto::feeds::RecordResult {
                    index: index as u64,
                    outcome: Outcome::Rejected as i32,
                    field,
                    reason,
                    ..Default::default()
                },
            ),
            Err(other) => panic!("{other}"),
        }
    }
    for result in feeds.ingest_chunk("test", &valid, &known).expect("ingest") {
        tally(&mut summary, result);
    }
    summary.results.sort_by_key(|r| r.index);
    summary
}

fn open() -> (FeedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    (
        FeedStore::open(Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open")).expect("feeds"),
        dir,
    )
}

#[test]
fn every_kind_is_accepted_and_found_by_person() {
    let (feeds, _dir) = open();
    let summary = ingest(&feeds, every_kind());
    assert_eq!((summary.received, summary.accepted), (7, 7), "{:?}", summary.results);
    let alice = feeds.records_of_at(ALICE, i64::MAX).expect("records");
    assert_eq!(alice.len(), 4, "insurance, pension, birth certificate, marriage");
    let again = ingest(&feeds, every_kind());
    assert_eq!(again.duplicates, 7, "re-sending is idempotent");
}

#[test]
fn malformed_records_are_rejected_naming_the_field() {
    let (feeds, _dir) = open();
    let mut bad_id = insurance("mi-2", "370302199001011233", T0, EnrollmentStatus::Active);
    let mut wrong_source = insurance("mi-3", ALICE, T0, EnrollmentStatus::Active);
    wrong_source.source = Source::Housing as i32;
    let mut no_time = insurance("mi-4", ALICE, 0, EnrollmentStatus::Active);
    let mut unset_status = insurance("mi-5", ALICE, T0, EnrollmentStatus::Unspecified);
    let mut bad_grade = every_kind().remove(3);
    if let Some(Payload::Student(s)) = bad_grade.payload.as_mut() {
        s.grade = 12;
    }
    let records = vec![
        std::mem::take(&mut bad_id),
        std::mem::take(&mut wrong_source),
        std::mem::take(&mut no_time),
        std::mem::take(&mut unset_status),
        bad_grade,
        insurance("mi-6", ALICE, T0, EnrollmentStatus::Active),
    ];
    let summary = ingest(&feeds, records);
    let fields: Vec<&str> = summary.results.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "medical_insurance.id_number",
            "source",
            "as_of_unix_millis",
            "medical_insurance.status",
            "student.grade"
        ]
    );
    assert_eq!(
        (summary.rejected, summary.accepted),
        (5, 1),
        "the good record in the same stream is kept"
    );
}

#[test]
fn older_updates_never_overwrite_and_history_answers_as_of() {
    let (feeds, _dir) = open();
    ingest(&feeds, vec![insurance("mi-1", ALICE, T0, EnrollmentStatus::Active)]);
    ingest(&feeds, vec![insurance("mi-1", ALICE, T0 + 30 * DAY, EnrollmentStatus::Suspended)]);
    // A late-arriving update from in between.
    let late = ingest(&feeds, vec![insurance("mi-1", ALICE, T0 + 10 * DAY, EnrollmentStatus::Terminated)]);
    assert_eq!(late.stale, 1);
    assert_eq!(late.results[0].outcome(), Outcome::Stale);
    let status_at = |t: i64| -> Option<i32> {
        feeds
            .records_of_at(ALICE, t)
            .expect("records")
            .into_iter()
            .find_map(|r| match r.payload {
                Some(Payload::MedicalInsurance(m)) => Some(m.status),
                _ => None,
            })
    };
    assert_eq!(status_at(i64::MAX), Some(EnrollmentStatus::Suspended as i32), "newest wins now");
    assert_eq!(status_at(T0 + DAY), Some(EnrollmentStatus::Active as i32));
    assert_eq!(
        status_at(T0 + 15 * DAY),
        Some(EnrollmentStatus::Terminated as i32),
        "the late version answers its period"
    );
    assert_eq!(status_at(T0 - 1), None, "nothing was known before");
}

#[test]
fn unknown_persons_are_kept_as_unmatched_and_listed() {
    let (feeds, _dir) = open();
    let summary = ingest(
        &feeds,
        vec![
            insurance("mi-9", STRANGER, T0, EnrollmentStatus::Active),
            insurance("mi-10", "370302199001011232".to_lowercase().as_str(), T0, EnrollmentStatus::Active),
        ],
    );
    assert_eq!((summary.unmatched, summary.accepted), (1, 1));
    let unmatched = &summary.results[0];
    assert_eq!((unmatched.outcome(), unmatched.field.as_str()), (Outcome::Unmatched, "subject"));
    assert!(
        unmatched.reason.contains("110105********1232") && !unmatched.reason.contains(STRANGER),
        "masked"
    );
    let (listed, _) = feeds.unmatched(0, None, 100).expect("list");
    assert_eq!(listed.len(), 1);
    // A marriage with a partner registered elsewhere is about our resident.
    let mut marriage = every_kind().remove(5);
    if let Some(Payload::Marriage(m)) = marriage.payload.as_mut() {
        m.party_b_id_number = STRANGER.into();
    }
    assert_eq!(ingest(&feeds, vec![marriage]).accepted, 1);
    // The unmatched insurance record (never dropped) and the marriage.
    assert_eq!(feeds.records_of_at(STRANGER, i64::MAX).expect("kept").len(), 2);
    // Once the person is known, a newer version clears the flag.
    let known: HashSet<String> = [STRANGER.to_string()].into();
    let newer = insurance("mi-9", STRANGER, T0 + DAY, EnrollmentStatus::Active);
    let results = feeds.ingest_chunk("test", &[(0, newer)], &known).expect("ingest");
    assert_eq!(results[0].outcome(), Outcome::Accepted);
    assert!(feeds.unmatched(0, None, 100).expect("list").0.is_empty());
}

#[test]
fn insured_now_follows_every_update_of_a_medical_insurance_record() {
    let (feeds, _dir) = open();
    let insured = |id: &str| feeds.medical_insurance_active(id).expect("check");
    let both = || {
        feeds
            .medical_insurance_active_many(&[ALICE.to_string(), BOB.to_string(), STRANGER.to_string()])
            .expect("batched check")
    };
    ingest(&feeds, vec![insurance("mi-1", ALICE, T0, EnrollmentStatus::Active)]);
    assert!(insured(ALICE) && !insured(BOB));
    ingest(&feeds, vec![insurance("mi-1", ALICE, T0 + DAY, EnrollmentStatus::Suspended)]);
    assert!(!insured(ALICE), "suspended is not insured");
    let stale = ingest(&feeds, vec![insurance("mi-1", ALICE, T0 + DAY / 2, EnrollmentStatus::Active)]);
    assert_eq!(stale.stale, 1);
    assert!(!insured(ALICE), "an older version kept in history changes nothing");

    // Two active records (a duplicate enrollment): ending one leaves the other.
    ingest(
        &feeds,
        vec![
            insurance("mi-2", ALICE, T0 + 2 * DAY, EnrollmentStatus::Active),
            insurance("mi-3", ALICE, T0 + 2 * DAY, EnrollmentStatus::Active),
        ],
    );
    ingest(&feeds, vec![insurance("mi-2", ALICE, T0 + 3 * DAY, EnrollmentStatus::Terminated)]);
    assert!(insured(ALICE));
    // A correction moves the other record to Bob.
    ingest(&feeds, vec![insurance("mi-3", BOB, T0 + 4 * DAY, EnrollmentStatus::Active)]);
    assert_eq!(both(), [false, true, false]);
    // The same record twice in one chunk: the later version decides.
    ingest(
        &feeds,
        vec![
            insurance("mi-4", BOB, T0 + 5 * DAY, EnrollmentStatus::Active),
            insurance("mi-4", ALICE, T0 + 6 * DAY, EnrollmentStatus::Active),
            insurance("mi-3", BOB, T0 + 6 * DAY, EnrollmentStatus::Terminated),
        ],
    );
    assert_eq!(both(), [true, false, false]);
}

#[test]
fn bulk_import_keeps_the_insured_table_too() {
    let (feeds, _dir) = open();
    feeds
        .import(&[
            insurance("mi-1", ALICE, T0, EnrollmentStatus::Active),
            insurance("mi-1", ALICE, T0 + DAY, EnrollmentStatus::Suspended),
            insurance("mi-2", BOB, T0, EnrollmentStatus::Active),
        ])
        .expect("import");
    assert!(
        !feeds.medical_insurance_active(ALICE).expect("check"),
        "the newest version is suspended"
    );
    assert!(feeds.medical_insurance_active(BOB).expect("check"));
    feeds
        .import(&[insurance("mi-2", BOB, T0 + DAY, EnrollmentStatus::Terminated)])
        .expect("import");
    assert!(
        !feeds.medical_insurance_active(BOB).expect("check"),
        "a later import replaces the record"
    );
}

#[test]
fn a_store_from_before_the_insured_table_is_backfilled_once_on_open() {
    use popbase_feeds::insured::{INSURED, InsuredRecords, insured_key};
    use popbase_storage::Batch;
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = |records: &[FeedRecord], stray: Option<&str>| {
        let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
        let mut batch = Batch::new("test", "written without the insured table");
        for r in records {
            batch.put(&tables::RECORDS, tables::record_key(r.source, &r.record_id), r);
        }
        if let Some(id) = stray {
            let row = InsuredRecords {
                record_ids: vec!["left-by-a-crash".into()],
            };
            batch.put(&INSURED, insured_key(id), &row);
        }
        store.commit(batch).expect("commit");
    };
    raw(
        &[
            insurance("mi-1", ALICE, T0, EnrollmentStatus::Active),
            insurance("mi-2", BOB, T0, EnrollmentStatus::Suspended),
        ],
        Some(STRANGER),
    );
    let reopen = || FeedStore::open(Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open")).expect("feeds");
    let feeds = reopen();
    let checked = feeds
        .medical_insurance_active_many(&[ALICE.to_string(), BOB.to_string(), STRANGER.to_string()])
        .expect("check");
    assert_eq!(checked, [true, false, false], "built from the records; the half-built row replaced");
    drop(feeds);
    // Built once: a record written behind the feeds' back afterwards is not picked up.
    raw(&[insurance("mi-2", BOB, T0 + DAY, EnrollmentStatus::Active)], None);
    assert!(!reopen().medical_insurance_active(BOB).expect("check"));
}

/// The pipeline's steps one by one: a refresh asks the directory only about
/// records whose persons changed or were unknown, and a chunk read before
/// the stream's previous chunk was stored is refused as it stands (its
/// versions are old) but stored once those keys are read again.
#[test]
fn a_refresh_asks_only_about_changed_persons_and_survives_its_own_earlier_chunks() {
    let (feeds, _dir) = open();
    ingest(
        &feeds,
        vec![
            insurance("mi-1", ALICE, T0, EnrollmentStatus::Active),
            insurance("mi-2", STRANGER, T0, EnrollmentStatus::Active),
        ],
    );
    let first = vec![
        (0, insurance("mi-1", ALICE, T0 + DAY, EnrollmentStatus::Active)),
        (1, insurance("mi-2", STRANGER, T0 + DAY, EnrollmentStatus::Active)),
    ];
    let (mut first_reads, asked) = feeds.read_chunk(&first).expect("read");
    assert_eq!(asked, vec![STRANGER.to_string()], "alice's record was matched and names her still");
    // Read while the first chunk waits to be stored: mi-1 now names Bob.
    let second = vec![(2, insurance("mi-1", BOB, T0 + 2 * DAY, EnrollmentStatus::Active))];
    let (mut second_reads, asked) = feeds.read_chunk(&second).expect("read");
    assert_eq!(asked, vec![BOB.to_string()], "a record naming someone else is matched again");

    first_reads.known = HashSet::new();
    let (results, seq) = feeds.store_chunk("test", &first, &first_reads).expect("first chunk");
    let outcomes: Vec<Outcome> = results.iter().map(|r| r.outcome()).collect();
    assert_eq!(outcomes, vec![Outcome::Accepted, Outcome::Unmatched]);
    assert!(seq.is_some());

    second_reads.known = [BOB.to_string()].into();
    let refused = feeds
        .store_chunk("test", &second, &second_reads)
        .expect_err("its version of mi-1 is old");
    assert!(matches!(refused, popbase_common::ServiceError::Aborted(_)), "{refused}");
    let keys: Vec<Vec<u8>> = second_reads.keys().cloned().collect();
    second_reads.reread(&feeds, &keys).expect("read again");
    let (results, _) = feeds.store_chunk("test", &second, &second_reads).expect("second chunk");
    assert_eq!(results[0].outcome(), Outcome::Accepted);
    let bobs = feeds.records_of_at(BOB, i64::MAX).expect("records");
    assert_eq!(bobs.len(), 1, "mi-1 is Bob's now");
    assert_eq!(feeds.unmatched(0, None, 100).expect("list").0.len(), 1, "mi-2 stays unmatched");
}
