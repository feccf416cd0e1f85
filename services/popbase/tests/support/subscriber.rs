//! A department following a subscription the way the crash and drill
//! tests need it: a medical-insurance subscription to the city's deaths,
//! each notification acknowledged, and the furthest acknowledged position
//! remembered so a check can require the ledger to hold at least that.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use popbase_proto::gateway::create_subscription_request::Scope;
use popbase_proto::gateway::subscriptions_client::SubscriptionsClient;
use popbase_proto::gateway::{AcknowledgeRequest, ChangeKind, CreateSubscriptionRequest, GetSubscriptionRequest, SubscribeRequest};
use tonic::transport::Channel;

use super::with_token;

/// What the subscriber has had acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Followed {
    pub subscription: Option<String>,
    /// The furthest household position acknowledged.
    pub household: u64,
    pub acknowledgements: u64,
}

/// Follows (creating it the first time) the city's deaths until `stop`
/// or the gateway goes away; every acknowledgement answered is recorded.
pub async fn follow_deaths(gateway: Channel, token: &str, followed: &Mutex<Followed>, stop: &AtomicBool) {
    let mut client = SubscriptionsClient::new(gateway);
    let existing = followed.lock().expect("lock").subscription.clone();
    let id = match existing {
        Some(id) => id,
        None => {
            let request = CreateSubscriptionRequest {
                purpose: "INSURANCE_ENROLLMENT".into(),
                kinds: vec![ChangeKind::Death as i32],
                scope: Some(Scope::DivisionCode("3703".into())),
                fields: vec!["id_number".into()],
                ..Default::default()
            };
            let Ok(created) = client.create_subscription(with_token(token, request)).await else {
                return;
            };
            let id = created.into_inner().subscription_id;
            followed.lock().expect("lock").subscription = Some(id.clone());
            id
        }
    };
    let request = SubscribeRequest {
        subscription_id: id.clone(),
        max_batch: 0,
    };
    let Ok(stream) = client.subscribe(with_token(token, request)).await else {
        return;
    };
    let mut stream = stream.into_inner();
    while !stop.load(Ordering::SeqCst) {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), stream.message()).await else {
            continue;
        };
        let Ok(Some(notification)) = next else { return };
        let Some(position) = notification.position else { continue };
        let ack = AcknowledgeRequest {
            subscription_id: id.clone(),
            position: Some(position),
        };
        if client.acknowledge(with_token(token, ack)).await.is_err() {
            return;
        }
        let mut followed = followed.lock().expect("lock");
        followed.household = followed.household.max(position.household);
        followed.acknowledgements += 1;
    }
}

/// 1 when the subscription or an acknowledged position was lost, else 0.
pub async fn lost(gateway: Channel, token: &str, followed: &Followed) -> usize {
    let Some(id) = &followed.subscription else { return 0 };
    let request = GetSubscriptionRequest {
        subscription_id: id.clone(),
    };
    match SubscriptionsClient::new(gateway).get_subscription(with_token(token, request)).await {
        Ok(stored) => usize::from(stored.into_inner().acknowledged.unwrap_or_default().household < followed.household),
        Err(_) => 1,
    }
}
