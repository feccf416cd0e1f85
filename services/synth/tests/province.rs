//! A province's cities generated into one place must not collide: no ID
//! number and no feed record id given twice.

use std::collections::HashSet;

use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::FeedRecord;
use popbase_residence::permits::ResidentRecords;
use popbase_synth::people::IdAllocator;
use popbase_synth::{CityGenerator, CityParams, CitySink, province};

#[derive(Default)]
struct Keys {
    id_numbers: Vec<String>,
    /// Of the residence registration only (migrants).
    migrant_id_numbers: Vec<String>,
    /// One set per city run (a record's earlier versions share its id).
    record_ids: Vec<HashSet<String>>,
}

impl Keys {
    fn next_city(&mut self) {
        self.record_ids.push(HashSet::new());
    }

    /// Record ids found in more than one city run.
    fn shared_record_ids(&self) -> usize {
        let all: usize = self.record_ids.iter().map(HashSet::len).sum();
        all - self.record_ids.iter().flatten().collect::<HashSet<_>>().len()
    }
}

impl CitySink for Keys {
    fn households(&mut self, chunk: Vec<HouseholdWithMembers>) -> Result<(), String> {
        self.id_numbers
            .extend(chunk.into_iter().flat_map(|h| h.members).map(|p| p.id_number));
        Ok(())
    }
    fn residents(&mut self, chunk: Vec<ResidentRecords>) -> Result<(), String> {
        let ids: Vec<String> = chunk.into_iter().map(|r| r.registration.id_number).collect();
        self.migrant_id_numbers.extend(ids.iter().cloned());
        self.id_numbers.extend(ids);
        Ok(())
    }
    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        // Schools are keyed by their own codes, the same in every run of one city.
        let city = self.record_ids.last_mut().ok_or("no city started")?;
        city.extend(chunk.into_iter().map(|r| r.record_id).filter(|id| !id.starts_with("SCH")));
        Ok(())
    }
}

fn duplicates(values: &[String]) -> usize {
    values.len() - values.iter().collect::<HashSet<_>>().len()
}

/// The same city twice with the same seed would be the same persons twice;
/// sharing the allocator and taking the next record range, the second run
/// gives out only numbers the first did not.
#[test]
fn cities_sharing_an_allocator_and_record_ranges_never_collide() {
    let mut keys = Keys::default();
    let mut ids = IdAllocator::default();
    for i in 0..2 {
        keys.next_city();
        let mut params = CityParams::new("3703", 3_000, 5);
        params.first_record = 1 + i * province::RECORDS_PER_CITY;
        let summary = CityGenerator::new(params)
            .expect("Zibo")
            .run_sharing(&mut keys, &mut ids)
            .expect("generate");
        assert_eq!(summary.registered_persons + summary.migrants, 3_000);
    }
    assert_eq!(keys.id_numbers.len(), 6_000);
    assert_eq!(duplicates(&keys.id_numbers), 0, "an ID number given twice");
    assert_eq!(keys.shared_record_ids(), 0, "a feed record id given in both");

    let mut alone = Keys::default();
    for _ in 0..2 {
        alone.next_city();
        CityGenerator::new(CityParams::new("3703", 3_000, 5))
            .expect("Zibo")
            .run(&mut alone)
            .expect("generate");
    }
    assert_eq!(duplicates(&alone.id_numbers), 3_000, "without sharing, the same persons again");
    assert!(alone.shared_record_ids() > 0, "and the same record ids");
}

#[test]
fn a_small_shandong_holds_every_city_once() {
    let mut keys = Keys::default();
    let mut ids = IdAllocator::default();
    let cities = province::plan("37", 16_000, 3).expect("Shandong");
    let mut prefixes = HashSet::new();
    for city in &cities {
        keys.next_city();
        let summary = city.run_sharing(&mut keys, &mut ids).expect("generate");
        assert_eq!(summary.registered_persons + summary.migrants, city.params().persons);
        prefixes.insert(city.params().city_code.clone());
    }
    assert_eq!(prefixes.len(), 16);
    assert_eq!(keys.id_numbers.len(), 16_000);
    assert_eq!(duplicates(&keys.id_numbers), 0);
    assert_eq!(keys.shared_record_ids(), 0);
    // A birth in the province takes the first number its registry does not
    // hold; a migrant's number from a province county could be that one.
    assert!(!keys.migrant_id_numbers.is_empty());
    let in_province: Vec<&String> = keys.migrant_id_numbers.iter().filter(|id| id.starts_with("37")).collect();
    assert!(in_province.is_empty(), "{} migrants registered in Shandong", in_province.len());
}
