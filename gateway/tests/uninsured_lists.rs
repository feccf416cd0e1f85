//! The uninsured list (医保比对) of a whole city and of its parts, over
//! real sockets: the city's 4-digit code (the feeds' insured read in one
//! pass) lists exactly the residents its counties list one by one (batched
//! look-ups); the answer leaves in parts, each audited with its persons as
//! subjects; all-in-one, the same list comes from the roles' handlers.

mod support;

use std::collections::BTreeSet;

use popbase_gateway::catalogue::interface;
use popbase_gateway::interfaces::insurance::PART;
use popbase_proto::gateway::medical_insurance_client::MedicalInsuranceClient;
use popbase_proto::gateway::{InsuranceGapRequest, ResidentKind, UninsuredResident};
use popbase_proto::household::Relationship;
use support::{Platform, XINHUA, XIYUAN, household, person, start, start_with_local_exports};
use tokio_stream::StreamExt;

/// 城里社区, in 淄川 (370302): a second county of the city.
const CHENGLI: &str = "370302001001";
/// Households of four added to the test neighbourhood.
const HOUSEHOLDS: u16 = 700;

/// Adds 2,800 registered persons over three committees in two counties and
/// insures every third; answers (uninsured, insured).
async fn add_residents(p: &Platform) -> (Vec<String>, Vec<String>) {
    let committees = [XINHUA, XIYUAN, CHENGLI];
    let (mut families, mut uninsured, mut insured) = (Vec::new(), Vec::new(), Vec::new());
    for h in 0..HOUSEHOLDS {
        let committee = committees[usize::from(h) % committees.len()];
        let county = &committee[..6];
        let household_id = format!("{county}{:08}", 10_000 + u32::from(h));
        let members: Vec<_> = (0..4u16)
            .map(|m| {
                let birth = support::today() - chrono::Duration::days(i64::from(20 + m) * 365 + i64::from(h));
                let id = popbase_domain::IdNumber::generate(county, birth, 100 + h % 800 + m)
                    .expect("valid id")
                    .as_str()
                    .to_string();
                let relationship = if m == 0 { Relationship::Head } else { Relationship::Son };
                person(&id, "测试", &household_id, committee, relationship)
            })
            .collect();
        for (m, member) in members.iter().enumerate() {
            if (usize::from(h) * 4 + m) % 3 == 0 {
                insured.push(member.id_number.clone());
            } else {
                uninsured.push(member.id_number.clone());
            }
        }
        families.push(household(&household_id, &members[0].id_number.clone(), committee, members));
    }
    let distinct: BTreeSet<&String> = uninsured.iter().chain(&insured).collect();
    assert_eq!(distinct.len(), usize::from(HOUSEHOLDS) * 4, "generated ID numbers are distinct");
    p.registry.import(&families).expect("import");
    let records: Vec<_> = insured
        .iter()
        .enumerate()
        .map(|(n, id)| support::new_insurance(id, &format!("MI-LIST-{n}")))
        .collect();
    let summary = p
        .sources
        .feeds_ingest
        .clone()
        .ingest(tokio_stream::iter(records))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(summary.accepted, insured.len() as u64);
    (uninsured, insured)
}

async fn list(p: &Platform, division: &str) -> Vec<UninsuredResident> {
    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    let request = InsuranceGapRequest {
        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
        division_code: division.into(),
    };
    let mut stream = insurance.insurance_gap(request).await.expect("listed").into_inner();
    let mut listed = Vec::new();
    while let Some(resident) = stream.next().await {
        listed.push(resident.expect("resident"));
    }
    listed
}

fn ids(listed: &[UninsuredResident]) -> BTreeSet<String> {
    listed.iter().map(|r| r.id_number.clone()).collect()
}

#[tokio::test]
async fn the_city_lists_what_its_counties_list_in_audited_parts() {
    let p = start(None, "mtls").await;
    let (uninsured, insured) = add_residents(&p).await;

    let before = p.audit_count();
    let city = list(&p, "3703").await;
    let records = p.audit_count() - before;
    let listed = ids(&city);
    assert_eq!(listed.len(), city.len(), "no one listed twice");
    assert!(uninsured.iter().all(|id| listed.contains(id)), "every uninsured resident is listed");
    assert!(insured.iter().all(|id| !listed.contains(id)), "no insured resident is listed");
    assert!(listed.contains(&p.people.child) && listed.contains(&p.people.migrant));
    assert!(!listed.contains(&p.people.father) && !listed.contains(&p.people.migrant_child));
    let kinds: Vec<i32> = city.iter().map(|r| r.kind).collect();
    let first_holder = kinds
        .iter()
        .position(|&k| k == ResidentKind::PermitHolder as i32)
        .expect("a permit holder");
    assert!(
        kinds[first_holder..].iter().all(|&k| k == ResidentKind::PermitHolder as i32),
        "registered first"
    );
    // Parts of PART residents (the last one short), each with its own record.
    assert_eq!(
        records as usize,
        city.len().div_ceil(PART),
        "{records} records for {} residents",
        city.len()
    );
    assert!(records >= 2);

    // Counties one by one (look-ups, not the insured set): the same residents.
    let mut counties = BTreeSet::new();
    for county in ["370302", "370303", "370305"] {
        counties.extend(ids(&list(&p, county).await));
    }
    assert_eq!(counties, listed);
    let street = ids(&list(&p, "370303001").await);
    assert!(street.is_subset(&listed) && street.len() < listed.len());

    // Every listed person's access log names the list; an insured one's does not.
    let last = p.gate.accesses_of(&uninsured[uninsured.len() - 1], 10).await.expect("accesses");
    assert!(last.iter().any(|a| a.interface == interface::INSURANCE_GAP), "{last:?}");
    let untouched = p.gate.accesses_of(&insured[0], 10).await.expect("accesses");
    assert!(untouched.iter().all(|a| a.interface != interface::INSURANCE_GAP));
    p.stop().await;
}

/// All-in-one the gateway streams the ID numbers from the roles' handlers:
/// the same list, and the calls counted under the roles' methods.
#[tokio::test]
async fn all_in_one_the_city_list_comes_from_the_handlers() {
    let p = start_with_local_exports().await;
    let metrics = p.metrics.clone();
    let listed = ids(&list(&p, "3703").await);
    let expected: BTreeSet<String> = [&p.people.child, &p.people.migrant, &p.people.permit_stranger]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(listed, expected);
    let scraped = metrics.render();
    for method in [
        "/popbase.household.v1.HouseholdRegistry/StreamPersonIds",
        "/popbase.feeds.v1.Feeds/StreamInsured",
    ] {
        assert!(scraped.contains(method), "{method} counted");
    }
    p.stop().await;
}

#[tokio::test]
async fn codes_outside_the_city_or_of_no_level_are_refused() {
    let p = start(None, "mtls").await;
    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    for code in ["37", "3701", "37030", "3703030"] {
        let request = InsuranceGapRequest {
            purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
            division_code: code.into(),
        };
        let refused = insurance.insurance_gap(request).await.expect_err(code);
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{code}");
        assert!(refused.message().contains("division_code"), "{code}: {}", refused.message());
    }
    p.stop().await;
}
