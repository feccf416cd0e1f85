//! Every reason code from a real scenario, each refusal audited once.

mod support;

use popbase_proto::common::Date;
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::medical_insurance_client::MedicalInsuranceClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{
    ChainHeadRequest, Consent, ConsentState, GrantConsentRequest, InsuranceGapRequest, ListConsentsRequest, PersonSummaryRequest,
    RevokeConsentRequest,
};
use support::{reason, start, today};
use tonic::Code;

fn grant(subject: &str, grantor: &str, use_limit: u32) -> GrantConsentRequest {
    GrantConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: subject.into(),
        grantor_id_number: grantor.into(),
        department: "hrss".into(),
        interface: "PersonSummary".into(),
        grant_purpose: "EMPLOYMENT_SERVICE".into(),
        valid_from: Some(Date::from(today())),
        valid_until: Some(Date::from(today() + chrono::Duration::days(7))),
        use_limit,
    }
}

fn summary(id: &str, purpose: &str) -> PersonSummaryRequest {
    PersonSummaryRequest {
        purpose: purpose.into(),
        id_number: id.into(),
        as_of: None,
    }
}

#[tokio::test]
async fn consent_reasons_and_guardianship() {
    let p = start(None, "mtls").await;
    let people = &p.people;
    let mut platform = ConsentsClient::new(p.department("service-platform.dept.popbase").await);
    let mut hrss = PersonsClient::new(p.department("hrss.dept.popbase").await);
    let before = p.audit_count();
    let mut calls = 0;

    // No consent on file.
    let denied = hrss
        .person_summary(summary(&people.stranger, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("no consent");
    assert_eq!((denied.code(), reason(&denied).as_str()), (Code::PermissionDenied, "NO_CONSENT"));
    calls += 1;

    // Purpose not approved for the department.
    let denied = hrss
        .person_summary(summary(&people.stranger, "MARKETING"))
        .await
        .expect_err("purpose");
    assert_eq!(reason(&denied), "PURPOSE_MISMATCH");
    calls += 1;

    // Interface not approved for the department at all.
    let mut education = PersonsClient::new(p.department("education.dept.popbase").await);
    let denied = education
        .person_summary(summary(&people.stranger, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("not approved");
    assert_eq!(reason(&denied), "NOT_APPROVED");
    calls += 1;

    // A certificate from the trusted CA that names no department.
    let mut nobody = PersonsClient::new(p.department("nobody.dept.popbase").await);
    let denied = nobody
        .person_summary(summary(&people.stranger, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("unknown department");
    assert_eq!(denied.code(), Code::Unauthenticated);
    assert_eq!(reason(&denied), "UNKNOWN_DEPARTMENT");
    calls += 1;

    // Granted, used, revoked: the very next call is refused.
    platform.grant(grant(&people.stranger, "", 0)).await.expect("grant");
    calls += 1;
    hrss.person_summary(summary(&people.stranger, "EMPLOYMENT_SERVICE"))
        .await
        .expect("consented");
    calls += 1;
    let revoke = RevokeConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: people.stranger.clone(),
        department: "hrss".into(),
        interface: "PersonSummary".into(),
        grant_purpose: "EMPLOYMENT_SERVICE".into(),
        ..Default::default()
    };
    let revoked = platform.revoke(revoke).await.expect("revoke").into_inner();
    assert_eq!(revoked.state, ConsentState::Revoked as i32);
    calls += 1;
    let denied = hrss
        .person_summary(summary(&people.stranger, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("revoked");
    assert_eq!(reason(&denied), "CONSENT_REVOKED");
    calls += 1;

    // A one-use consent.
    platform.grant(grant(&people.father, "", 1)).await.expect("grant once");
    calls += 1;
    hrss.person_summary(summary(&people.father, "EMPLOYMENT_SERVICE"))
        .await
        .expect("first use");
    let denied = hrss
        .person_summary(summary(&people.father, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("second use");
    assert_eq!(reason(&denied), "CONSENT_USED_UP");
    calls += 2;

    // A consent whose window ended (granted last month for a week).
    let subject = p.gate.pseudonym(&people.mother);
    let key = popbase_gateway::consent::GrantKey {
        subject: &subject,
        department: "hrss",
        interface: "PersonSummary",
        purpose: "EMPLOYMENT_SERVICE",
    };
    let old = Consent {
        valid_from: Some(Date::from(today() - chrono::Duration::days(40))),
        valid_until: Some(Date::from(today() - chrono::Duration::days(33))),
        ..Default::default()
    };
    p.ledger.consents.grant(&key, old).expect("store an old consent");
    let denied = hrss
        .person_summary(summary(&people.mother, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("expired");
    assert_eq!(reason(&denied), "CONSENT_EXPIRED");
    calls += 1;

    // Guardians: a parent may consent for a minor; a stranger may not; nobody for an adult.
    platform
        .grant(grant(&people.child, &people.mother, 0))
        .await
        .expect("mother for her son");
    platform
        .grant(grant(&people.orphan, &people.grandmother, 0))
        .await
        .expect("statutory guardian");
    let denied = platform
        .grant(grant(&people.child, &people.stranger, 0))
        .await
        .expect_err("not a parent");
    assert_eq!(reason(&denied), "NOT_GUARDIAN");
    let denied = platform.grant(grant(&people.father, &people.mother, 0)).await.expect_err("adult");
    assert_eq!(reason(&denied), "NOT_GUARDIAN");
    // A child under 14 cannot consent in person (PIPL art. 31), whether the
    // grantor is left empty or is the child; an adult can.
    for grantor in ["", people.child.as_str()] {
        let denied = platform
            .grant(grant(&people.child, grantor, 0))
            .await
            .expect_err("an eight-year-old for himself");
        assert_eq!(reason(&denied), "NOT_GUARDIAN");
        assert!(denied.message().contains("under 14"), "{}", denied.message());
    }
    platform.grant(grant(&people.stranger, "", 0)).await.expect("an adult for himself");
    calls += 7;
    let listed = platform
        .list_consents(ListConsentsRequest {
            purpose: "CITIZEN_CONSENT".into(),
            subject_id_number: people.child.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .consents;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].granted_by_guardian && listed[0].masked_subject_id_number.contains("****"));
    calls += 1;

    // Malformed input is refused naming the field, and audited too.
    let mut bad = grant(&people.child, "", 0);
    bad.valid_until = Some(Date::from(today() - chrono::Duration::days(1)));
    let denied = platform.grant(bad).await.expect_err("window in the past");
    assert_eq!(denied.code(), Code::InvalidArgument);
    assert!(denied.message().contains("valid_until"), "{}", denied.message());
    calls += 1;

    // A purpose is a short code (it goes into the audit record); a revocation names what it revokes.
    let denied = hrss
        .person_summary(summary(&people.father, &"P".repeat(65)))
        .await
        .expect_err("long purpose");
    assert_eq!(denied.code(), Code::InvalidArgument);
    assert!(denied.message().contains("purpose"), "{}", denied.message());
    let unnamed = RevokeConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: people.father.clone(),
        department: "hrss".into(),
        interface: String::new(),
        grant_purpose: "EMPLOYMENT_SERVICE".into(),
        ..Default::default()
    };
    let denied = platform.revoke(unnamed).await.expect_err("no interface");
    assert_eq!(denied.code(), Code::InvalidArgument);
    assert!(denied.message().contains("interface"), "{}", denied.message());
    calls += 2;

    assert_eq!(p.audit_count(), before + calls, "exactly one record per answer and per refusal");
    p.stop().await;
}

#[tokio::test]
async fn catalogue_share_class_quotas_and_rates() {
    let catalogue = popbase_gateway::catalogue::SHIPPED
        .replace(
            "id = \"PersonSummary\"\nname = \"人口基本信息查询\"\nshare_class = \"conditional\"",
            "id = \"PersonSummary\"\nname = \"人口基本信息查询\"\nshare_class = \"not_shared\"",
        )
        .replace(
            "certificate_cn = \"audit.dept.popbase\"\ndaily_quota = 10000",
            "certificate_cn = \"audit.dept.popbase\"\ndaily_quota = 2",
        )
        .replace("daily_quota = 200\nper_second = 20", "daily_quota = 200\nper_second = 1");
    assert!(
        catalogue.contains("share_class = \"not_shared\"\nfields = [\"name\""),
        "test catalogue edited"
    );
    let p = start(Some(catalogue), "mtls").await;
    let before = p.audit_count();

    let mut hrss = PersonsClient::new(p.department("hrss.dept.popbase").await);
    let denied = hrss
        .person_summary(summary(&p.people.father, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("not shared");
    assert_eq!(reason(&denied), "NOT_IN_CATALOGUE");

    let mut audit = AuditClient::new(p.department("audit.dept.popbase").await);
    let head = || ChainHeadRequest { purpose: "AUDIT".into() };
    audit.get_chain_head(head()).await.expect("first");
    let second = audit.get_chain_head(head()).await.expect("second").into_inner();
    assert!(second.seq >= 2 && second.hash.len() == 32);
    let denied = audit.get_chain_head(head()).await.expect_err("daily quota of 2");
    assert_eq!(
        (denied.code(), reason(&denied).as_str()),
        (Code::ResourceExhausted, "QUOTA_EXCEEDED")
    );

    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    let gap = || InsuranceGapRequest {
        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
        division_code: "370303001001".into(),
    };
    let mut first = insurance.insurance_gap(gap()).await.expect("first within the rate").into_inner();
    // The list's record is made before its first part leaves: read it all.
    while let Some(resident) = first.message().await.expect("listed") {
        drop(resident);
    }
    let denied = insurance.insurance_gap(gap()).await.expect_err("second in the same second");
    assert_eq!((denied.code(), reason(&denied).as_str()), (Code::ResourceExhausted, "RATE_LIMITED"));
    assert_eq!(p.audit_count(), before + 6);
    p.stop().await;
}

#[tokio::test]
async fn no_certificate_no_entry_and_tokens_in_token_mode() {
    let p = start(None, "both").await;
    // A certificate from a CA the gateway does not trust fails the handshake.
    let foreign = support::Pki::foreign("education.dept.popbase");
    let channel = tonic::transport::Channel::from_shared(format!("https://{}", p.gateway))
        .expect("uri")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&p.pki.ca_pem))
                .domain_name("localhost")
                .identity(tonic::transport::Identity::from_pem(foreign.cert_pem, foreign.key_pem)),
        )
        .expect("tls");
    let refused = match channel.connect().await {
        Err(_) => true,
        Ok(channel) => PersonsClient::new(channel)
            .person_summary(summary(&p.people.father, "EMPLOYMENT_SERVICE"))
            .await
            .is_err(),
    };
    assert!(refused, "an untrusted client certificate gets nowhere");

    // No certificate (allowed in `both`) and no token: UNAUTHENTICATED, audited.
    let before = p.audit_count();
    let mut anonymous = PersonsClient::new(p.channel(None).await);
    let denied = anonymous
        .person_summary(summary(&p.people.father, "EMPLOYMENT_SERVICE"))
        .await
        .expect_err("anonymous");
    assert_eq!(denied.code(), Code::Unauthenticated);
    assert_eq!(reason(&denied), "NO_CREDENTIALS");
    assert_eq!(p.audit_count(), before + 1);

    // A signed token stands in for the certificate; a forged one does not.
    let key = popbase_gateway::role::read_or_create_key(&p.config.token_key_path()).expect("key");
    let token = popbase_gateway::auth::mint_token(&key, "audit", chrono::Utc::now().timestamp(), chrono::Utc::now().timestamp() + 60);
    let mut request = tonic::Request::new(ChainHeadRequest { purpose: "AUDIT".into() });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    let mut audit = AuditClient::new(p.channel(None).await);
    audit.get_chain_head(request).await.expect("token accepted");
    let mut forged = tonic::Request::new(ChainHeadRequest { purpose: "AUDIT".into() });
    let bad = popbase_gateway::auth::mint_token(
        b"not the key at all",
        "audit",
        chrono::Utc::now().timestamp(),
        chrono::Utc::now().timestamp() + 60,
    );
    forged
        .metadata_mut()
        .insert("authorization", format!("Bearer {bad}").parse().expect("ascii"));
    let refused = audit.get_chain_head(forged).await.expect_err("forged");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(reason(&refused), "TOKEN_INVALID");
    // A token issued for longer than the gateway allows (24 h by default).
    let now = chrono::Utc::now().timestamp();
    let long = popbase_gateway::auth::mint_token(&key, "audit", now, now + 48 * 3600);
    let mut too_long = tonic::Request::new(ChainHeadRequest { purpose: "AUDIT".into() });
    too_long
        .metadata_mut()
        .insert("authorization", format!("Bearer {long}").parse().expect("ascii"));
    let refused = audit.get_chain_head(too_long).await.expect_err("too long");
    assert_eq!(reason(&refused), "TOKEN_TOO_LONG");
    p.stop().await;
}

#[tokio::test]
async fn a_failed_fetch_is_refused_and_audited() {
    use popbase_proto::gateway::enrollment_client::EnrollmentClient;
    let p = support::start_without_registry().await;
    let before = p.audit_count();
    let mut education = EnrollmentClient::new(p.department("education.dept.popbase").await);
    let request = popbase_proto::gateway::EnrollmentCheckRequest {
        purpose: "COMPULSORY_EDUCATION_ENROLLMENT".into(),
        request_id: "1".into(),
        child_id_number: p.people.child.clone(),
        guardian_id_numbers: vec![p.people.father.clone()],
        district_codes: vec![support::XINHUA.into()],
        reference_date: None,
    };
    let failed = education.check(request).await.expect_err("registry unreachable");
    assert_eq!(failed.code(), Code::Unavailable);
    assert!(failed.message().contains("household registry"), "{}", failed.message());
    assert_eq!(p.audit_count(), before + 1);
    let record = p.audit_record(before + 1);
    assert_eq!((record.reason.as_str(), record.subjects.len()), ("FETCH_FAILED", 2));
    p.stop().await;
}

/// The catalogue pins hrss's certificate key: a second certificate with the
/// same CN from the same CA (a lost laptop's, a revoked one) is refused
/// CERTIFICATE_REVOKED, while the pinned one and every other department
/// keep working.
#[tokio::test]
async fn a_certificate_whose_key_is_no_longer_pinned_is_revoked() {
    use popbase_proto::gateway::EmployerLocalityRequest;
    use popbase_proto::gateway::employer_locality_request::Place;
    use popbase_proto::gateway::locality_client::LocalityClient;
    use sha2::Digest as _;

    let pinned_key = rcgen::KeyPair::generate().expect("key");
    let pin = hex::encode(sha2::Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&pinned_key)));
    let catalogue = popbase_gateway::catalogue::SHIPPED.replace(
        "certificate_cn = \"hrss.dept.popbase\"\n",
        &format!("certificate_cn = \"hrss.dept.popbase\"\ncertificate_spki_sha256 = [\"{pin}\"]\n"),
    );
    assert_ne!(catalogue, popbase_gateway::catalogue::SHIPPED, "the pin went in");
    let p = start(Some(catalogue), "mtls").await;
    let ask = || EmployerLocalityRequest {
        purpose: "EMPLOYER_LOCALITY".into(),
        place: Some(Place::CommitteeCode(support::XIYUAN.into())),
    };
    let pinned = p.pki.issue_for_key(&[], "hrss.dept.popbase", pinned_key);
    let mut hrss = LocalityClient::new(
        p.channel(Some(tonic::transport::Identity::from_pem(pinned.cert_pem, pinned.key_pem)))
            .await,
    );
    let answered = hrss.employer_locality(ask()).await;
    assert!(
        !matches!(&answered, Err(s) if s.code() == Code::Unauthenticated),
        "the pinned certificate authenticates: {answered:?}"
    );
    let mut replaced = LocalityClient::new(p.department("hrss.dept.popbase").await);
    let refused = replaced.employer_locality(ask()).await.expect_err("not pinned");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(reason(&refused), "CERTIFICATE_REVOKED");
    let mut education = PersonsClient::new(p.department("education.dept.popbase").await);
    let other = education
        .person_summary(PersonSummaryRequest {
            purpose: "EMPLOYMENT_SERVICE".into(),
            id_number: p.people.stranger.clone(),
            as_of: None,
        })
        .await
        .expect_err("education is not approved for summaries");
    assert_eq!(reason(&other), "NOT_APPROVED", "other departments authenticate as before");
}
