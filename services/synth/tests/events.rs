//! A year of life events driven into a generated city, and the registry's
//! statistics against the true counts the driver reports.

use popbase_household::Registry;
use popbase_proto::household::{EventKind, MoveInReason};
use popbase_storage::{Durability, StoreOptions};
use popbase_synth::events::drive_year;
use popbase_synth::load::StoreSink;
use popbase_synth::{CityGenerator, CityParams};

#[test]
fn statistics_match_the_events_the_generator_drove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let params = CityParams::new("3703", 30_000, 7);
    let generator = CityGenerator::new(params.clone()).expect("generator");
    let mut sink = StoreSink::open(dir.path(), StoreOptions::default()).expect("stores");
    let summary = generator.run(&mut sink).expect("generate");
    sink.flush().expect("flush");
    let registry: Registry = sink.registry.clone().with_durability(Durability::Buffered);

    let before = registry.population("3703", params.reference_date).expect("population");
    let total = before.total.clone().expect("total");
    assert_eq!(
        total.persons, summary.registered_persons,
        "the index counts every registered person"
    );
    assert_eq!(
        before.parts.iter().map(|p| p.persons).sum::<u64>(),
        total.persons,
        "counties add up"
    );
    assert_eq!(
        total.age_bands.iter().map(|b| b.persons).sum::<u64>(),
        total.persons,
        "bands add up"
    );
    assert_eq!(total.male + total.female, total.persons);
    let collectives: u64 = summary.collective_households.iter().map(|(_, n)| n).sum();
    assert_eq!(total.households, summary.family_households + collectives);

    let year = drive_year(&registry, generator.map(), params.reference_date, params.seed).expect("events");
    assert!(year.settlements() > 100, "{year:?}");
    assert!(year.settlements_by_path.len() >= 4, "several paths used: {year:?}");
    assert!(year.rural_to_urban > 20 && year.births > 50 && year.deaths > 50, "{year:?}");
    assert!(!year.collectives_by_kind.is_empty());

    let (from, to) = (year.from.expect("from"), year.to.expect("to"));
    let changes = registry.changes("3703", from, to).expect("changes");
    assert_eq!(changes.settlements, year.settlements());
    let by_path: std::collections::BTreeMap<i32, u64> = changes.settlements_by_path.iter().map(|p| (p.path, p.persons)).collect();
    assert_eq!(by_path, year.settlements_by_path);
    assert_eq!(
        changes.rural_to_urban, year.rural_to_urban,
        "every driven move went from a village to a town"
    );
    let by_kind: std::collections::BTreeMap<i32, u64> = changes.collectives_by_kind.iter().map(|k| (k.kind, k.households)).collect();
    assert_eq!(by_kind, year.collectives_by_kind);
    assert_eq!(changes.births, year.births);
    assert_eq!(changes.deaths, year.deaths);
    assert!(!by_path.contains_key(&(MoveInReason::Unspecified as i32)));

    // Population after the year: before + settlements + births - deaths.
    let after = registry.population("3703", to).expect("population").total.expect("total");
    assert_eq!(after.persons as i64 - total.persons as i64, year.net_persons);
    assert_eq!(year.net_persons, (year.settlements() + year.births) as i64 - year.deaths as i64);

    // A period that excludes the year is empty; one county sees a part of it.
    let empty = registry
        .changes("3703", from - chrono::Duration::days(30), from - chrono::Duration::days(1))
        .expect("changes");
    assert_eq!(empty.settlements + empty.births + empty.deaths, 0);
    let county = registry.changes("370302", from, to).expect("county");
    assert!(county.settlements <= changes.settlements && county.births <= changes.births);
    let (events, _) = registry.events_between(from, to, None, usize::MAX).expect("events");
    assert!(events.iter().any(|e| e.kind() == EventKind::CollectiveCreated));
}
