//! Registry statistics: population by division and changes by period.
//!
//! Population reads only the committee indexes: the key holds the committee
//! and the ID number, and the ID number holds birth date and sex, so no row
//! is decoded. Changes read the event table, which is keyed by date.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use popbase_domain::calendar::age_on;
use popbase_domain::{CommitteeKind, Divisions};
use popbase_proto::household::{
    AgeBand, ChangesResponse, DivisionPopulation, EventKind, KindCount, PathCount, PopulationResponse, RegistryEvent,
};
use popbase_storage::keys::KeyReader;
use popbase_storage::{Read, StorageResult};

use crate::Registry;
use crate::tables::{self, HOUSEHOLDS_BY_COMMITTEE, PERSONS_BY_COMMITTEE};

/// Age bands (inclusive lower bounds): 0–5 preschool, 6–14 compulsory
/// education, 15–17, 18–34, 35–59, 60–79, 80+.
pub const AGE_BANDS: [u32; 7] = [0, 6, 15, 18, 35, 60, 80];

fn band_of(age: u32) -> usize {
    AGE_BANDS.iter().rposition(|from| age >= *from).unwrap_or(0)
}

pub(crate) fn empty(code: &str) -> DivisionPopulation {
    DivisionPopulation {
        division_code: code.to_string(),
        division_name: Divisions::embedded().get(code).map(|d| d.name.clone()).unwrap_or_default(),
        age_bands: AGE_BANDS
            .iter()
            .enumerate()
            .map(|(i, from)| AgeBand {
                from_age: *from,
                to_age: AGE_BANDS.get(i + 1).map_or(0, |next| next - 1),
                persons: 0,
            })
            .collect(),
        ..Default::default()
    }
}

/// The code length one level below a division code of `len` digits.
fn child_len(len: usize) -> usize {
    match len {
        2 => 4,
        4 => 6,
        6 => 9,
        _ => 12,
    }
}

pub(crate) fn add_person(part: &mut DivisionPopulation, id: &str, on: NaiveDate) {
    part.persons += 1;
    if id.get(16..17).and_then(|d| d.parse::<u8>().ok()).is_some_and(|d| d % 2 == 1) {
        part.male += 1;
    } else {
        part.female += 1;
    }
    if let Some(birth) = id.get(6..14).and_then(|b| NaiveDate::parse_from_str(b, "%Y%m%d").ok()) {
        part.age_bands[band_of(age_on(birth, on))].persons += 1;
    }
}

pub(crate) fn committee_and_id(key: &[u8]) -> StorageResult<(String, String)> {
    let mut reader = KeyReader::new(key);
    Ok((reader.str()?, reader.str()?))
}

impl Registry {
    /// Registered population of a division and of each division one level down.
    pub fn population(&self, division_code: &str, on: NaiveDate) -> StorageResult<PopulationResponse> {
        let part_len = child_len(division_code.len());
        let mut total = empty(division_code);
        let mut parts: BTreeMap<String, DivisionPopulation> = BTreeMap::new();
        let prefix = tables::division_prefix(division_code);
        self.store().for_each_index_key(&PERSONS_BY_COMMITTEE, &prefix, |key| {
            let (committee, id) = committee_and_id(key)?;
            let part_code = committee.get(..part_len).unwrap_or(&committee).to_string();
            add_person(&mut total, &id, on);
            add_person(parts.entry(part_code.clone()).or_insert_with(|| empty(&part_code)), &id, on);
            Ok(true)
        })?;
        self.store().for_each_index_key(&HOUSEHOLDS_BY_COMMITTEE, &prefix, |key| {
            let (committee, _) = committee_and_id(key)?;
            let part_code = committee.get(..part_len).unwrap_or(&committee).to_string();
            total.households += 1;
            parts.entry(part_code.clone()).or_insert_with(|| empty(&part_code)).households += 1;
            Ok(true)
        })?;
        Ok(PopulationResponse {
            total: Some(total),
            parts: parts.into_values().collect(),
        })
    }

    /// Changes recorded from `from` to `to` (inclusive) touching a division.
    pub fn changes(&self, division_code: &str, from: NaiveDate, to: NaiveDate) -> StorageResult<ChangesResponse> {
        let mut answer = ChangesResponse::default();
        let mut by_path: BTreeMap<i32, u64> = BTreeMap::new();
        let mut by_kind: BTreeMap<i32, u64> = BTreeMap::new();
        let mut after = None;
        loop {
            let (events, last) = self.events_between(from, to, after.as_deref(), 10_000)?;
            for event in events.iter().filter(|e| touches(e, division_code)) {
                count(event, division_code, &mut answer, &mut by_path, &mut by_kind);
            }
            match last {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        answer.settlements_by_path = by_path.into_iter().map(|(path, persons)| PathCount { path, persons }).collect();
        answer.collectives_by_kind = by_kind
            .into_iter()
            .map(|(kind, households)| KindCount { kind, households })
            .collect();
        Ok(answer)
    }
}

fn touches(event: &RegistryEvent, division_code: &str) -> bool {
    event.to_committee_code.starts_with(division_code) || event.from_code.starts_with(division_code)
}

fn is_urban(code: &str) -> Option<bool> {
    if code.len() != 12 {
        return None;
    }
    CommitteeKind::of_code(code).map(|k| k.is_urban())
}

fn count(
    event: &RegistryEvent,
    division_code: &str,
    answer: &mut ChangesResponse,
    by_path: &mut BTreeMap<i32, u64>,
    by_kind: &mut BTreeMap<i32, u64>,
) {
    let arrives = event.to_committee_code.starts_with(division_code);
    let persons = event.id_numbers.len().max(1) as u64;
    let kind = EventKind::try_from(event.kind).unwrap_or_default();
    match kind {
        EventKind::Birth if arrives => answer.births += 1,
        EventKind::Death => answer.deaths += 1,
        EventKind::MoveOut => answer.moved_out += persons,
        EventKind::Settlement if arrives => {
            answer.settlements += persons;
            *by_path.entry(event.path).or_default() += persons;
        }
        EventKind::CityTransfer if arrives => answer.city_transfers += persons,
        EventKind::CollectiveCreated if arrives => {
            answer.collective_households += 1;
            *by_kind.entry(event.household_kind).or_default() += 1;
        }
        _ => {}
    }
    let moves = matches!(kind, EventKind::Settlement | EventKind::CityTransfer | EventKind::HouseholdMove);
    if moves && arrives && is_urban(&event.from_code) == Some(false) && is_urban(&event.to_committee_code) == Some(true) {
        answer.rural_to_urban += persons;
    }
}
