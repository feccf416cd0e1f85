//! Admission control over real sockets: past a department's in-flight
//! limit, or the port's, a call is refused at once with RESOURCE_EXHAUSTED
//! (reason OVERLOADED) instead of waiting in a queue, other callers are
//! still answered, and a place freed is a place usable again.

mod support;

use std::time::{Duration, Instant};

use popbase_proto::gateway::enrollment_client::EnrollmentClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{EnrollmentCheckRequest, PersonSummaryRequest};
use support::{XINHUA, reason, start_configured};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

fn application(p: &support::Platform) -> EnrollmentCheckRequest {
    EnrollmentCheckRequest {
        purpose: "COMPULSORY_EDUCATION_ENROLLMENT".into(),
        request_id: "shed".into(),
        child_id_number: p.people.child.clone(),
        guardian_id_numbers: vec![p.people.father.clone()],
        district_codes: vec![XINHUA.into()],
        reference_date: None,
    }
}

/// An intake stream left open (it holds its call's place until dropped).
async fn open_intake(
    client: &mut EnrollmentClient<tonic::transport::Channel>,
) -> (
    mpsc::Sender<EnrollmentCheckRequest>,
    tonic::Streaming<popbase_proto::gateway::EnrollmentCheckResponse>,
) {
    let (tx, rx) = mpsc::channel(1);
    let answers = client
        .check_intake(ReceiverStream::new(rx))
        .await
        .expect("intake opens")
        .into_inner();
    (tx, answers)
}

/// Calls `call` until it is admitted (answered or refused for any reason
/// but OVERLOADED), for at most 5 s: a freed place is noticed once the
/// server has seen the stream end.
async fn admitted_within<F, Fut, T>(mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match call().await {
            Err(status) if reason(&status) == "OVERLOADED" => {
                assert!(Instant::now() < until, "still shed 5 s after a place was freed");
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => return,
        }
    }
}

#[tokio::test]
async fn a_department_past_its_in_flight_limit_is_refused_at_once() {
    let p = start_configured("mtls", |config| config.limits.max_calls_per_department = 2).await;
    let mut education = EnrollmentClient::new(p.department("education.dept.popbase").await);
    let first = open_intake(&mut education).await;
    let second = open_intake(&mut education).await;

    let started = Instant::now();
    let refused = education.check(application(&p)).await.expect_err("a third call in flight");
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::ResourceExhausted, "OVERLOADED"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not queued: {:?}",
        started.elapsed()
    );

    // Another department has its own places.
    let mut hrss = PersonsClient::new(p.department("hrss.dept.popbase").await);
    let summary = PersonSummaryRequest {
        purpose: "EMPLOYMENT_SERVICE".into(),
        id_number: p.people.father.clone(),
        as_of: None,
    };
    let other = hrss.person_summary(summary).await;
    assert_ne!(other.err().map(|s| reason(&s)), Some("OVERLOADED".to_string()));

    // Ending one stream frees its place.
    drop(first);
    admitted_within(|| {
        let mut education = education.clone();
        let request = application(&p);
        async move { education.check(request).await }
    })
    .await;
    drop(second);
    p.stop().await;
}

#[tokio::test]
async fn a_port_past_its_concurrent_calls_sheds_everyone_and_counts_it() {
    let p = start_configured("mtls", |config| config.limits.max_concurrent_calls = 2).await;
    let mut education = EnrollmentClient::new(p.department("education.dept.popbase").await);
    let first = open_intake(&mut education).await;
    let second = open_intake(&mut education).await;

    let mut hrss = PersonsClient::new(p.department("hrss.dept.popbase").await);
    let summary = || PersonSummaryRequest {
        purpose: "EMPLOYMENT_SERVICE".into(),
        id_number: p.people.father.clone(),
        as_of: None,
    };
    let refused = hrss.person_summary(summary()).await.expect_err("the port is full");
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::ResourceExhausted, "OVERLOADED"));
    let scrape = p.metrics.render();
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("popbase_shed_calls_total{role=\"gateway\"}") && !l.ends_with(" 0")),
        "shed calls are counted"
    );

    drop(first);
    admitted_within(|| {
        let mut hrss = hrss.clone();
        let request = summary();
        async move { hrss.person_summary(request).await }
    })
    .await;
    drop(second);
    p.stop().await;
}
