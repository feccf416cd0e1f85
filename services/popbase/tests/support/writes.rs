//! Writes the crash and drill tests make through the roles' own ports,
//! and the reads that check them afterwards.

use std::time::Duration;

use popbase_proto::common::{Address, Date};
use popbase_proto::household::life_events_client::LifeEventsClient;
use popbase_proto::household::{DocumentKind, EventContext, Person, PropertyKind, SettleMoveInRequest, SettlementApplication};
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use popbase_proto::residence::{
    ApplyForPermitRequest, GetResidentRequest, PermitStatus, RegisterResidenceRequest, ResidenceBasis, ResidenceRegistration,
};
use tonic::transport::Channel;

/// A checksum-valid ID number born in 1990, distinct per `n` (< 302,400).
pub fn id(n: u32) -> String {
    // 900 sequence numbers a day, 28 days a month, 12 months: 302,400 distinct.
    let (days, sequence) = (n / 900, 100 + n % 900);
    let (month, day) = (1 + (days / 28) % 12, 1 + days % 28);
    let first17 = format!("3703021990{month:02}{day:02}{sequence:03}");
    let check = popbase_domain::id_number::check_char(first17.as_bytes());
    format!("{first17}{}", char::from(check))
}

pub fn day(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

pub async fn register(residence: &mut ResidencePermitsClient<Channel>, id: &str) -> Result<(), tonic::Status> {
    let registration = ResidenceRegistration {
        id_number: id.into(),
        name: "外来人员".into(),
        address: Some(Address {
            committee_code: "370302001001".into(),
            detail: "和平路1号".into(),
        }),
        registered_on: day(2024, 1, 10),
        basis: ResidenceBasis::Employment as i32,
        ..Default::default()
    };
    residence
        .register_residence(RegisterResidenceRequest {
            registration: Some(registration),
        })
        .await
        .map(|_| ())
}

/// Registers `id` and grants a permit a month ago (valid for a year: the
/// restart's expiry sweep must leave it valid).
pub async fn permit_holder(residence: &mut ResidencePermitsClient<Channel>, id: &str) {
    let granted = try_permit_holder(residence, id).await.expect("registered and decided");
    assert!(granted);
}

/// [`permit_holder`] that reports a failed call instead of panicking (a
/// crash test's writer, whose role may be killed under it); whether the
/// permit was granted.
pub async fn try_permit_holder(residence: &mut ResidencePermitsClient<Channel>, id: &str) -> Result<bool, tonic::Status> {
    use chrono::Datelike;
    register(residence, id).await?;
    let granted = popbase_domain::clock::today() - chrono::Days::new(30);
    let decision = residence
        .apply_for_permit(ApplyForPermitRequest {
            id_number: id.into(),
            on: day(granted.year(), granted.month() as i32, granted.day() as i32),
            basis: ResidenceBasis::Employment as i32,
            evidence: "齐鲁石化".into(),
        })
        .await?
        .into_inner();
    Ok(decision.granted)
}

pub async fn settle(events: &mut LifeEventsClient<Channel>, id: &str) {
    try_settle(events, id).await.expect("settled");
}

/// 迁入落户 of `id` through the property path.
pub async fn try_settle(events: &mut LifeEventsClient<Channel>, id: &str) -> Result<(), tonic::Status> {
    events.settle_move_in(settlement(id)).await.map(|_| ())
}

/// The request settling `id` in 370302001001 through the property path.
pub fn settlement(id: &str) -> SettleMoveInRequest {
    SettleMoveInRequest {
        context: Some(EventContext {
            actor: "police-370302-01".into(),
            occurred_on: day(2026, 3, 1),
        }),
        application: Some(SettlementApplication {
            applicant_id_number: id.into(),
            target: Some(Address {
                committee_code: "370302001001".into(),
                detail: "新村5号楼101室".into(),
            }),
            documents: vec![
                DocumentKind::HouseholdBook as i32,
                DocumentKind::IdCard as i32,
                DocumentKind::PropertyCertificate as i32,
            ],
            facts: Some(popbase_proto::household::ApplicantFacts {
                property_kind: PropertyKind::Residence as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        rule_id: "property".into(),
        person: Some(Person {
            id_number: id.into(),
            name: "外来人员".into(),
            ..Default::default()
        }),
    }
}

/// Waits up to 10 s for the follower to end `id`'s permit; false also
/// when the resident or the permit is not there at all.
pub async fn permit_ends(residence: &mut ResidencePermitsClient<Channel>, id: &str) -> bool {
    for _ in 0..50 {
        let Ok(resident) = residence.get_resident(GetResidentRequest { id_number: id.into() }).await else {
            return false;
        };
        let Some(permit) = resident.into_inner().permits.first().cloned() else {
            return false;
        };
        if permit.status() == PermitStatus::EndedBySettlement {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
