//! The generation loop: registered households first, then migrant families,
//! streamed to a sink in chunks so a 4.7-million-person city fits in memory.

use chrono::NaiveDate;
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::FeedRecord;
use popbase_proto::household::StandardAddress;
use popbase_residence::permits::ResidentRecords;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::feeds::{FeedCounts, FeedFactory};
use crate::geography::CityMap;
use crate::households::{COLLECTIVE_KINDS, HouseholdBuilder, pick_weighted};
use crate::migrants::MigrantBuilder;
use crate::people::IdAllocator;

/// Share of the city's residents registered (户籍) there; the rest live there
/// with residence registration. Zibo: about 4.2 of 4.7 million.
pub const REGISTERED_SHARE: f64 = 0.88;
/// One collective household per this many family households.
pub const FAMILIES_PER_COLLECTIVE: u64 = 300;
/// Households per chunk handed to the sink.
pub const CHUNK_HOUSEHOLDS: usize = 2000;

#[derive(Debug, Error)]
pub enum GenerateError {
    #[error("city: {0}")]
    City(String),
    #[error("parameters: {0}")]
    Params(String),
    #[error("sink: {0}")]
    Sink(String),
}

#[derive(Debug, Clone)]
pub struct CityParams {
    /// 4-digit prefecture city code with committee data (a Shandong city).
    pub city_code: String,
    /// Residents in all: registered plus non-registered.
    pub persons: u64,
    pub seed: u64,
    /// "Today" inside the city: ages, permits and dates are relative to it,
    /// so the same seed gives the same city whenever it is run.
    pub reference_date: NaiveDate,
    /// The first feed record number (1 for a city alone; a province's
    /// cities take separate ranges, see [`crate::province`]).
    pub first_record: u64,
    /// Generated as one city of a province (see [`crate::province`]):
    /// migrants then come from outside the province only.
    pub in_province: bool,
}

impl CityParams {
    pub fn new(city_code: &str, persons: u64, seed: u64) -> Self {
        Self {
            city_code: city_code.to_string(),
            persons,
            seed,
            reference_date: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default(),
            first_record: 1,
            in_province: false,
        }
    }
}

/// Where generated records go. Errors stop the generation.
pub trait CitySink {
    fn households(&mut self, chunk: Vec<HouseholdWithMembers>) -> Result<(), String>;
    fn residents(&mut self, chunk: Vec<ResidentRecords>) -> Result<(), String>;
    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String>;
    /// Called with the number of persons generated so far (progress bars).
    fn progress(&mut self, _persons: u64) {}
    /// The city's address base (标准地址), once, before any household.
    fn standard_addresses(&mut self, _rows: Vec<StandardAddress>) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CitySummary {
    pub registered_persons: u64,
    pub family_households: u64,
    /// By kind, in [`COLLECTIVE_KINDS`] order.
    pub collective_households: Vec<(String, u64)>,
    pub migrants: u64,
    pub residence_permits: u64,
    pub feed_records: u64,
    pub feeds: FeedCounts,
}

impl CitySummary {
    /// Adds `other`'s counts (a province's cities into one summary).
    pub fn add(&mut self, other: &CitySummary) {
        self.registered_persons += other.registered_persons;
        self.family_households += other.family_households;
        for (kind, n) in &other.collective_households {
            match self.collective_households.iter_mut().find(|(k, _)| k == kind) {
                Some((_, total)) => *total += n,
                None => self.collective_households.push((kind.clone(), *n)),
            }
        }
        self.migrants += other.migrants;
        self.residence_permits += other.residence_permits;
        self.feed_records += other.feed_records;
        self.feeds.add(&other.feeds);
    }
}

pub struct CityGenerator {
    params: CityParams,
    map: CityMap,
}

impl CityGenerator {
    pub fn new(params: CityParams) -> Result<Self, GenerateError> {
        Self::check(&params)?;
        let map = CityMap::load(&params.city_code)?;
        Self::with_map(params, map)
    }

    fn check(params: &CityParams) -> Result<(), GenerateError> {
        if params.persons == 0 {
            return Err(GenerateError::Params("persons must be at least 1".into()));
        }
        if params.persons > 50_000_000 {
            return Err(GenerateError::Params("persons above 50 million is not a city".into()));
        }
        Ok(())
    }

    /// A generator for a map already loaded (a province plans its cities'
    /// shares from their maps, then generates from the same maps).
    pub fn with_map(params: CityParams, map: CityMap) -> Result<Self, GenerateError> {
        Self::check(&params)?;
        if map.city_code != params.city_code {
            return Err(GenerateError::Params(format!(
                "the map is of {}, not {}",
                map.city_code, params.city_code
            )));
        }
        Ok(Self { params, map })
    }

    pub fn params(&self) -> &CityParams {
        &self.params
    }

    pub fn map(&self) -> &CityMap {
        &self.map
    }

    pub fn run(&self, sink: &mut impl CitySink) -> Result<CitySummary, GenerateError> {
        self.run_sharing(sink, &mut IdAllocator::default())
    }

    /// [`CityGenerator::run`], taking ID numbers from `ids`: the cities of
    /// a province share one allocator, since a migrant born in one city's
    /// county and living in another must not get the number of someone
    /// registered where they were born.
    pub fn run_sharing(&self, sink: &mut impl CitySink, ids: &mut IdAllocator) -> Result<CitySummary, GenerateError> {
        let mut households = HouseholdBuilder::new(&self.map, self.params.reference_date);
        std::mem::swap(&mut households.people.ids, ids);
        let summary = self.generate(sink, &mut households);
        std::mem::swap(&mut households.people.ids, ids);
        summary
    }

    fn generate(&self, sink: &mut impl CitySink, households: &mut HouseholdBuilder<'_>) -> Result<CitySummary, GenerateError> {
        let sink_err = GenerateError::Sink;
        let mut rng = ChaCha8Rng::seed_from_u64(self.params.seed);
        let mut migrants = if self.params.in_province {
            MigrantBuilder::default().outside_province_only()
        } else {
            MigrantBuilder::default()
        };
        let mut feeds = FeedFactory::new(&self.map, self.params.reference_date).numbering_from(self.params.first_record);
        let mut summary = CitySummary {
            collective_households: COLLECTIVE_KINDS.iter().map(|(k, _)| (k.as_str_name().to_string(), 0)).collect(),
            ..Default::default()
        };
        let registered_target = ((self.params.persons as f64) * REGISTERED_SHARE).round().max(1.0) as u64;

        sink.standard_addresses(self.map.gazetteer.clone()).map_err(sink_err)?;
        let schools = feeds.school_records();
        summary.feed_records += schools.len() as u64;
        sink.feeds(schools).map_err(sink_err)?;

        let mut chunk = Vec::with_capacity(CHUNK_HOUSEHOLDS);
        let mut feed_chunk = Vec::new();
        let mut families_since_collective = 0;
        while summary.registered_persons < registered_target {
            let generated = if families_since_collective >= FAMILIES_PER_COLLECTIVE {
                families_since_collective = 0;
                let kind = pick_weighted(&mut rng, &COLLECTIVE_KINDS);
                let slot = COLLECTIVE_KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
                summary.collective_households[slot].1 += 1;
                households.collective(&mut rng, kind)
            } else {
                families_since_collective += 1;
                summary.family_households += 1;
                households.family(&mut rng)
            };
            summary.registered_persons += generated.record.members.len() as u64;
            let map = households.map;
            feeds.for_household(&mut rng, &generated, &mut households.people.ids, map, &mut feed_chunk);
            chunk.push(generated.record);
            if chunk.len() >= CHUNK_HOUSEHOLDS {
                summary.feed_records += feed_chunk.len() as u64;
                sink.households(std::mem::take(&mut chunk)).map_err(sink_err)?;
                sink.feeds(std::mem::take(&mut feed_chunk)).map_err(sink_err)?;
                sink.progress(summary.registered_persons);
            }
        }
        summary.feed_records += feed_chunk.len() as u64;
        sink.households(std::mem::take(&mut chunk)).map_err(sink_err)?;
        sink.feeds(std::mem::take(&mut feed_chunk)).map_err(sink_err)?;

        let mut residents = Vec::with_capacity(CHUNK_HOUSEHOLDS);
        while summary.registered_persons + summary.migrants < self.params.persons {
            let remaining = self.params.persons - summary.registered_persons - summary.migrants;
            let family = migrants.family(&mut rng, households, remaining);
            feeds.for_migrants(&mut rng, &family, &mut feed_chunk);
            summary.migrants += family.members.len() as u64;
            summary.residence_permits += family.members.iter().map(|m| m.permits.len() as u64).sum::<u64>();
            residents.extend(family.members);
            if residents.len() >= CHUNK_HOUSEHOLDS {
                summary.feed_records += feed_chunk.len() as u64;
                sink.residents(std::mem::take(&mut residents)).map_err(sink_err)?;
                sink.feeds(std::mem::take(&mut feed_chunk)).map_err(sink_err)?;
                sink.progress(summary.registered_persons + summary.migrants);
            }
        }
        summary.feed_records += feed_chunk.len() as u64;
        sink.residents(residents).map_err(sink_err)?;
        sink.feeds(feed_chunk).map_err(sink_err)?;
        sink.progress(summary.registered_persons + summary.migrants);
        summary.feeds = feeds.counts.clone();
        Ok(summary)
    }
}
