//! The city's clock end to end: the same consent, valid until one calendar
//! day, is accepted by a platform whose city lies at UTC-12 and refused by
//! one at UTC+14, where that day has already passed. The gateway reasons
//! in the configured zone's days (`city_time_zone`), never in UTC days.

mod support;

use std::time::Duration;

use chrono::{NaiveDate, Timelike, Utc};
use popbase_proto::common::Date;
use popbase_proto::gateway::GrantConsentRequest;
use popbase_proto::gateway::consents_client::ConsentsClient;
use support::{Children, serve_all_in_one, token, with_token};
use tonic::Code;

/// Starts `popbase serve --role all` in `zone`; the child and the gateway's address.
fn start(data: &std::path::Path, zone: &str) -> (std::process::Child, String) {
    let (child, roles) = serve_all_in_one(data, &[("POPBASE_CITY_TIME_ZONE", zone)]);
    let gateway = roles.get("gateway").cloned().expect("the gateway reported its address");
    (child, gateway)
}

/// The calendar day at UTC-12 now.
fn day_at_utc_minus_12() -> NaiveDate {
    (Utc::now() - chrono::Duration::hours(12)).date_naive()
}

#[tokio::test]
async fn a_consent_ends_with_the_citys_day_not_the_utc_day() {
    // Stay clear of a UTC-12 midnight while the two platforms answer.
    let west = Utc::now() - chrono::Duration::hours(12);
    let to_midnight = 86_400 - u64::from(west.time().num_seconds_from_midnight());
    if to_midnight < 30 {
        tokio::time::sleep(Duration::from_secs(to_midnight + 1)).await;
    }
    let day = day_at_utc_minus_12();
    let mut children = Children::default();
    for (zone, accepted) in [("-12:00", true), ("+14:00", false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, gateway) = start(dir.path(), zone);
        children.push(child);
        let platform = token(dir.path(), "service_platform");
        let grant = GrantConsentRequest {
            purpose: "CITIZEN_CONSENT".into(),
            subject_id_number: "370302199001011232".into(),
            department: "civil_affairs".into(),
            interface: "PersonSummary".into(),
            grant_purpose: "TEMPORARY_ASSISTANCE".into(),
            valid_from: Some(Date::from(day - chrono::Duration::days(1))),
            valid_until: Some(Date::from(day)),
            ..Default::default()
        };
        let mut consents = ConsentsClient::connect(format!("http://{gateway}")).await.expect("connect");
        let answer = consents.grant(with_token(&platform, grant)).await;
        match (accepted, answer) {
            (true, Ok(_)) => {}
            (false, Err(status)) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                assert!(status.message().contains("valid_until"), "{}", status.message());
            }
            (_, other) => panic!("in {zone}, a consent until {day}: {other:?}"),
        }
    }
}
