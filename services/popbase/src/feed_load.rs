//! `popbase feed-load`: streams a generated city's department feeds into a
//! running feeds role through `Feeds.Ingest`, the way a department would, and
//! reports the ingest rate. Against a store that already holds the same city
//! (`popbase gen` with the same seed), `--newer-by-ms` makes every record a
//! newer version — a full monthly refresh: match, history, upsert.

use std::time::Instant;

use anyhow::Context;
use popbase_household::registry::HouseholdWithMembers;
use popbase_proto::feeds::FeedRecord;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_residence::permits::ResidentRecords;
use popbase_synth::{CityGenerator, CityParams, CitySink};
use tokio::sync::mpsc;

/// Hands each generated feed chunk to the stream; drops the rest.
struct FeedForwarder {
    sender: mpsc::Sender<FeedRecord>,
    newer_by_ms: i64,
}

impl CitySink for FeedForwarder {
    fn households(&mut self, _: Vec<HouseholdWithMembers>) -> Result<(), String> {
        Ok(())
    }

    fn residents(&mut self, _: Vec<ResidentRecords>) -> Result<(), String> {
        Ok(())
    }

    fn feeds(&mut self, chunk: Vec<FeedRecord>) -> Result<(), String> {
        for mut record in chunk {
            record.as_of_unix_millis += self.newer_by_ms;
            self.sender
                .blocking_send(record)
                .map_err(|_| "the ingest stream closed".to_string())?;
        }
        Ok(())
    }
}

pub async fn run(target: &str, city: &str, persons: u64, seed: u64, newer_by_ms: i64) -> anyhow::Result<()> {
    let generator = CityGenerator::new(CityParams::new(city, persons, seed))?;
    let mut client = FeedsClient::connect(target.to_string())
        .await
        .with_context(|| format!("connecting to {target}"))?
        .max_decoding_message_size(256 << 20);
    let (sender, receiver) = mpsc::channel(10_000);
    let started = Instant::now();
    let producer = tokio::task::spawn_blocking(move || generator.run(&mut FeedForwarder { sender, newer_by_ms }));
    let summary = client
        .ingest(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .context("ingest")?
        .into_inner();
    producer.await.context("generator task")??;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "feed-load: {} records in {seconds:.1} s ({:.0} records/s): {} accepted, {} unmatched, {} duplicates, {} stale, {} rejected",
        summary.received,
        summary.received as f64 / seconds.max(1e-9),
        summary.accepted,
        summary.unmatched,
        summary.duplicates,
        summary.stale,
        summary.rejected
    );
    let mut reasons: std::collections::BTreeMap<(String, String), u64> = std::collections::BTreeMap::new();
    for result in &summary.results {
        // The first words of the reason: enough to group, without the masked IDs.
        let reason: String = result.reason.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        *reasons
            .entry((format!("{:?}", result.outcome()), format!("{} {reason}", result.field)))
            .or_default() += 1;
    }
    for ((outcome, why), count) in reasons {
        println!("feed-load:   {count:>9} {outcome} {why}");
    }
    Ok(())
}
