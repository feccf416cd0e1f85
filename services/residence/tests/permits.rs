//! The permit lifecycle over a real socket against a real store.

use popbase_common::metrics::Metrics;
use popbase_common::{Config, Shutdown, server};
use popbase_proto::common::{Address, Date};
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use popbase_proto::residence::{
    ApplyForPermitRequest, CancelPermitRequest, EndorsePermitRequest, ExpirePermitsRequest, GetResidentRequest, ListResidentsRequest,
    PermitStatus, RegisterResidenceRequest, RegistrationState, ResidenceBasis, ResidenceRegistration,
};
use popbase_residence::{Permits, tables};
use popbase_storage::{Store, StoreOptions};
use tonic::transport::Channel;
use tonic::{Code, Status};

const WORKER: &str = "110105199001011232";
const CHILD: &str = "110105201501010025";

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn field(status: &Status) -> &str {
    status
        .metadata()
        .get("popbase-field")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn start() -> (ResidencePermitsClient<Channel>, Permits, Shutdown, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let permits = Permits::new(Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let feeds = popbase_residence::entitlements::feeds_client("http://127.0.0.1:9", &popbase_common::upstream::Dialer::plaintext())
        .expect("client");
    let services = popbase_residence::role::services(&permits, feeds, &Config::default());
    tokio::spawn(server::serve(services, listener, Metrics::new(), shutdown.clone()));
    let client = ResidencePermitsClient::connect(format!("http://{addr}")).await.expect("connect");
    (client, permits, shutdown, dir)
}

fn registration(id: &str, basis: ResidenceBasis) -> RegisterResidenceRequest {
    RegisterResidenceRequest {
        registration: Some(ResidenceRegistration {
            id_number: id.into(),
            name: "外来人员".into(),
            hukou_county_code: "110105".into(),
            address: Some(Address {
                committee_code: "370302001001".into(),
                detail: "和平路3号".into(),
            }),
            registered_on: date(2024, 1, 10),
            basis: basis as i32,
            employer: "齐鲁石化".into(),
            accompanies_id_number: if basis == ResidenceBasis::Accompanying {
                WORKER.into()
            } else {
                String::new()
            },
            ..Default::default()
        }),
    }
}

fn apply(on: Option<Date>, evidence: &str) -> ApplyForPermitRequest {
    ApplyForPermitRequest {
        id_number: WORKER.into(),
        on,
        basis: ResidenceBasis::Employment as i32,
        evidence: evidence.into(),
    }
}

#[tokio::test]
async fn six_months_then_granted_endorsed_expired() {
    let (mut client, _permits, shutdown, _dir) = start().await;
    let registered = client
        .register_residence(registration(WORKER, ResidenceBasis::Employment))
        .await
        .expect("register")
        .into_inner();
    assert_eq!(registered.state(), RegistrationState::Active);
    assert_eq!(
        registered.sex,
        popbase_proto::common::Sex::Male as i32,
        "sex read off the ID number"
    );

    // One day short of six months.
    let early = client
        .apply_for_permit(apply(date(2024, 7, 9), "齐鲁石化"))
        .await
        .expect("decided")
        .into_inner();
    assert!(!early.granted);
    let six = early
        .conditions
        .iter()
        .find(|c| c.code == "SIX_MONTHS_REGISTERED")
        .expect("condition");
    assert!(!six.met && six.detail.contains("2024-07-10"), "{six:?}");
    let no_basis = client
        .apply_for_permit(apply(date(2024, 7, 10), ""))
        .await
        .expect("decided")
        .into_inner();
    assert!(!no_basis.granted);
    assert!(no_basis.conditions.iter().any(|c| c.code == "BASIS" && !c.met));

    let granted = client
        .apply_for_permit(apply(date(2024, 7, 10), "齐鲁石化"))
        .await
        .expect("decided")
        .into_inner();
    assert!(granted.granted, "{:?}", granted.conditions);
    let permit = granted.permit.expect("permit");
    assert_eq!(permit.valid_until, date(2025, 7, 10));
    let twice = client
        .apply_for_permit(apply(date(2024, 8, 1), "齐鲁石化"))
        .await
        .expect("decided")
        .into_inner();
    assert!(twice.conditions.iter().any(|c| c.code == "NO_VALID_PERMIT" && !c.met));

    // The accompanying child's permit rests on the worker's.
    client
        .register_residence(registration(CHILD, ResidenceBasis::Accompanying))
        .await
        .expect("child");
    let child = client
        .apply_for_permit(ApplyForPermitRequest {
            id_number: CHILD.into(),
            on: date(2024, 7, 20),
            basis: ResidenceBasis::Accompanying as i32,
            evidence: WORKER.into(),
        })
        .await
        .expect("decided")
        .into_inner();
    assert!(child.granted, "{:?}", child.conditions);

    let endorse = |on| EndorsePermitRequest {
        permit_number: permit.permit_number.clone(),
        on,
    };
    let too_soon = client.endorse_permit(endorse(date(2025, 5, 1))).await.expect_err("window not open");
    assert_eq!((too_soon.code(), field(&too_soon)), (Code::FailedPrecondition, "on"));
    let endorsed = client
        .endorse_permit(endorse(date(2025, 6, 20)))
        .await
        .expect("endorsed")
        .into_inner();
    assert_eq!(endorsed.valid_until, date(2026, 7, 10));
    assert_eq!(endorsed.endorsements.len(), 1);

    // Not endorsed again: the sweep expires both permits (the child's ended 2025-07-20).
    let expired = client
        .expire_permits(ExpirePermitsRequest { on: date(2026, 7, 11) })
        .await
        .expect("sweep")
        .into_inner();
    assert_eq!(expired.expired, 2);
    let late = client.endorse_permit(endorse(date(2026, 7, 12))).await.expect_err("expired");
    assert_eq!(late.code(), Code::FailedPrecondition);
    let resident = client
        .get_resident(GetResidentRequest { id_number: WORKER.into() })
        .await
        .expect("resident")
        .into_inner();
    assert_eq!(resident.permits[0].status(), PermitStatus::Expired);

    // A new application after expiry is granted; then cancelled.
    let again = client
        .apply_for_permit(apply(date(2026, 8, 1), "齐鲁石化"))
        .await
        .expect("decided")
        .into_inner();
    let renewed = again.permit.expect("new permit");
    let cancelled = client
        .cancel_permit(CancelPermitRequest {
            permit_number: renewed.permit_number,
            on: date(2026, 9, 1),
            reason: "left the city".into(),
        })
        .await
        .expect("cancelled")
        .into_inner();
    assert_eq!(cancelled.status(), PermitStatus::Cancelled);
    let listed = client
        .list_residents(ListResidentsRequest {
            division_code: "370302".into(),
            page: None,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.registrations.len(), 2);
    shutdown.trigger();
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let (mut client, _permits, shutdown, _dir) = start().await;
    let mut bad = registration("110105199001011233", ResidenceBasis::Employment);
    let status = client.register_residence(bad.clone()).await.expect_err("check digit");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "registration.id_number"));
    bad = registration(WORKER, ResidenceBasis::Employment);
    if let Some(r) = bad.registration.as_mut() {
        r.address = Some(Address {
            committee_code: "370302999999".into(),
            detail: "1号".into(),
        });
    }
    let status = client.register_residence(bad).await.expect_err("committee");
    assert_eq!(field(&status), "registration.address.committee_code");
    let future = client.apply_for_permit(apply(date(2099, 1, 1), "x")).await.expect_err("future");
    assert_eq!((future.code(), field(&future)), (Code::InvalidArgument, "on"));
    let unregistered = client.apply_for_permit(apply(None, "x")).await.expect_err("not registered");
    assert_eq!((unregistered.code(), field(&unregistered)), (Code::FailedPrecondition, "id_number"));
    shutdown.trigger();
}

#[tokio::test]
async fn settlement_ends_permits_and_registration_once() {
    let (mut client, permits, shutdown, _dir) = start().await;
    client
        .register_residence(registration(WORKER, ResidenceBasis::Employment))
        .await
        .expect("register");
    client
        .apply_for_permit(apply(date(2024, 7, 10), "齐鲁石化"))
        .await
        .expect("granted");
    let on = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).expect("date");
    assert!(permits.end_by_settlement("test", WORKER, on).expect("ended"));
    assert!(permits.end_by_settlement("test", WORKER, on).expect("idempotent"));
    assert!(
        !permits.end_by_settlement("test", CHILD, on).expect("unknown"),
        "not a resident here"
    );
    let resident = client
        .get_resident(GetResidentRequest { id_number: WORKER.into() })
        .await
        .expect("resident")
        .into_inner();
    assert_eq!(resident.registration.expect("registration").state(), RegistrationState::Settled);
    assert_eq!(resident.permits[0].status(), PermitStatus::EndedBySettlement);
    assert_eq!(
        permits.count_registrations_under("3703").expect("count"),
        0,
        "no longer a non-registered resident"
    );
    shutdown.trigger();
}
