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

/// The residence role's 政策找人 for resident insurance answers the same
/// residents whether it asks the feeds in batches (today) or reads each
/// resident's records as of a day (tomorrow, nothing changing between), and
/// they are the permit holders of the gateway's list.
#[tokio::test]
async fn find_unused_agrees_with_itself_and_with_the_list() {
    use popbase_proto::residence::{FindUnusedRequest, Policy};
    let p = start(None, "mtls").await;
    let entitlements = p.sources.entitlements.clone();
    let unused = |policy: Policy, on: chrono::NaiveDate| {
        let request = FindUnusedRequest {
            policy: policy as i32,
            division_code: "3703".into(),
            on: Some(on.into()),
        };
        let mut entitlements = entitlements.clone();
        async move {
            let mut stream = entitlements.find_unused(request).await.expect("find").into_inner();
            let mut found = BTreeSet::new();
            while let Some(e) = stream.message().await.expect("stream") {
                assert!(e.qualifies && !e.used && e.used_known, "{e:?}");
                found.insert(e.id_number);
            }
            found
        }
    };
    let today = unused(Policy::ResidentMedicalInsurance, support::today()).await;
    let tomorrow = unused(Policy::ResidentMedicalInsurance, support::today() + chrono::Duration::days(1)).await;
    assert_eq!(today, tomorrow);
    let expected: BTreeSet<String> = [&p.people.migrant, &p.people.permit_stranger].into_iter().cloned().collect();
    assert_eq!(today, expected);
    let holders: BTreeSet<String> = list(&p, "3703")
        .await
        .into_iter()
        .filter(|r| r.kind == ResidentKind::PermitHolder as i32)
        .map(|r| r.id_number)
        .collect();
    assert_eq!(holders, today);
    // Education: the accompanied girl of a valid permit, not the boy whose
    // mother's permit lapsed (the feeds are asked only about her).
    let pupils = unused(Policy::CompulsoryEducation, support::today()).await;
    assert_eq!(pupils, BTreeSet::from([p.people.migrant_child.clone()]));
    let tomorrow = support::today() + chrono::Duration::days(1);
    assert_eq!(
        unused(Policy::CompulsoryEducation, tomorrow).await,
        pupils,
        "batched and per-child paths agree"
    );
    // Once the education bureau reports her enrolled, she is no longer listed.
    use popbase_proto::feeds::{FeedRecord, Source, StudentState, StudentStatus, feed_record::Payload};
    let enrolled = FeedRecord {
        source: Source::Education as i32,
        record_id: "EDU-LIST-1".into(),
        as_of_unix_millis: chrono::Utc::now().timestamp_millis() - 1_000,
        payload: Some(Payload::Student(StudentStatus {
            id_number: p.people.migrant_child.clone(),
            school_id: "SCH-1".into(),
            grade: 3,
            state: StudentState::Enrolled as i32,
            since: Some(support::today().into()),
        })),
    };
    let summary = p
        .sources
        .feeds_ingest
        .clone()
        .ingest(tokio_stream::iter([enrolled]))
        .await
        .expect("ingest")
        .into_inner();
    assert_eq!(summary.accepted, 1, "{summary:?}");
    assert_eq!(unused(Policy::CompulsoryEducation, support::today()).await, BTreeSet::new());
    assert_eq!(unused(Policy::CompulsoryEducation, tomorrow).await, BTreeSet::new());
    p.stop().await;
}

/// A source that cannot be reached ends the list UNAVAILABLE, and the
/// failure is in the audit trail.
#[tokio::test]
async fn a_city_list_without_its_registry_fails_closed() {
    let p = support::start_without_registry().await;
    let before = p.audit_count();
    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    let request = InsuranceGapRequest {
        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
        division_code: "3703".into(),
    };
    let failed = match insurance.insurance_gap(request).await {
        Err(status) => status,
        Ok(stream) => match stream.into_inner().next().await {
            Some(Ok(_)) => panic!("no resident may be listed without the registry"),
            Some(Err(status)) => status,
            None => panic!("the list ended without its error"),
        },
    };
    assert_eq!(failed.code(), tonic::Code::Unavailable);
    assert!(failed.message().contains("household registry"), "{}", failed.message());
    assert_eq!(p.audit_count(), before + 1);
    let record = p.audit_record(before + 1);
    assert_eq!(
        (record.reason.as_str(), record.decision),
        ("FETCH_FAILED", popbase_proto::gateway::Decision::Denied as i32)
    );
    p.stop().await;
}

/// Adds `households` of four registered, uninsured persons in 新华社区.
fn add_uninsured(p: &Platform, households: u32) {
    let families: Vec<_> = (0..households)
        .map(|h| {
            let household_id = format!("370303{:08}", 50_000 + h);
            let members: Vec<_> = (0..4u32)
                .map(|m| {
                    let birth = support::today() - chrono::Duration::days(i64::from(7_000 + h * 4 + m));
                    let id = popbase_domain::IdNumber::generate("370303", birth, 500).expect("valid id");
                    person(id.as_str(), "测试", &household_id, XINHUA, Relationship::Son)
                })
                .collect();
            household(&household_id, &members[0].id_number.clone(), XINHUA, members)
        })
        .collect();
    p.registry.import(&families).expect("import");
}

/// A replica finds at most `limits.max_city_lists` whole-city lists at
/// once: a list whose reader takes nothing holds its place (its finder
/// waits with the city's numbers in hand), another city list is refused
/// OVERLOADED (counted into the refusal summary), as is a county's (an
/// eighth of a city's weight), a street's is not held back, and the place
/// comes free when the first reader hangs up.
#[tokio::test]
async fn whole_city_lists_are_bounded_per_replica() {
    let p = support::start_configured("mtls", |config| config.limits.max_city_lists = 1).await;
    // Far more parts than the path buffers between the finder and a reader.
    add_uninsured(&p, 10_000);
    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    let gap = |division: &str| InsuranceGapRequest {
        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
        division_code: division.into(),
    };
    let mut held = insurance.insurance_gap(gap("3703")).await.expect("first city list").into_inner();
    held.next().await.expect("a resident").expect("listed");

    // Refused once authorised, as the list's first answer.
    let mut second = insurance.insurance_gap(gap("3703")).await.expect("authorised").into_inner();
    let refused = second.next().await.expect("an answer").expect_err("second city list");
    assert_eq!(
        (refused.code(), support::reason(&refused).as_str()),
        (tonic::Code::ResourceExhausted, "OVERLOADED")
    );
    assert!(second.next().await.is_none(), "nothing follows the refusal");
    // A county's list weighs an eighth of a city's: no place is left for it.
    let mut county = insurance.insurance_gap(gap("370303")).await.expect("authorised").into_inner();
    let refused = county.next().await.expect("an answer").expect_err("a county list");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    // Shed load is counted into the window's refusal summary, not audited alone.
    let mut figures = String::new();
    p.gate.render_metrics(&mut figures);
    assert!(
        figures.contains(r#"popbase_gateway_refusals_total{reason="OVERLOADED",audited="false"} 2"#),
        "{figures}"
    );
    // `list` fails the test on a refusal; 西苑's one resident is insured.
    assert_eq!(
        ids(&list(&p, "370303002").await),
        BTreeSet::new(),
        "a street's list is not held back"
    );

    drop(held);
    let mut listed = 0;
    for _ in 0..50 {
        let mut list = insurance.insurance_gap(gap("3703")).await.expect("authorised").into_inner();
        match list.next().await.expect("an answer") {
            Ok(_) => {
                listed = 1;
                while let Some(resident) = list.next().await {
                    resident.expect("resident");
                    listed += 1;
                }
                break;
            }
            Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listed >= 40_000, "{listed}");
    p.stop().await;
}

/// A reader that takes nothing for `stream_idle_secs` loses the list, and
/// it learns so: what was already on its way arrives, then UNAVAILABLE,
/// never the plain end of a complete list.
#[tokio::test]
async fn a_list_cut_short_never_ends_like_a_whole_one() {
    let p = support::start_configured("mtls", |config| config.limits.stream_idle_secs = 1).await;
    add_uninsured(&p, 10_000);
    let mut insurance = MedicalInsuranceClient::new(p.department("medical-insurance.dept.popbase").await);
    let request = InsuranceGapRequest {
        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
        division_code: "3703".into(),
    };
    let mut list = insurance.insurance_gap(request).await.expect("authorised").into_inner();
    list.next().await.expect("a resident").expect("listed");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mut read = 1;
    let ended = loop {
        match list.next().await {
            Some(Ok(_)) => read += 1,
            Some(Err(status)) => break status,
            None => panic!("a list cut short after {read} residents ended as if whole"),
        }
    };
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(read < 40_000, "{read}");
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

/// Calls of `method` the roles have answered so far.
fn answered(p: &Platform, method: &str) -> u64 {
    let scraped = p.metrics.render();
    let lines = scraped
        .lines()
        .filter(|l| l.starts_with("popbase_grpc_requests_total{") && l.contains(method));
    lines.filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum()
}

/// Counties asked together share one read of the feeds' insured: the first
/// three of eight (less than half a city's weight) look their residents up
/// one by one, the fourth begins a read and the rest join it; within the
/// read's window a city list joins it too. Every list names the same
/// residents whichever way it took the insured out.
#[tokio::test]
async fn counties_asked_together_share_one_read_of_the_insured() {
    const STREAM_INSURED: &str = "/popbase.feeds.v1.Feeds/StreamInsured";
    const CHECK_INSURANCE: &str = "/popbase.feeds.v1.Feeds/CheckInsurance";
    let p = support::start_configured("mtls", |config| {
        config.limits.max_city_lists = 2;
        // Neither the read's window nor the first list's idle reader runs
        // out while the test, a debug build on two busy cores, goes on.
        config.limits.list_share_secs = 600;
        config.limits.stream_idle_secs = 600;
    })
    .await;
    let (uninsured, insured) = add_residents(&p).await;
    // Enough residents that a list whose reader takes nothing more holds
    // its place while it waits (the read is kept for its window).
    add_uninsured(&p, 10_000);
    let gap = InsuranceGapRequest {
        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
        division_code: "370303".into(),
    };
    let (reads_before, checks_before) = (answered(&p, STREAM_INSURED), answered(&p, CHECK_INSURANCE));
    let mut open = Vec::new();
    for n in 1..=8 {
        // A connection each (as eight county offices would have): a list
        // left unread holds its connection's flow-control window.
        let mut insurance = MedicalInsuranceClient::new(p.department_reading_slowly("medical-insurance.dept.popbase").await);
        let mut county = insurance.insurance_gap(gap.clone()).await.expect("authorised").into_inner();
        let first = county.next().await.expect("a resident").expect("listed");
        open.push((first, county));
        let reads = answered(&p, STREAM_INSURED) - reads_before;
        assert_eq!(reads, u64::from(n >= 4), "after county list {n}");
    }
    let checks = answered(&p, CHECK_INSURANCE) - checks_before;
    assert!(checks >= 3, "the first three looked their residents up: {checks} checks");
    // A city list within the read's window joins it rather than reading again.
    let city = list(&p, "3703").await;
    assert_eq!(answered(&p, STREAM_INSURED) - reads_before, 1, "one read for nine lists");
    let listed = ids(&city);
    assert!(uninsured.iter().all(|id| listed.contains(id)) && insured.iter().all(|id| !listed.contains(id)));

    let mut whole = Vec::new();
    for (first, mut county) in open {
        let mut listed = vec![first];
        while let Some(resident) = county.next().await {
            listed.push(resident.expect("resident"));
        }
        whole.push(ids(&listed));
    }
    assert!(city.iter().all(|r| r.committee_code.len() == 12), "committees released");
    let in_county = city.iter().filter(|r| r.committee_code.starts_with("370303"));
    let county: BTreeSet<String> = in_county.map(|r| r.id_number.clone()).collect();
    assert!(county.len() > 40_000, "{}", county.len());
    for (n, listed) in whole.iter().enumerate() {
        assert_eq!(listed, &county, "county list {} (looked up or from the read)", n + 1);
    }
    p.stop().await;
}
