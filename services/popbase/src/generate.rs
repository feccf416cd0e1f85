//! `popbase gen`: a synthetic city (or a province of them), straight into
//! the service stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use popbase_common::Config;
use popbase_storage::{Durability, StoreOptions};
use popbase_synth::events::EventCounts;
use popbase_synth::load::StoreSink;
use popbase_synth::people::IdAllocator;
use popbase_synth::{CityGenerator, CityParams, CitySummary};

/// Whether `gen` follows the load with a year of life events (the
/// statistics' history). A province-size load may skip it: at 20 million
/// persons the year took 423 s beside a 490 s load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventsYear {
    Run,
    Skip,
}

pub fn run(config: &Config, city: &str, persons: u64, seed: u64, year: EventsYear) -> anyhow::Result<CitySummary> {
    let generator = CityGenerator::new(CityParams::new(city, persons, seed))?;
    generate(config, vec![generator], persons, year)
}

/// `popbase gen --province`: every city of the province (Shandong: 16) into
/// the one data directory, persons shared out by the cities' weights.
pub fn run_province(config: &Config, province: &str, persons: u64, seed: u64, year: EventsYear) -> anyhow::Result<CitySummary> {
    let cities = popbase_synth::province::plan(province, persons, seed)?;
    generate(config, cities, persons, year)
}

/// Generates `cities` one after another into empty stores (sharing one ID
/// allocator), then (unless skipped) a year of life events in each, and
/// reports what it made.
fn generate(config: &Config, cities: Vec<CityGenerator>, persons: u64, year: EventsYear) -> anyhow::Result<CitySummary> {
    let options = StoreOptions {
        durability: Durability::NoWal,
        ..config.store_options()
    };
    let sink = StoreSink::open(&config.data_dir, options).context("opening the stores")?;
    if sink.registry.store().last_seq() > 0 {
        anyhow::bail!(
            "{} already holds a city; generate into an empty --data directory",
            config.data_dir.display()
        );
    }
    let bar = ProgressBar::new(persons);
    bar.set_style(
        ProgressStyle::with_template("{spinner} generating [{bar:40}] {human_pos}/{human_len} persons {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done_before = Arc::new(AtomicU64::new(0));
    let progress = bar.clone();
    let before = done_before.clone();
    let mut sink = sink.with_progress(move |n| progress.set_position(before.load(Ordering::Relaxed) + n));
    let started = Instant::now();
    let mut ids = IdAllocator::default();
    let mut summary = CitySummary::default();
    for city in &cities {
        let made = city.run_sharing(&mut sink, &mut ids)?;
        done_before.fetch_add(made.registered_persons + made.migrants, Ordering::Relaxed);
        if cities.len() > 1 {
            bar.suspend(|| {
                crate::say::info(&format!(
                    "popbase: city {}: {} persons ({} registered) at {:.1} s",
                    city.params().city_code,
                    made.registered_persons + made.migrants,
                    made.registered_persons,
                    started.elapsed().as_secs_f64()
                ))
            });
        }
        summary.add(&made);
    }
    // Every number given out is in the stores now; the events year asks
    // the registry, and a province's allocator is hundreds of megabytes.
    drop(ids);
    bar.finish_and_clear();
    sink.flush().context("flushing the stores")?;
    let loaded = started.elapsed().as_secs_f64();
    if year == EventsYear::Run {
        drive_years(&sink, &cities)?;
    } else {
        crate::say::info("popbase: the year of life events was skipped (--skip-events-year)");
    }
    // The events year wrote through the WAL without a flush: settled, the
    // stores start without replaying it or compacting.
    let settling = Instant::now();
    sink.settle().context("settling the stores")?;
    crate::say::info(&format!(
        "popbase: stores flushed and compacted in {:.1} s",
        settling.elapsed().as_secs_f64()
    ));
    let elapsed = loaded;
    let rate = persons as f64 / elapsed.max(1e-9);
    let bytes = dir_size(&config.data_dir);
    crate::say::info(&format!(
        "popbase: generated {persons} persons ({} registered in {} family and {} collective households, {} non-registered with {} permits, {} feed records) in {elapsed:.1} s ({rate:.0} persons/s), {:.1} MiB on disk",
        summary.registered_persons,
        summary.family_households,
        summary.collective_households.iter().map(|(_, n)| n).sum::<u64>(),
        summary.migrants,
        summary.residence_permits,
        summary.feed_records,
        bytes as f64 / (1 << 20) as f64,
    ));
    tracing::info!(persons, cities = cities.len(), seconds = elapsed, bytes, "generated");
    Ok(summary)
}

/// A year of life events in each city through the registry's own code,
/// buffered (the store is flushed at the end) so the statistics have
/// history.
fn drive_years(sink: &StoreSink, cities: &[CityGenerator]) -> anyhow::Result<()> {
    let started = Instant::now();
    let registry = sink.registry.clone().with_durability(Durability::Buffered);
    let mut year = EventCounts::default();
    for city in cities {
        let params = city.params();
        year.add(&popbase_synth::events::drive_year(
            &registry,
            city.map(),
            params.reference_date,
            params.seed,
        )?);
    }
    crate::say::info(&format!(
        "popbase: a year of life events ({} to {}) in {:.1} s: {} settlements ({} refused), {} rural-to-urban, {} births, {} deaths, {} new collective households",
        year.from.map(|d| d.to_string()).unwrap_or_default(),
        year.to.map(|d| d.to_string()).unwrap_or_default(),
        started.elapsed().as_secs_f64(),
        year.settlements(),
        year.refused_settlements,
        year.rural_to_urban,
        year.births,
        year.deaths,
        year.collectives_by_kind.values().sum::<u64>(),
    ));
    Ok(())
}

/// Bytes under `path` (the stores' disk footprint).
pub fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
