//! One Subscribe stream. Each round reads the three change feeds after
//! the stream's position, merges them in commit-time order (each source
//! stays in its own commit order), keeps the changes of the subscribed
//! kinds about persons in scope, and sends them in notifications of at
//! most `max_batch`, each audited change by change (the subject's access
//! log shows it) before it leaves. Sending waits for the subscriber to
//! read (a channel of one notification over HTTP/2 flow control), so a
//! slow reader slows its own stream and nothing else.
//!
//! Positions are at-least-once: a notification's position names, per
//! source, the last batch all of whose changes have been sent; a batch
//! split between two notifications is sent again after a resume.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use popbase_common::upstream::Upstream;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::changes::ChangesSinceRequest;
use popbase_proto::changes::change_feed_client::ChangeFeedClient;
use popbase_proto::gateway::{Change, Notification, Position, Subscription};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::book::MAX_ROSTER_PAGE;
use super::{ChangeFeeds, in_division};
use crate::gate::{Admission, Gate};
use crate::sources::upstream;

/// Batches asked of each feed per round.
const SCAN_BATCHES: u32 = 1_000;
/// After a round that found nothing new, the feeds are asked to answer
/// as soon as their next batch commits, or after this long.
const WAIT_FOR_COMMIT_MILLIS: u32 = 1_000;
/// Least time between notifications that only move the position on (each
/// is acknowledged, and each acknowledgement audited: a busy log of
/// changes out of scope would otherwise cost a record per round).
const POSITION_ONLY_EVERY: Duration = Duration::from_secs(5);

/// A stream's state between rounds.
pub struct Follow {
    pub gate: Arc<Gate>,
    pub feeds: ChangeFeeds,
    pub subscription: Subscription,
    /// The admission narrowed to the subscription's fields.
    pub admission: Admission,
    pub max_batch: usize,
    kinds: HashSet<i32>,
    /// The roster's version and its members' pseudonyms as 128-bit numbers
    /// (16 bytes a person: 80 MB at the 5,000,000 bound).
    roster: Option<(u64, HashSet<u128>)>,
    /// Where the next round reads from.
    read_from: Position,
    /// The position of the last notification sent.
    sent: Position,
    /// When the last position-only notification was sent.
    last_position_only: Option<std::time::Instant>,
    /// Whether each delivered subject's consent must stand (a conditional
    /// interface with no legal basis).
    consent: bool,
}

/// What one feed answered in a round.
struct Read {
    changes: VecDeque<Change>,
    last: u64,
}

impl Follow {
    pub fn new(
        gate: Arc<Gate>,
        feeds: ChangeFeeds,
        subscription: Subscription,
        admission: Admission,
        max_batch: usize,
        consent: bool,
    ) -> Self {
        Self {
            kinds: subscription.kinds.iter().copied().collect(),
            read_from: subscription.acknowledged.unwrap_or_default(),
            sent: subscription.acknowledged.unwrap_or_default(),
            gate,
            feeds,
            subscription,
            admission,
            max_batch,
            roster: None,
            last_position_only: None,
            consent,
        }
    }

    /// Runs until the subscriber goes away, a newer stream of the same
    /// subscription supersedes this one, or something fails (sent as the
    /// stream's last status).
    pub async fn run(mut self, out: mpsc::Sender<Result<Notification, Status>>, superseded: oneshot::Receiver<()>) {
        let mut superseded = std::pin::pin!(async move {
            // A dropped sender (the places gone) is no supersession.
            if superseded.await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        loop {
            let round = tokio::select! {
                round = self.round(&out) => round,
                () = &mut superseded => Err(ServiceError::Aborted("a newer Subscribe of this subscription took over".into())),
            };
            let waited = match round {
                Ok(true) => Ok(()),
                Ok(false) => tokio::select! {
                    () = self.wait_for_commit() => Ok(()),
                    () = out.closed() => return,
                    () = &mut superseded => Err(ServiceError::Aborted("a newer Subscribe of this subscription took over".into())),
                },
                Err(error) => Err(error),
            };
            if let Err(error) = waited {
                // Never wait on a reader that stopped reading: the last word is best effort.
                let _ = out.try_send(Err(self.gate.fail(&self.admission, error).await));
                return;
            }
            if out.is_closed() {
                return;
            }
        }
    }

    /// Until any of the three logs commits after the stream's read
    /// position (or a feed fails: the next round reports it).
    async fn wait_for_commit(&self) {
        let p = self.read_from;
        let wait = |mut client: ChangeFeedClient<Upstream>, after: u64| async move {
            let request = ChangesSinceRequest {
                after_sequence: after,
                limit: 0,
                wait_millis: WAIT_FOR_COMMIT_MILLIS,
            };
            let _ = client.changes_since(request).await;
        };
        tokio::select! {
            () = wait(self.feeds.household.clone(), p.household) => {}
            () = wait(self.feeds.residence.clone(), p.residence) => {}
            () = wait(self.feeds.feeds.clone(), p.feeds) => {}
        }
    }

    /// One round; whether it found anything new.
    async fn round(&mut self, out: &mpsc::Sender<Result<Notification, Status>>) -> ServiceResult<bool> {
        self.refresh_roster().await?;
        let p = self.read_from;
        let (household, residence, feeds) = tokio::try_join!(
            read(self.feeds.household.clone(), p.household, "the household registry"),
            read(self.feeds.residence.clone(), p.residence, "the residence service"),
            read(self.feeds.feeds.clone(), p.feeds, "the feeds"),
        )?;
        let moved = household.last != p.household || residence.last != p.residence || feeds.last != p.feeds;
        if !moved {
            return Ok(false);
        }
        if self.roster_changed().await? {
            // Someone added meanwhile must not be filtered out of what was
            // just read: read again with the new roster.
            return Ok(true);
        }
        let mut reads = [household, residence, feeds];
        let mut batch = Vec::new();
        while let Some(change) = next_in_time(&mut reads) {
            if self.wants(&change) && self.consented(&change).await? {
                batch.push(change);
            }
            if batch.len() >= self.max_batch {
                // Taken changes are all in `batch`: the reads' fronts are the first not sent.
                let position = self.sent_through(&reads);
                self.deliver(std::mem::take(&mut batch), position, out).await?;
            }
        }
        let end = Position {
            household: reads[0].last,
            residence: reads[1].last,
            feeds: reads[2].last,
        };
        self.deliver(batch, end, out).await?;
        self.read_from = end;
        Ok(true)
    }

    /// The position once every change taken from `reads` is sent: a source
    /// with changes left is through the batch before its next one.
    fn sent_through(&self, reads: &[Read; 3]) -> Position {
        let through = |read: &Read, from: u64| match read.changes.front() {
            Some(next) => next.sequence.saturating_sub(1).max(from),
            None => read.last,
        };
        Position {
            household: through(&reads[0], self.read_from.household),
            residence: through(&reads[1], self.read_from.residence),
            feeds: through(&reads[2], self.read_from.feeds),
        }
    }

    fn wants(&self, change: &Change) -> bool {
        if !self.kinds.contains(&change.kind) {
            return false;
        }
        match &self.roster {
            Some((_, members)) => pseudonym_number(&self.gate.pseudonym(&change.id_number)).is_some_and(|p| members.contains(&p)),
            None => in_division(change, &self.subscription.division_code),
        }
    }

    async fn consented(&self, change: &Change) -> ServiceResult<bool> {
        if !self.consent {
            return Ok(true);
        }
        let subjects = [self.gate.pseudonym(&change.id_number)];
        let used = crate::ledger::ConsentUse {
            subjects: &subjects,
            department: self.admission.department(),
            interface: self.admission.interface,
            purpose: &self.admission.purpose,
            today: popbase_domain::clock::today(),
        };
        Ok(self.gate.ledger.use_consents(used).await?.is_ok())
    }

    /// Audits and sends `changes` with `position`; an empty batch is sent
    /// only when it moves the position on, at most every
    /// [`POSITION_ONLY_EVERY`].
    async fn deliver(
        &mut self,
        changes: Vec<Change>,
        position: Position,
        out: &mpsc::Sender<Result<Notification, Status>>,
    ) -> ServiceResult<()> {
        if changes.is_empty() {
            let recent = self.last_position_only.is_some_and(|at| at.elapsed() < POSITION_ONLY_EVERY);
            if position == self.sent || recent {
                return Ok(());
            }
            self.last_position_only = Some(std::time::Instant::now());
        }
        let items = changes
            .into_iter()
            .map(|change| (self.admission.about(vec![self.gate.pseudonym(&change.id_number)]), change))
            .collect::<Vec<_>>();
        let changes = if items.is_empty() {
            Vec::new()
        } else {
            self.gate
                .release_items(items)
                .await
                .map_err(|s| ServiceError::Unavailable(s.message().to_string()))?
        };
        self.sent = position;
        // A subscriber gone meanwhile just ends the stream (run sees it);
        // one connected but reading nothing ends it after `stream_idle`.
        let now = chrono::Utc::now().timestamp_millis();
        let lag_millis: i64 = changes.iter().map(|c| (now - c.committed_unix_millis).max(0)).sum();
        let count = changes.len() as u64;
        let notification = Notification {
            changes,
            position: Some(position),
        };
        if tokio::time::timeout(self.gate.stream_idle, out.send(Ok(notification)))
            .await
            .is_err()
        {
            return Err(ServiceError::Aborted(format!(
                "the subscriber read nothing for {} s",
                self.gate.stream_idle.as_secs()
            )));
        }
        let figures = &self.gate.subscription_figures;
        figures.delivered(self.admission.department(), count, lag_millis as f64 / 1000.0);
        Ok(())
    }

    /// Whether the roster changed since it was loaded.
    async fn roster_changed(&self) -> ServiceResult<bool> {
        let Some((version, _)) = &self.roster else { return Ok(false) };
        let current = self.gate.ledger.subscription(&self.subscription.subscription_id).await?;
        Ok(current.is_none_or(|c| c.roster_version != *version))
    }

    /// Loads the roster again when an update changed it since.
    async fn refresh_roster(&mut self) -> ServiceResult<()> {
        if !self.subscription.roster {
            return Ok(());
        }
        let ledger = &self.gate.ledger;
        let id = &self.subscription.subscription_id;
        let current = ledger
            .subscription(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("subscription"))?;
        if self.roster.as_ref().is_some_and(|(version, _)| *version == current.roster_version) {
            return Ok(());
        }
        let mut members = HashSet::with_capacity(current.roster_size as usize);
        let mut after = String::new();
        loop {
            let page = ledger.roster_page(id, &after, MAX_ROSTER_PAGE).await?;
            let Some(last) = page.last().cloned() else { break };
            members.extend(page.iter().filter_map(|p| pseudonym_number(p)));
            after = last;
        }
        self.roster = Some((current.roster_version, members));
        Ok(())
    }
}

/// A 32-hex-digit pseudonym as the number it spells.
fn pseudonym_number(hex: &str) -> Option<u128> {
    u128::from_str_radix(hex, 16).ok()
}

/// The change with the earliest commit time at the front of the reads
/// (ties: household, residence, feeds), taken off its read.
fn next_in_time(reads: &mut [Read; 3]) -> Option<Change> {
    let source = reads
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.changes.front().map(|c| (c.committed_unix_millis, i)))
        .min()?
        .1;
    reads[source].changes.pop_front()
}

async fn read(mut client: ChangeFeedClient<Upstream>, after: u64, what: &'static str) -> ServiceResult<Read> {
    let request = ChangesSinceRequest {
        after_sequence: after,
        limit: SCAN_BATCHES,
        wait_millis: 0,
    };
    let answer = client.changes_since(request).await.map_err(|s| upstream(what, s))?.into_inner();
    // A log restored to before the position: follow it again from its head.
    let last = if answer.head_sequence < after {
        answer.head_sequence
    } else {
        answer.last_sequence
    };
    Ok(Read {
        changes: answer.changes.into(),
        last,
    })
}
