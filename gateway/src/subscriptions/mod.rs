//! Change notifications: departments subscribe to the changes about the
//! people they serve and receive them as the storage roles commit them.
//!
//! * [`book`]: the ledger's records of subscriptions, rosters and
//!   acknowledged positions (shared by every gateway replica);
//! * [`request`]: what a department may ask for, checked at the edge;
//! * [`places`]: how many streams a replica runs, and one per subscription;
//! * [`figures`]: streams, deliveries and lag per department, for Prometheus;
//! * [`follow`]: one Subscribe stream: reads the roles' change feeds
//!   from the acknowledged position, keeps what the scope holds, and hands
//!   each batch through the gate (minimise, audit) before it leaves.
//!
//! The gRPC adapter is [`crate::grpc::subscriptions`].

pub mod book;
pub mod figures;
pub mod follow;
pub mod places;
pub mod request;

use std::collections::BTreeSet;

use popbase_common::upstream::Upstream;
use popbase_common::{ServiceError, ServiceResult};
use popbase_domain::mask::mask_id_number;
use popbase_proto::changes::ChangesSinceRequest;
use popbase_proto::changes::change_feed_client::ChangeFeedClient;
use popbase_proto::gateway::{Change, ChangeKind, Position, Subscription};

use crate::gate::{Minimise, Release};
use crate::sources::upstream;

/// Most persons added or removed in one UpdateRoster call.
pub const MAX_ROSTER_CHANGES: usize = 10_000;
/// Changes per notification when the subscriber names none, and the most.
pub const DEFAULT_BATCH: usize = 500;
pub const MAX_BATCH: usize = 5_000;

/// The catalogue names of change kinds: an approval lists those a
/// department may receive.
pub const KIND_NAMES: [(ChangeKind, &str); 12] = [
    (ChangeKind::Birth, "birth"),
    (ChangeKind::Death, "death"),
    (ChangeKind::Settlement, "settlement"),
    (ChangeKind::MoveOut, "move_out"),
    (ChangeKind::CityTransfer, "city_transfer"),
    (ChangeKind::HouseholdChange, "household_change"),
    (ChangeKind::Marriage, "marriage"),
    (ChangeKind::Divorce, "divorce"),
    (ChangeKind::PermitGranted, "permit_granted"),
    (ChangeKind::PermitExpired, "permit_expired"),
    (ChangeKind::PermitCancelled, "permit_cancelled"),
    (ChangeKind::InsuranceStatus, "insurance_status"),
];

/// The fields a change may carry beyond its kind, source and position.
pub const FIELDS: [&str; 7] = [
    "id_number",
    "relation",
    "occurred_on",
    "committee_code",
    "from_code",
    "household_id",
    "detail",
];

pub fn kind_name(kind: i32) -> Option<&'static str> {
    KIND_NAMES.iter().find(|(k, _)| *k as i32 == kind).map(|(_, name)| *name)
}

/// A subscription id: `sub-` and 24 lower-case hex digits.
pub fn new_subscription_id() -> String {
    format!("sub-{}", hex::encode(rand::random::<[u8; 12]>()))
}

pub fn check_subscription_id(id: &str) -> ServiceResult<()> {
    let well_formed = id
        .strip_prefix("sub-")
        .is_some_and(|hex| hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if !well_formed {
        return Err(ServiceError::invalid(
            "subscription_id",
            "must be an id CreateSubscription answered (sub- and 24 hex digits)",
        ));
    }
    Ok(())
}

/// Whether a change falls in the subscription's division: where the
/// person is registered after it, or where a move came from. Feed changes
/// name a county, so they match county and wider scopes.
pub fn in_division(change: &Change, division: &str) -> bool {
    change.committee_code.starts_with(division) || (!change.from_code.is_empty() && change.from_code.starts_with(division))
}

/// Clears every field the release does not keep; the masked ID number
/// stays (it identifies the change without the clear number).
impl Minimise for Change {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        if self.masked_id_number.is_empty() {
            self.masked_id_number = mask_id_number(&self.id_number);
        }
        let mut release = Release::new(approved);
        if !release.keep("id_number") {
            self.id_number.clear();
        }
        if !release.keep("relation") {
            self.relation.clear();
        }
        if !release.keep("occurred_on") {
            self.occurred_on = None;
        }
        if !release.keep("committee_code") {
            self.committee_code.clear();
        }
        if !release.keep("from_code") {
            self.from_code.clear();
        }
        if !release.keep("household_id") {
            self.household_id.clear();
        }
        if !release.keep("detail") {
            self.detail.clear();
        }
        release.into_fields()
    }
}

/// What a subscription record answers: every field as stored (it holds
/// nobody's data but the department's own choices).
impl Minimise for Subscription {
    fn minimise(&mut self, _approved: &BTreeSet<String>) -> Vec<String> {
        vec!["subscription".into()]
    }
}

/// The three change feeds the gateway follows, in process or over the mesh.
#[derive(Clone)]
pub struct ChangeFeeds {
    pub household: ChangeFeedClient<Upstream>,
    pub residence: ChangeFeedClient<Upstream>,
    pub feeds: ChangeFeedClient<Upstream>,
}

impl ChangeFeeds {
    pub fn over(household: Upstream, residence: Upstream, feeds: Upstream) -> Self {
        Self {
            household: ChangeFeedClient::new(household),
            residence: ChangeFeedClient::new(residence),
            feeds: ChangeFeedClient::new(feeds),
        }
    }

    /// Where a new subscription starts in each log: after the asked
    /// sequence (`start_*`), or at the newest change. An asked start must
    /// lie within the log and its next batch within `retention_days`.
    pub async fn starts(&self, asked: [Option<u64>; 3], retention_days: u32) -> ServiceResult<Position> {
        let oldest = chrono::Utc::now().timestamp_millis() - i64::from(retention_days) * 24 * 3600 * 1000;
        let start = |mut client: ChangeFeedClient<Upstream>, asked: Option<u64>, field: &'static str, what: &'static str| async move {
            let request = ChangesSinceRequest {
                after_sequence: asked.unwrap_or(u64::MAX),
                limit: 0,
                wait_millis: 0,
            };
            let answer = client
                .changes_since(request)
                .await
                .map_err(|status| upstream(what, status))?
                .into_inner();
            let Some(asked) = asked else {
                return Ok(answer.head_sequence);
            };
            if asked > answer.head_sequence {
                return Err(ServiceError::invalid(
                    field,
                    "lies beyond the newest change: take it from an export's snapshot_seq",
                ));
            }
            if answer.next_committed_unix_millis != 0 && answer.next_committed_unix_millis < oldest {
                return Err(ServiceError::invalid(
                    field,
                    format!("is more than {retention_days} days back: take a newer snapshot"),
                ));
            }
            Ok(asked)
        };
        let [household, residence, feeds] = asked;
        let (household, residence, feeds) = tokio::try_join!(
            start(self.household.clone(), household, "start_household", "the household registry"),
            start(self.residence.clone(), residence, "start_residence", "the residence service"),
            start(self.feeds.clone(), feeds, "start_feeds", "the feeds"),
        )?;
        Ok(Position {
            household,
            residence,
            feeds,
        })
    }
}
