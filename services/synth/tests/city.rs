//! Invariants, determinism and loading of the synthetic city.

use std::collections::{HashMap, HashSet};

use popbase_domain::{IdNumber, calendar::age_on};
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::FeedRecord;
use popbase_proto::household::{HouseholdKind, Person, Relationship};
use popbase_residence::permits::ResidentRecords;
use popbase_storage::StoreOptions;
use popbase_synth::load::{DigestSink, StoreSink};
use popbase_synth::{CityGenerator, CityParams, CitySink};

#[derive(Default)]
struct Collect {
    households: Vec<HouseholdWithMembers>,
    residents: Vec<ResidentRecords>,
    feeds: Vec<FeedRecord>,
}

impl CitySink for Collect {
    fn households(&mut self, chunk: Vec<HouseholdWithMembers>) -> Result<(), String> {
        self.households.extend(chunk);
        Ok(())
    }
    fn residents(&mut self, chunk: Vec<ResidentRecords>) -> Result<(), String> {
        self.residents.extend(chunk);
        Ok(())
    }
    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        self.feeds.extend(chunk);
        Ok(())
    }
}

fn small_city(seed: u64, persons: u64) -> (CityParams, Collect, popbase_synth::CitySummary) {
    let params = CityParams::new("3703", persons, seed);
    let mut sink = Collect::default();
    let summary = CityGenerator::new(params.clone()).expect("Zibo").run(&mut sink).expect("generate");
    (params, sink, summary)
}

fn birth(p: &Person) -> chrono::NaiveDate {
    p.birth_date.and_then(|d| d.to_naive()).expect("birth date")
}

#[test]
fn households_hold_their_invariants() {
    let (_, city, summary) = small_city(42, 20_000);
    let mut families = 0;
    for item in &city.households {
        let household = &item.household;
        assert!(!item.members.is_empty());
        for m in &item.members {
            assert_eq!(m.household_id, household.household_id);
            assert_eq!(m.address, household.address, "members live at the household address");
        }
        let heads: Vec<&Person> = item
            .members
            .iter()
            .filter(|m| m.relationship == Relationship::Head as i32)
            .collect();
        if household.kind == HouseholdKind::Family as i32 {
            families += 1;
            assert_eq!(heads.len(), 1, "one head per family household");
            assert_eq!(heads[0].id_number, household.head_id_number);
            let head = heads[0];
            let parents: Vec<&Person> = item
                .members
                .iter()
                .filter(|m| [Relationship::Head as i32, Relationship::Spouse as i32].contains(&m.relationship))
                .collect();
            for child in item
                .members
                .iter()
                .filter(|m| [Relationship::Son as i32, Relationship::Daughter as i32].contains(&m.relationship))
            {
                for parent in &parents {
                    assert!(
                        age_on(birth(parent), birth(child)) >= 18,
                        "parents are at least 18 years older than their children"
                    );
                }
            }
            for elder in item
                .members
                .iter()
                .filter(|m| [Relationship::Father as i32, Relationship::Mother as i32].contains(&m.relationship))
            {
                assert!(
                    age_on(birth(elder), birth(head)) >= 18,
                    "the head's parents are older than the head"
                );
            }
            let second: Vec<&Person> = item
                .members
                .iter()
                .filter(|m| [Relationship::Son as i32, Relationship::DaughterInLaw as i32].contains(&m.relationship))
                .collect();
            for grandchild in item
                .members
                .iter()
                .filter(|m| [Relationship::Grandson as i32, Relationship::Granddaughter as i32].contains(&m.relationship))
            {
                for parent in &second {
                    assert!(age_on(birth(parent), birth(grandchild)) >= 18);
                }
            }
        } else {
            assert!(heads.is_empty(), "collective households have no head");
            assert!(household.head_id_number.is_empty());
            assert!(item.members.iter().all(|m| m.relationship == Relationship::CollectiveMember as i32));
        }
    }
    assert_eq!(families, summary.family_households);
    let collectives: u64 = summary.collective_households.iter().map(|(_, n)| n).sum();
    assert!(collectives > 0, "collective households are generated");
    assert_eq!(city.households.len() as u64, families + collectives);
}

#[test]
fn id_numbers_are_unique_valid_and_match_the_person() {
    let (params, city, summary) = small_city(7, 20_000);
    let mut seen = HashSet::new();
    let registered = city
        .households
        .iter()
        .flat_map(|h| h.members.iter().map(|p| (p.id_number.clone(), p.sex, p.birth_date)));
    let migrants = city
        .residents
        .iter()
        .map(|r| (r.registration.id_number.clone(), r.registration.sex, r.registration.birth_date));
    let mut local_births = 0usize;
    let mut total = 0usize;
    for (id, sex, birth_date) in registered.chain(migrants) {
        let parsed = IdNumber::parse(&id, params.reference_date).unwrap_or_else(|e| panic!("invalid generated ID: {e}"));
        assert_eq!(parsed.as_str(), id);
        assert!(seen.insert(id.clone()), "IDs are unique");
        assert_eq!(Some(parsed.birth_date().into()), birth_date, "birth date matches the ID");
        let male = parsed.sex() == popbase_domain::Sex::Male;
        assert_eq!(sex, if male { 1 } else { 2 }, "sex matches the ID's parity digit");
        total += 1;
        if parsed.county_code().starts_with("3703") {
            local_births += 1;
        }
    }
    assert_eq!(total as u64, summary.registered_persons + summary.migrants);
    assert_eq!(total as u64, params.persons, "exactly the persons asked for");
    let local = local_births as f64 / total as f64;
    assert!(
        (0.6..0.95).contains(&local),
        "mostly local birth counties, some from elsewhere: {local}"
    );
}

#[test]
fn shares_are_realistic() {
    let (params, city, summary) = small_city(3, 30_000);
    let migrant_share = summary.migrants as f64 / params.persons as f64;
    assert!((0.10..0.14).contains(&migrant_share), "migrants {migrant_share}");
    let uninsured = summary.feeds.uninsured as f64 / (summary.feeds.insured + summary.feeds.uninsured) as f64;
    assert!((0.03..0.10).contains(&uninsured), "uninsured {uninsured}");
    assert!(summary.residence_permits > 0 && summary.residence_permits < summary.migrants);
    assert!(summary.feeds.students > 0 && summary.feeds.marriages > 0 && summary.feeds.housing > 0 && summary.feeds.birth_certificates > 0);
    // Every student's school exists, and district schools list the committee.
    let schools: HashMap<String, Vec<String>> = city
        .feeds
        .iter()
        .filter_map(|r| match &r.payload {
            Some(popbase_proto::feeds::feed_record::Payload::School(s)) => Some((s.school_id.clone(), s.district_committee_codes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(schools.len() as u64, summary.feeds.schools);
    let students = city.feeds.iter().filter_map(|r| match &r.payload {
        Some(popbase_proto::feeds::feed_record::Payload::Student(s)) => Some(s),
        _ => None,
    });
    for student in students {
        assert!(schools.contains_key(&student.school_id));
        assert!((1..=9).contains(&student.grade));
    }
    // Permits are only held after six months of residence registration.
    for resident in &city.residents {
        let registered = resident
            .registration
            .registered_on
            .and_then(|d| d.to_naive())
            .expect("registered_on");
        for permit in &resident.permits {
            let issued = permit.issued_on.and_then(|d| d.to_naive()).expect("issued_on");
            assert!((issued - registered).num_days() >= popbase_synth::migrants::PERMIT_WAIT_DAYS);
        }
    }
}

#[test]
fn same_seed_same_city_other_seed_other_city() {
    let digest = |seed| {
        let mut sink = DigestSink::default();
        CityGenerator::new(CityParams::new("3703", 3_000, seed))
            .expect("Zibo")
            .run(&mut sink)
            .expect("run");
        sink.finish()
    };
    assert_eq!(digest(11), digest(11));
    assert_ne!(digest(11), digest(12));
}

#[test]
fn loads_into_the_service_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = StoreSink::open(dir.path(), StoreOptions::default()).expect("open stores");
    let summary = CityGenerator::new(CityParams::new("3703", 5_000, 5))
        .expect("Zibo")
        .run(&mut sink)
        .expect("run");
    sink.flush().expect("flush");
    assert_eq!(
        sink.registry.count_persons_under("3703").expect("count"),
        summary.registered_persons
    );
    assert_eq!(sink.permits.count_registrations_under("3703").expect("count"), summary.migrants);
    let insurance = sink
        .feeds
        .count_source(popbase_proto::feeds::Source::MedicalInsurance as i32)
        .expect("count");
    assert_eq!(insurance, summary.feeds.insured);
}

#[test]
fn insurance_history_answers_as_of_an_earlier_date() {
    use popbase_proto::feeds::feed_record::Payload;
    let (_, city, summary) = small_city(7, 5_000);
    assert!(summary.feeds.superseded > 0, "some insurance records carry an earlier version");
    let mut versions: std::collections::HashMap<&str, Vec<&FeedRecord>> = std::collections::HashMap::new();
    for record in &city.feeds {
        if matches!(record.payload, Some(Payload::MedicalInsurance(_))) {
            versions.entry(record.record_id.as_str()).or_default().push(record);
        }
    }
    let superseded: Vec<&Vec<&FeedRecord>> = versions.values().filter(|v| v.len() == 2).collect();
    assert_eq!(superseded.len() as u64, summary.feeds.superseded);
    let pair = superseded[0];
    let (earlier, current) = if pair[0].as_of_unix_millis < pair[1].as_of_unix_millis {
        (pair[0], pair[1])
    } else {
        (pair[1], pair[0])
    };
    let Some(Payload::MedicalInsurance(insurance)) = &current.payload else {
        unreachable!("filtered above")
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let store = popbase_storage::Store::open(dir.path(), popbase_feeds::tables::SCHEMA, StoreOptions::default()).expect("open");
    let feeds = popbase_feeds::FeedStore::open(store).expect("feeds");
    feeds.import(&city.feeds).expect("import");
    let now = feeds.records_of(&insurance.id_number).expect("records");
    assert!(now.contains(current) && !now.contains(earlier), "the newest version is the record");
    let then = feeds
        .records_of_at(&insurance.id_number, current.as_of_unix_millis - 1)
        .expect("as of");
    assert!(then.contains(earlier), "the earlier version answers before the update");
    let before = feeds
        .records_of_at(&insurance.id_number, earlier.as_of_unix_millis - 1)
        .expect("as of");
    assert!(
        !before.iter().any(|r| r.record_id == current.record_id),
        "nothing before the first report"
    );
}

#[test]
fn bad_parameters_are_refused() {
    assert!(CityGenerator::new(CityParams::new("3703", 0, 1)).is_err());
    assert!(CityGenerator::new(CityParams::new("1101", 10, 1)).is_err());
}
