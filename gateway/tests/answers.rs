//! The Zibo interfaces end to end over mTLS: what each department gets.

mod support;

use popbase_common::metrics::Metrics;
use popbase_proto::common::Date;
use popbase_proto::gateway::consents_client::ConsentsClient;
use popbase_proto::gateway::employer_locality_request::Place;
use popbase_proto::gateway::enrollment_client::EnrollmentClient;
use popbase_proto::gateway::locality_client::LocalityClient;
use popbase_proto::gateway::medical_insurance_client::MedicalInsuranceClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{
    EmployerLocalityRequest, EnrollmentBasis, EnrollmentCheckRequest, GrantConsentRequest, GuardianRelation, InsuranceGapRequest,
    ListAccessesRequest, ListConsentsRequest, PersonSummaryRequest, PlaceCheck, PlaceKind, ResidenceStatus, ResidentKind,
    RevokeConsentRequest,
};
use support::{Platform, XINHUA, XIYUAN, start, start_with_local_exports, today};
use tokio_stream::StreamExt;

const ENROLL: &str = "COMPULSORY_EDUCATION_ENROLLMENT";

fn enrollment(child: &str, guardians: &[&str], district: &str) -> EnrollmentCheckRequest {
    EnrollmentCheckRequest {
        purpose: ENROLL.into(),
        request_id: format!("req-{child}"),
        child_id_number: child.into(),
        guardian_id_numbers: guardians.iter().map(|g| g.to_string()).collect(),
        district_codes: vec![district.into()],
        reference_date: None,
    }
}

#[tokio::test]
async fn enrollment_check_tells_registered_permit_and_unrelated_families_apart() {
    enrollment_checks(start(None, "mtls").await).await;
}

/// All-in-one, the gateway calls the services' handlers directly (its
/// registry and feeds clients point nowhere here): the same answers, and
/// the calls still show in each role's RPC metrics.
#[tokio::test]
async fn all_in_one_the_same_enrollment_answers_come_from_the_handlers() {
    let p = start_with_local_exports().await;
    let metrics = p.metrics.clone();
    enrollment_checks(p).await;
    assert_counted(
        &metrics,
        &[
            r#"role="household",method="/popbase.household.v1.HouseholdRegistry/GetPersons",code="0""#,
            r#"role="residence",method="/popbase.residence.v1.ResidencePermits/GetResident",code="0""#,
        ],
    );
}

/// Each of `calls` (labels of a successful RPC) shows in `metrics`.
fn assert_counted(metrics: &Metrics, calls: &[&str]) {
    let rendered = metrics.render();
    for counted in calls {
        assert!(rendered.contains(counted), "{counted} missing from\n{rendered}");
    }
}

async fn enrollment_checks(p: Platform) {
    let people = &p.people;
    let mut education = EnrollmentClient::new(p.department("education.dept.popbase").await);
    let before = p.audit_count();

    let local = education
        .check(enrollment(&people.child, &[&people.father, &people.mother], XINHUA))
        .await
        .expect("registered family")
        .into_inner();
    assert_eq!(
        local.basis,
        EnrollmentBasis::ChildAndGuardianRegisteredInDistrict as i32,
        "{local:?}"
    );
    let child = local.child.as_ref().expect("child");
    assert_eq!(child.kind, PlaceKind::Registered as i32);
    assert!(child.in_district);
    let place = child.place.as_ref().expect("place");
    assert_eq!(
        (
            place.county_name.as_str(),
            place.street_name.as_str(),
            place.committee_code.as_str()
        ),
        ("张店区", "车站街道", XINHUA)
    );
    assert!(child.masked_id_number.contains("****") && !child.masked_id_number.contains(&people.child[6..14]));
    let relations: Vec<i32> = local.guardians.iter().map(|g| g.relation).collect();
    assert_eq!(relations, vec![GuardianRelation::Father as i32, GuardianRelation::Mother as i32]);
    assert!(!local.basis_text.is_empty());

    let elsewhere = education
        .check(enrollment(&people.child, &[&people.father], XIYUAN))
        .await
        .expect("other district")
        .into_inner();
    assert_eq!(elsewhere.basis, EnrollmentBasis::NotInDistrict as i32);

    let migrant = education
        .check(enrollment(&people.migrant_child, &[&people.migrant], XINHUA))
        .await
        .expect("permit family")
        .into_inner();
    assert_eq!(migrant.basis, EnrollmentBasis::GuardianPermitInDistrict as i32, "{migrant:?}");
    let parent = &migrant.guardians[0];
    assert_eq!(parent.kind, PlaceKind::ResidencePermit as i32);
    assert!(parent.permit_valid_until.is_some() && parent.permit_issued_on.is_some() && parent.residence_registered_on.is_some());
    assert_eq!(migrant.child.as_ref().map(|c| c.kind), Some(PlaceKind::ResidenceRegistered as i32));
    assert_eq!(
        parent.relation,
        GuardianRelation::Accompanied as i32,
        "the child's residence registration names him"
    );

    let unrelated = education
        .check(enrollment(&people.child, &[&people.stranger], XINHUA))
        .await
        .expect("stranger as guardian")
        .into_inner();
    assert_eq!(unrelated.basis, EnrollmentBasis::GuardianshipNotShown as i32);
    assert_only_masked(&unrelated.guardians[0]);

    // 随迁子女 with a stranger holding a valid permit in the district: no basis.
    let stranger_permit = education
        .check(enrollment(&people.migrant_child, &[&people.permit_stranger], XINHUA))
        .await
        .expect("permit-holding stranger as guardian")
        .into_inner();
    assert_eq!(
        stranger_permit.basis,
        EnrollmentBasis::GuardianshipNotShown as i32,
        "{stranger_permit:?}"
    );
    assert_only_masked(&stranger_permit.guardians[0]);
    // The real parent named beside the stranger: the parent's permit counts, the stranger still says nothing.
    let both = education
        .check(enrollment(
            &people.migrant_child,
            &[&people.permit_stranger, &people.migrant],
            XINHUA,
        ))
        .await
        .expect("stranger and parent")
        .into_inner();
    assert_eq!(both.basis, EnrollmentBasis::GuardianPermitInDistrict as i32);
    assert_only_masked(&both.guardians[0]);

    // A parent whose permit lapsed yesterday: its own basis, and the lapsed dates shown.
    let lapsed = education
        .check(enrollment(&people.lapsed_child, &[&people.lapsed], XINHUA))
        .await
        .expect("lapsed permit")
        .into_inner();
    assert_eq!(lapsed.basis, EnrollmentBasis::GuardianPermitLapsed as i32, "{lapsed:?}");
    assert!(lapsed.basis_text.contains("过有效期"), "{}", lapsed.basis_text);
    let mother = &lapsed.guardians[0];
    assert_eq!(
        (mother.relation, mother.kind, mother.in_district),
        (GuardianRelation::Accompanied as i32, PlaceKind::ResidenceRegistered as i32, true)
    );
    assert_eq!(mother.permit_valid_until, Some((today() - chrono::Duration::days(1)).into()));

    // Adults are not children: the check does not locate them or their relatives.
    for (adult, guardian) in [(&people.father, &people.grandmother), (&people.stranger, &people.grandmother)] {
        let refused = education
            .check(enrollment(adult, &[guardian], XINHUA))
            .await
            .expect_err("an adult as the child");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains("child_id_number"), "{}", refused.message());
    }
    // Ages count on the intake's reference date, which lies within a year of today.
    let mut far = enrollment(&people.child, &[&people.father], XINHUA);
    far.reference_date = Some((today() + chrono::Duration::days(400)).into());
    let refused = education.check(far).await.expect_err("reference date too far");
    assert!(refused.message().contains("reference_date"), "{}", refused.message());

    let orphan = education
        .check(enrollment(&people.orphan, &[&people.grandmother], XINHUA))
        .await
        .expect("statutory guardian")
        .into_inner();
    assert_eq!(orphan.guardians[0].relation, GuardianRelation::StatutoryGuardian as i32);
    assert_eq!(orphan.basis, EnrollmentBasis::ChildAndGuardianRegisteredInDistrict as i32);

    let bad = education
        .check(EnrollmentCheckRequest {
            child_id_number: format!("{}0", &people.child[..17]),
            ..enrollment(&people.child, &[&people.father], XINHUA)
        })
        .await
        .expect_err("bad check digit");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("child_id_number"), "{}", bad.message());
    assert_eq!(p.audit_count(), before + 12, "one record per answer and per refusal");
    p.stop().await;
}

/// A guardian the child is not shown to be related to: the relation
/// NOT_SHOWN and the masked ID number, nothing else.
fn assert_only_masked(guardian: &PlaceCheck) {
    assert_eq!(
        guardian,
        &PlaceCheck {
            masked_id_number: guardian.masked_id_number.clone(),
            relation: GuardianRelation::NotShown as i32,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn an_intake_streams_one_answer_per_application_and_errors_inline() {
    let p = start(None, "mtls").await;
    let people = &p.people;
    let mut education = EnrollmentClient::new(p.department("education.dept.popbase").await);
    let before = p.audit_count();
    let mut bad = enrollment(&people.child, &[&people.father], XINHUA);
    bad.request_id = "bad".into();
    bad.district_codes = vec!["999999999".into()];
    let other_digit = if people.mother.ends_with('0') { '1' } else { '0' };
    let wrong_digit = format!("{}{other_digit}", &people.mother[..17]);
    let mut bad_guardian = enrollment(&people.child, &[&people.father, &wrong_digit], XINHUA);
    bad_guardian.request_id = "bad guardian".into();
    let items = vec![
        enrollment(&people.child, &[&people.father, &people.mother], XINHUA),
        bad,
        enrollment(&people.migrant_child, &[&people.migrant], XINHUA),
        bad_guardian,
    ];
    let mut answers = education
        .check_intake(tokio_stream::iter(items))
        .await
        .expect("intake")
        .into_inner();
    let mut got = Vec::new();
    while let Some(answer) = answers.next().await {
        got.push(answer.expect("item"));
    }
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].basis, EnrollmentBasis::ChildAndGuardianRegisteredInDistrict as i32);
    let error = got[1].error.as_ref().expect("malformed item answered with its error");
    assert_eq!((got[1].request_id.as_str(), error.field.as_str()), ("bad", "district_codes[0]"));
    assert_eq!(got[2].basis, EnrollmentBasis::GuardianPermitInDistrict as i32);
    let error = got[3].error.as_ref().expect("malformed guardian answered with its error");
    assert_eq!(error.field, "guardian_id_numbers[1]");
    assert!(error.reason.contains("check digit"), "{}", error.reason);
    assert_eq!(p.audit_count(), before + 4);

    // A school's whole intake: checked in chunks, answered in order, one record each.
    let before = p.audit_count();
    let items: Vec<_> = (0..700)
        .map(|i| {
            let mut item = match i % 3 {
                0 => enrollment(&people.child, &[&people.father], XINHUA),
                1 => enrollment(&people.migrant_child, &[&people.migrant], XINHUA),
                _ => enrollment(&people.child, &[&people.stranger], XINHUA),
            };
            item.request_id = format!("r{i}");
            if i == 350 {
                item.child_id_number = "123".into();
            }
            item
        })
        .collect();
    let mut answers = education
        .check_intake(tokio_stream::iter(items))
        .await
        .expect("intake")
        .into_inner();
    let mut n = 0;
    while let Some(answer) = answers.next().await {
        let answer = answer.expect("item");
        assert_eq!(answer.request_id, format!("r{n}"), "answers keep the order of the applications");
        let expected = match n % 3 {
            _ if n == 350 => None,
            0 => Some(EnrollmentBasis::ChildAndGuardianRegisteredInDistrict),
            1 => Some(EnrollmentBasis::GuardianPermitInDistrict),
            _ => Some(EnrollmentBasis::GuardianshipNotShown),
        };
        match expected {
            Some(basis) => assert_eq!(answer.basis, basis as i32, "application {n}"),
            None => assert_eq!(answer.error.as_ref().map(|e| e.field.as_str()), Some("child_id_number")),
        }
        n += 1;
    }
    assert_eq!(n, 700);
    assert_eq!(p.audit_count(), before + 700);
    p.stop().await;
}

fn grant(subject: &str, department: &str, purpose: &str) -> GrantConsentRequest {
    GrantConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: subject.into(),
        grantor_id_number: String::new(),
        department: department.into(),
        interface: "PersonSummary".into(),
        grant_purpose: purpose.into(),
        valid_from: Some(Date::from(today())),
        valid_until: Some(Date::from(today() + chrono::Duration::days(30))),
        use_limit: 0,
    }
}

#[tokio::test]
async fn each_department_sees_only_its_approved_fields() {
    approved_fields_only(start(None, "mtls").await).await;
}

#[tokio::test]
async fn all_in_one_each_department_sees_only_its_approved_fields() {
    let p = start_with_local_exports().await;
    let metrics = p.metrics.clone();
    approved_fields_only(p).await;
    assert_counted(
        &metrics,
        &[
            r#"role="feeds",method="/popbase.feeds.v1.Feeds/CheckInsurance",code="0""#,
            r#"role="household",method="/popbase.household.v1.HouseholdRegistry/StreamPersonIds",code="0""#,
        ],
    );
}

async fn approved_fields_only(p: Platform) {
    let people = &p.people;
    let mut platform = ConsentsClient::new(p.department("service-platform.dept.popbase").await);
    platform
        .grant(grant(&people.father, "hrss", "EMPLOYMENT_SERVICE"))
        .await
        .expect("consent to hrss");
    platform
        .grant(grant(&people.father, "civil_affairs", "TEMPORARY_ASSISTANCE"))
        .await
        .expect("consent to civil affairs");

    let ask = |purpose: &str| PersonSummaryRequest {
        purpose: purpose.into(),
        id_number: people.father.clone(),
        as_of: None,
    };
    let hrss = PersonsClient::new(p.department("hrss.dept.popbase").await)
        .person_summary(ask("EMPLOYMENT_SERVICE"))
        .await
        .expect("hrss")
        .into_inner();
    assert_eq!(hrss.name, "张大明");
    assert!(hrss.birth_year > 1900 && hrss.sex != 0 && hrss.place.is_some());
    assert_eq!(hrss.residence_status, ResidenceStatus::Registered as i32);
    assert!(hrss.birth_date.is_none() && hrss.phone.is_empty() && hrss.marital_status.is_empty() && hrss.address_detail.is_empty());
    assert!(!hrss.medical_insurance_active, "insurance is not approved for hrss");
    assert_eq!(hrss.released_fields, vec!["name", "sex", "birth_year", "residence_status", "place"]);

    let civil = PersonsClient::new(p.department("civil-affairs.dept.popbase").await)
        .person_summary(ask("TEMPORARY_ASSISTANCE"))
        .await
        .expect("civil affairs")
        .into_inner();
    assert!(civil.birth_date.is_some() && civil.medical_insurance_active && !civil.address_detail.is_empty());
    assert!(civil.phone.is_empty() && civil.birth_year == 0);

    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    let mut stream = insurance
        .insurance_gap(InsuranceGapRequest {
            purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
            division_code: "370303001".into(),
        })
        .await
        .expect("gap")
        .into_inner();
    let mut listed = Vec::new();
    while let Some(r) = stream.next().await {
        listed.push(r.expect("row"));
    }
    let ids: Vec<&str> = listed.iter().map(|r| r.id_number.as_str()).collect();
    assert!(ids.contains(&people.child.as_str()), "registered child without insurance: {ids:?}");
    assert!(ids.contains(&people.migrant.as_str()), "permit holder without insurance");
    assert!(!ids.contains(&people.father.as_str()) && !ids.contains(&people.migrant_child.as_str()));
    assert!(!ids.contains(&people.stranger.as_str()), "outside the street");
    let migrant = listed.iter().find(|r| r.id_number == people.migrant).expect("migrant row");
    assert_eq!(migrant.kind, ResidentKind::PermitHolder as i32);
    assert!(listed.iter().all(|r| r.sex == 0), "sex is not approved for the insurance bureau");

    let mut locality = LocalityClient::new(p.department("hrss.dept.popbase").await);
    let by_code = locality
        .employer_locality(EmployerLocalityRequest {
            purpose: "EMPLOYER_LOCALITY".into(),
            place: Some(Place::CommitteeCode(XIYUAN.into())),
        })
        .await
        .expect("by code")
        .into_inner();
    assert_eq!(by_code.locality.as_ref().map(|l| l.street_name.as_str()), Some("公园街道"));
    let by_address = locality
        .employer_locality(EmployerLocalityRequest {
            purpose: "EMPLOYER_LOCALITY".into(),
            place: Some(Place::Address("淄博市张店区车站街道新华社区新华路18号".into())),
        })
        .await
        .expect("by address")
        .into_inner();
    assert_eq!(by_address.locality.as_ref().map(|l| l.committee_code.as_str()), Some(XINHUA));
    // The address base: road and door number, however it is written.
    let written = |text: &str| EmployerLocalityRequest {
        purpose: "EMPLOYER_LOCALITY".into(),
        place: Some(Place::Address(text.into())),
    };
    let by_road = locality
        .employer_locality(written("张店 华光路１２号3号楼"))
        .await
        .expect("by road")
        .into_inner();
    assert_eq!(by_road.locality.as_ref().map(|l| l.committee_code.as_str()), Some(XINHUA));
    assert_eq!(by_road.matched_by, "standard address");
    let shared = locality
        .employer_locality(written("共青团路50号"))
        .await
        .expect("shared road")
        .into_inner();
    assert!(shared.locality.is_none(), "two committees fit");
    let mut candidates: Vec<&str> = shared.candidates.iter().map(|c| c.committee_code.as_str()).collect();
    candidates.sort();
    assert_eq!(candidates, [XINHUA, XIYUAN]);
    let narrowed = locality
        .employer_locality(written("车站街道共青团路50号"))
        .await
        .expect("narrowed by the street")
        .into_inner();
    assert_eq!(narrowed.locality.as_ref().map(|l| l.committee_code.as_str()), Some(XINHUA));
    let elsewhere = locality
        .employer_locality(written("山东省济南市历下区华光路12号"))
        .await
        .expect_err("another city");
    assert_eq!(elsewhere.code(), tonic::Code::NotFound);

    // The father sees every access to his data, not the data itself.
    let accesses = platform
        .list_accesses(ListAccessesRequest {
            purpose: "CITIZEN_ACCESS_LOG".into(),
            subject_id_number: people.father.clone(),
            limit: 0,
            ..Default::default()
        })
        .await
        .expect("accesses")
        .into_inner()
        .accesses;
    let who: Vec<(&str, &str)> = accesses.iter().map(|a| (a.department.as_str(), a.interface.as_str())).collect();
    assert!(
        who.contains(&("hrss", "PersonSummary")) && who.contains(&("civil_affairs", "PersonSummary")),
        "{who:?}"
    );
    assert!(accesses.iter().all(|a| a.at_unix_millis > 0 && !a.purpose.is_empty()));
    p.stop().await;
}

/// A person summary as of a past day: only for a department whose approval
/// lists `as_of` (civil affairs, not hrss), answered from the registry's
/// change log (a man who died ten days ago was registered twenty days ago).
#[tokio::test]
async fn a_person_summary_as_of_a_past_day_needs_its_approval_and_reads_history() {
    let p = start(None, "mtls").await;
    let stranger = p.people.stranger.clone();
    let mut platform = ConsentsClient::new(p.department("service-platform.dept.popbase").await);
    for (department, purpose) in [("civil_affairs", "TEMPORARY_ASSISTANCE"), ("hrss", "EMPLOYMENT_SERVICE")] {
        platform.grant(grant(&stranger, department, purpose)).await.expect("consent");
    }
    let died = today() - chrono::Duration::days(10);
    let context = popbase_household::EventContext {
        actor: "police-370303-01".into(),
        on: died,
    };
    let id = popbase_domain::IdNumber::parse(&stranger, today()).expect("id");
    p.registry.register_death(&context, &id).expect("death registered");

    let ask = |purpose: &str, as_of: Option<chrono::NaiveDate>| PersonSummaryRequest {
        purpose: purpose.into(),
        id_number: stranger.clone(),
        as_of: as_of.map(Into::into),
    };
    let mut civil = PersonsClient::new(p.department("civil-affairs.dept.popbase").await);
    let now = civil
        .person_summary(ask("TEMPORARY_ASSISTANCE", None))
        .await
        .expect("now")
        .into_inner();
    assert_eq!(now.residence_status, ResidenceStatus::Deceased as i32);
    let earlier = today() - chrono::Duration::days(20);
    let then = civil
        .person_summary(ask("TEMPORARY_ASSISTANCE", Some(earlier)))
        .await
        .expect("as of")
        .into_inner();
    assert_eq!(then.residence_status, ResidenceStatus::Registered as i32, "{then:?}");
    assert_eq!(then.as_of, Some(earlier.into()));
    assert_eq!(then.place.as_ref().map(|p| p.committee_code.as_str()), Some(XIYUAN));
    let on_the_day = civil
        .person_summary(ask("TEMPORARY_ASSISTANCE", Some(died)))
        .await
        .expect("the day")
        .into_inner();
    assert_eq!(
        on_the_day.residence_status,
        ResidenceStatus::Deceased as i32,
        "dead by the end of that day"
    );
    let future = civil
        .person_summary(ask("TEMPORARY_ASSISTANCE", Some(today() + chrono::Duration::days(1))))
        .await
        .expect_err("tomorrow");
    assert_eq!(future.code(), tonic::Code::InvalidArgument);
    assert!(future.message().contains("as_of"), "{}", future.message());

    let before = p.audit_count();
    let mut hrss = PersonsClient::new(p.department("hrss.dept.popbase").await);
    let refused = hrss
        .person_summary(ask("EMPLOYMENT_SERVICE", Some(earlier)))
        .await
        .expect_err("hrss may not look back");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        refused.metadata().get("popbase-reason").and_then(|v| v.to_str().ok()),
        Some("NOT_APPROVED")
    );
    assert_eq!(p.audit_count(), before + 1, "the refusal is audited");
    hrss.person_summary(ask("EMPLOYMENT_SERVICE", None)).await.expect("hrss now");
    p.stop().await;
}

/// A parent sees a minor child's accesses and consents and revokes one for
/// them; the registry decides who is a parent or guardian: a stranger, or
/// anyone acting for an adult, is refused NOT_GUARDIAN.
#[tokio::test]
async fn a_parent_sees_and_revokes_for_a_minor_and_a_stranger_is_refused() {
    let p = start(None, "mtls").await;
    let people = &p.people;
    let mut platform = ConsentsClient::new(p.department("service-platform.dept.popbase").await);
    EnrollmentClient::new(p.department("education.dept.popbase").await)
        .check(enrollment(&people.child, &[&people.father], XINHUA))
        .await
        .expect("an enrollment check on the child");
    let mut for_child = grant(&people.child, "hrss", "EMPLOYMENT_SERVICE");
    for_child.grantor_id_number = people.father.clone();
    platform.grant(for_child).await.expect("the father consents for the child");

    let accesses = |subject: &str, guardian: &str| ListAccessesRequest {
        purpose: "CITIZEN_ACCESS_LOG".into(),
        subject_id_number: subject.into(),
        guardian_id_number: guardian.into(),
        limit: 0,
    };
    let seen = platform
        .list_accesses(accesses(&people.child, &people.father))
        .await
        .expect("the father sees the child's accesses")
        .into_inner()
        .accesses;
    assert!(
        seen.iter().any(|a| a.department == "education" && a.interface == "EnrollmentCheck"),
        "{seen:?}"
    );
    let consents = |guardian: &str| ListConsentsRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: people.child.clone(),
        guardian_id_number: guardian.into(),
    };
    let listed = platform
        .list_consents(consents(&people.mother))
        .await
        .expect("the mother too")
        .into_inner();
    assert_eq!(listed.consents.len(), 1);
    assert!(listed.consents[0].granted_by_guardian);

    for (subject, guardian) in [(&people.child, &people.stranger), (&people.father, &people.grandmother)] {
        let refused = platform
            .list_accesses(accesses(subject, guardian))
            .await
            .expect_err("not their guardian");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(support::reason(&refused), "NOT_GUARDIAN");
    }
    let stranger_revokes = RevokeConsentRequest {
        purpose: "CITIZEN_CONSENT".into(),
        subject_id_number: people.child.clone(),
        department: "hrss".into(),
        interface: "PersonSummary".into(),
        grant_purpose: "EMPLOYMENT_SERVICE".into(),
        guardian_id_number: people.stranger.clone(),
    };
    assert_eq!(
        platform.revoke(stranger_revokes.clone()).await.expect_err("a stranger").code(),
        tonic::Code::PermissionDenied
    );
    let mother_revokes = RevokeConsentRequest {
        guardian_id_number: people.mother.clone(),
        ..stranger_revokes
    };
    platform.revoke(mother_revokes).await.expect("the mother revokes it");
    let after = platform.list_consents(consents(&people.father)).await.expect("listed").into_inner();
    assert_eq!(after.consents[0].state, popbase_proto::gateway::ConsentState::Revoked as i32);
    p.stop().await;
}
