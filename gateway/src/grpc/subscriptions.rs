//! Subscriptions: each RPC is the gate's path around the
//! `ChangeNotifications` interface. A subscription belongs to the
//! department that created it: another department's id is NOT_FOUND,
//! exactly like an id that does not exist.

use std::sync::Arc;

use chrono::Utc;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::subscriptions_server::{Subscriptions, SubscriptionsServer};
use popbase_proto::gateway::{
    AcknowledgeRequest, CreateSubscriptionRequest, GetSubscriptionRequest, Notification, SubscribeRequest, Subscription,
    UpdateRosterRequest,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{require_purpose, today};
use crate::catalogue::{ShareClass, interface::CHANGE_NOTIFICATIONS as INTERFACE};
use crate::gate::{Admission, Ask, Caller, Gate};
use crate::subscriptions::book::MAX_ROSTER;
use crate::subscriptions::follow::Follow;
use crate::subscriptions::places::{PER_DEPARTMENT, StreamPlaces};
use crate::subscriptions::{ChangeFeeds, DEFAULT_BATCH, MAX_BATCH, check_subscription_id, new_subscription_id, request};

const DAY_MILLIS: i64 = 24 * 3600 * 1000;

#[derive(Clone)]
pub struct SubscriptionService {
    gate: Arc<Gate>,
    feeds: ChangeFeeds,
    retention_days: u32,
    /// Places for Subscribe streams on this replica (`limits.max_subscription_streams`).
    places: Arc<StreamPlaces>,
}

impl SubscriptionService {
    pub fn new(gate: Arc<Gate>, feeds: ChangeFeeds, retention_days: u32, max_streams: usize) -> Self {
        Self {
            gate,
            feeds,
            retention_days,
            places: StreamPlaces::new(max_streams, PER_DEPARTMENT),
        }
    }

    pub fn server(&self) -> SubscriptionsServer<Self> {
        SubscriptionsServer::new(self.clone())
    }

    /// The caller's own subscription `id`, authorised under its purpose
    /// (and, `delivering`, for its kinds and fields again: an approval
    /// withdrawn since stops its deliveries); anything else is refused and
    /// audited.
    async fn owned(&self, caller: &Caller, id: &str, subjects: &[String], delivering: bool) -> Result<(Subscription, Admission), Status> {
        let found = match check_subscription_id(id) {
            Ok(()) => self.gate.ledger.subscription(id).await,
            Err(e) => Err(e),
        };
        let subscription = match found {
            Ok(Some(s)) if s.department == caller.department => s,
            Ok(_) => {
                return Err(self
                    .gate
                    .refuse(caller, INTERFACE, "", ServiceError::not_found("subscription"))
                    .await);
            }
            Err(e) => return Err(self.gate.refuse(caller, INTERFACE, "", e).await),
        };
        let needs = if delivering { needs_of(&subscription) } else { Vec::new() };
        let ask = Ask {
            interface: INTERFACE,
            purpose: &subscription.purpose,
            subjects,
            units: 1,
            needs: &needs,
        };
        let admission = self.gate.authorise(caller, ask).await?;
        Ok((subscription, admission))
    }

    /// Refused when the position has not been acknowledged within the retention.
    fn retained(&self, subscription: &Subscription) -> ServiceResult<()> {
        let last = subscription.acknowledged_unix_millis.max(subscription.created_unix_millis);
        if Utc::now().timestamp_millis() - last <= i64::from(self.retention_days) * DAY_MILLIS {
            return Ok(());
        }
        let at = subscription.acknowledged.unwrap_or_default();
        Err(ServiceError::precondition(
            "subscription_id",
            format!(
                "not acknowledged for more than {} days, so its position is no longer kept: take snapshots with the exports' since_seq (household {}, residence {}, feeds {}) and create a new subscription",
                self.retention_days, at.household, at.residence, at.feeds
            ),
        ))
    }
}

/// The first source of `position` past its log's head.
fn beyond(position: &popbase_proto::gateway::Position, heads: &popbase_proto::gateway::Position) -> Option<&'static str> {
    [
        ("position.household", position.household, heads.household),
        ("position.residence", position.residence, heads.residence),
        ("position.feeds", position.feeds, heads.feeds),
    ]
    .into_iter()
    .find(|(_, at, head)| at > head)
    .map(|(field, _, _)| field)
}

fn needs_of(subscription: &Subscription) -> Vec<&'static str> {
    let kinds = subscription.kinds.iter().filter_map(|k| crate::subscriptions::kind_name(*k));
    let fields = subscription
        .fields
        .iter()
        .filter_map(|f| crate::subscriptions::FIELDS.iter().find(|known| **known == f.as_str()).copied());
    kinds.chain(fields).collect()
}

type NotificationStream = ReceiverStream<Result<Notification, Status>>;

#[tonic::async_trait]
impl Subscriptions for SubscriptionService {
    async fn create_subscription(&self, request: Request<CreateSubscriptionRequest>) -> Result<Response<Subscription>, Status> {
        let caller = self.gate.authenticate(&request, INTERFACE).await?;
        let body = request.get_ref();
        let wanted = match require_purpose(&body.purpose).and_then(|()| request::wanted(body, &self.gate.catalogue().city)) {
            Ok(wanted) => wanted,
            Err(e) => return Err(self.gate.refuse(&caller, INTERFACE, &body.purpose, e).await),
        };
        let ask = Ask {
            interface: INTERFACE,
            purpose: &body.purpose,
            subjects: &[],
            units: 1,
            needs: &wanted.needs,
        };
        let admission = self.gate.authorise(&caller, ask).await?;
        let asked = [body.start_household, body.start_residence, body.start_feeds];
        let created = async {
            let now = Utc::now().timestamp_millis();
            let subscription = Subscription {
                subscription_id: new_subscription_id(),
                department: caller.department.clone(),
                purpose: body.purpose.clone(),
                kinds: wanted.kinds,
                division_code: wanted.division_code,
                roster: wanted.roster,
                fields: wanted.fields,
                acknowledged: Some(self.feeds.starts(asked, self.retention_days).await?),
                acknowledged_unix_millis: now,
                created_unix_millis: now,
                ..Default::default()
            };
            self.gate.ledger.create_subscription(subscription).await
        };
        match created.await {
            Ok(subscription) => self.gate.release(admission, subscription, &[], 1).await.map(Response::new),
            Err(e) => Err(self.gate.fail(&admission, e).await),
        }
    }

    async fn get_subscription(&self, request: Request<GetSubscriptionRequest>) -> Result<Response<Subscription>, Status> {
        let caller = self.gate.authenticate(&request, INTERFACE).await?;
        let (subscription, admission) = self.owned(&caller, &request.get_ref().subscription_id, &[], false).await?;
        self.gate.release(admission, subscription, &[], 1).await.map(Response::new)
    }

    async fn update_roster(&self, request: Request<UpdateRosterRequest>) -> Result<Response<Subscription>, Status> {
        let caller = self.gate.authenticate(&request, INTERFACE).await?;
        let body = request.get_ref();
        let (added, removed) = match request::roster_ids(body, today()) {
            Ok(ids) => ids,
            Err(e) => return Err(self.gate.refuse(&caller, INTERFACE, "", e).await),
        };
        // The persons named are audited as subjects: a resident's access
        // log shows that a department put them on its roster.
        let subjects: Vec<String> = added.iter().chain(&removed).cloned().collect();
        let (subscription, admission) = self.owned(&caller, &body.subscription_id, &subjects, false).await?;
        let updated = async {
            if !subscription.roster {
                return Err(ServiceError::precondition("subscription_id", "is scoped by division, not a roster"));
            }
            if subscription.roster_size + added.len() as u64 > MAX_ROSTER {
                return Err(ServiceError::invalid(
                    "add_id_numbers",
                    format!("a roster holds at most {MAX_ROSTER} persons"),
                ));
            }
            let pseudonyms = |ids: &[String]| ids.iter().map(|id| self.gate.pseudonym(id)).collect::<Vec<_>>();
            let id = &subscription.subscription_id;
            self.gate.ledger.update_roster(id, pseudonyms(&added), pseudonyms(&removed)).await
        };
        match updated.await {
            Ok(stored) => self
                .gate
                .release(admission, stored, &[], subjects.len() as u64)
                .await
                .map(Response::new),
            Err(e) => Err(self.gate.fail(&admission, e).await),
        }
    }

    type SubscribeStream = NotificationStream;

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = self.gate.authenticate(&request, INTERFACE).await?;
        let body = request.get_ref();
        let max_batch = match body.max_batch as usize {
            0 => DEFAULT_BATCH,
            n if n <= MAX_BATCH => n,
            _ => {
                let e = ServiceError::invalid("max_batch", format!("at most {MAX_BATCH}"));
                return Err(self.gate.refuse(&caller, INTERFACE, "", e).await);
            }
        };
        let (subscription, admission) = self.owned(&caller, &body.subscription_id, &[], true).await?;
        if let Err(e) = self.retained(&subscription) {
            return Err(self.gate.fail(&admission, e).await);
        }
        let (place, superseded) = match self.places.take(&caller.department, &subscription.subscription_id) {
            Ok(taken) => taken,
            Err(full) => return Err(self.gate.fail(&admission, full).await),
        };
        let consent = self
            .gate
            .catalogue()
            .interface(INTERFACE)
            .is_some_and(|i| i.share_class == ShareClass::Conditional && i.legal_basis.is_empty());
        let admission = admission.narrowed(&subscription.fields, Vec::new());
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let follow = Follow::new(self.gate.clone(), self.feeds.clone(), subscription, admission, max_batch, consent);
        let gate = Arc::clone(&self.gate);
        tokio::spawn(async move {
            // The caller's place among its department's calls, and the
            // stream's place on this replica, are held while it runs.
            gate.subscription_figures.stream_opened(&caller.department);
            follow.run(tx, superseded).await;
            gate.subscription_figures.stream_closed(&caller.department);
            drop((caller, place));
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn acknowledge(&self, request: Request<AcknowledgeRequest>) -> Result<Response<Subscription>, Status> {
        let caller = self.gate.authenticate(&request, INTERFACE).await?;
        let body = request.get_ref();
        let Some(position) = body.position else {
            let e = ServiceError::invalid("position", "is required: the position of a notification handled");
            return Err(self.gate.refuse(&caller, INTERFACE, "", e).await);
        };
        let (subscription, admission) = self.owned(&caller, &body.subscription_id, &[], false).await?;
        // An expired subscription is not revived by acknowledging it; a
        // position past a log's newest change is no position at all.
        let checked = match self.retained(&subscription) {
            Ok(()) => self.feeds.starts([None; 3], self.retention_days).await,
            Err(e) => Err(e),
        };
        let heads = match checked {
            Ok(heads) => heads,
            Err(e) => return Err(self.gate.fail(&admission, e).await),
        };
        if let Some(field) = beyond(&position, &heads) {
            let e = ServiceError::invalid(field, "lies beyond the log's newest change: acknowledge a notification's position");
            return Err(self.gate.fail(&admission, e).await);
        }
        let at = Utc::now().timestamp_millis();
        match self.gate.ledger.acknowledge(&subscription.subscription_id, position, at).await {
            Ok(stored) => self.gate.release(admission, stored, &[], 1).await.map(Response::new),
            Err(e) => Err(self.gate.fail(&admission, e).await),
        }
    }
}
