//! Following the household registry: when a resident settles (落户) in the
//! city, their residence registration and permits end — driven by the
//! registry's change log, not by hand.
//!
//! The follower polls `LifeEvents.SettlementsSince` with the last sequence
//! it has applied, stored in the residence store, so a restart resumes
//! where it stopped and nothing is applied twice (ending is idempotent
//! anyway).
//!
//! A registry restored from a backup older than the residence store's
//! cursor would otherwise never be read again: its new batches reuse the
//! sequences the cursor has passed. `popbase restore` marks the registry's
//! store with a new epoch and the sequence it was restored at, and every
//! answer carries them: on a new epoch the cursor goes back to that
//! sequence (never forward), so batches written since the restore are read
//! and none before it twice. A registry restored by hand (a copied
//! checkpoint, no mark) is caught when its head is below the cursor.

use std::time::Duration;

use popbase_common::propagation::{TracedChannel, traced, unsampled_span};
use popbase_common::upstream::Dialer;
use popbase_common::{ServiceResult, Shutdown};
use popbase_proto::household::SettlementsSinceRequest;
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_storage::{Batch, Read};
use tracing::Instrument as _;

use crate::Permits;
use crate::tables::{self, COUNTERS, Counter};

const CURSOR: &str = "follow:household-settlements";
/// The registry restore epoch the cursor belongs to (0: never restored).
const EPOCH: &str = "follow:household-epoch";
const ACTOR: &str = "residence-follower";

impl Permits {
    /// The last household store sequence the follower has applied.
    pub fn follow_cursor(&self) -> ServiceResult<u64> {
        Ok(self
            .store()
            .get(&COUNTERS, &tables::counter_key(CURSOR))?
            .map_or(0, |c| c.value.next))
    }

    fn follow_epoch(&self) -> ServiceResult<u64> {
        Ok(self
            .store()
            .get(&COUNTERS, &tables::counter_key(EPOCH))?
            .map_or(0, |c| c.value.next))
    }

    fn set_follow_cursor(&self, sequence: u64) -> ServiceResult<()> {
        let mut batch = Batch::new(ACTOR, "follow_cursor");
        batch.put(&COUNTERS, tables::counter_key(CURSOR), &Counter { next: sequence });
        self.store().commit(batch)?;
        Ok(())
    }

    /// Moves the cursor to `sequence` of the registry's restore `epoch`, in one batch.
    fn rewind_follow_cursor(&self, sequence: u64, epoch: u64) -> ServiceResult<()> {
        let mut batch = Batch::new(ACTOR, "follow_cursor_rewound");
        batch.put(&COUNTERS, tables::counter_key(CURSOR), &Counter { next: sequence });
        batch.put(&COUNTERS, tables::counter_key(EPOCH), &Counter { next: epoch });
        self.store().commit(batch)?;
        Ok(())
    }
}

/// One poll: applies every settlement after the stored cursor; returns how
/// many residents it ended. Asking leaves no trace (every 2 s, mostly for
/// nothing); applying settlements does, in a span of its own.
pub async fn poll_once(
    permits: &Permits,
    client: &mut LifeEventsClient<TracedChannel>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut ended = 0;
    loop {
        let after = permits.follow_cursor()?;
        let answer = client
            .settlements_since(SettlementsSinceRequest {
                after_sequence: after,
                limit: 1000,
            })
            .instrument(unsampled_span("residence.settlement_poll"))
            .await?
            .into_inner();
        if answer.log_epoch != permits.follow_epoch()? {
            let from = after.min(answer.restored_at_sequence);
            tracing::warn!(
                cursor = after,
                restored_at = answer.restored_at_sequence,
                "the household registry was restored: following again from the sequence it was restored at"
            );
            permits.rewind_follow_cursor(from, answer.log_epoch)?;
            continue;
        }
        if answer.head_sequence < after {
            tracing::warn!(
                cursor = after,
                registry_head = answer.head_sequence,
                "the household registry is behind this follower (restored by hand?): following again from its head"
            );
            permits.set_follow_cursor(answer.head_sequence)?;
            continue;
        }
        if !answer.settlements.is_empty() {
            let applying = tracing::info_span!("residence.settlements_followed", settlements = answer.settlements.len());
            ended += apply(permits, &answer.settlements).instrument(applying).await?;
        }
        if answer.last_sequence <= after {
            return Ok(ended);
        }
        permits.set_follow_cursor(answer.last_sequence)?;
    }
}

/// Ends the permits of the settlers of `settlements`; how many residents it ended.
async fn apply(
    permits: &Permits,
    settlements: &[popbase_proto::household::RegistryEvent],
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut ended = 0;
    for event in settlements {
        let on = event
            .occurred_on
            .and_then(|d| d.to_naive())
            .unwrap_or_else(popbase_domain::clock::today);
        for id in event.id_numbers.iter().take(1) {
            let permits = permits.clone();
            let id = id.clone();
            if tokio::task::spawn_blocking(move || permits.end_by_settlement(ACTOR, &id, on)).await?? {
                ended += 1;
            }
        }
    }
    Ok(ended)
}

/// Polls `household` every `interval` until `shutdown`; errors are logged
/// and retried at the next tick (the registry may start after us).
pub async fn follow_settlements(permits: Permits, household: String, dialer: Dialer, interval: Duration, shutdown: Shutdown) {
    let channel = match dialer.channel("household", &household) {
        Ok(channel) => channel,
        Err(e) => {
            tracing::error!(upstream = %household, error = %e, "bad household upstream address; settlement follower not started");
            return;
        }
    };
    let mut client = LifeEventsClient::new(traced(channel));
    loop {
        match poll_once(&permits, &mut client).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "residence permits ended by settlement"),
            Err(e) => tracing::warn!(upstream = %household, error = %e, "settlement follower poll failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => return,
        }
    }
}
