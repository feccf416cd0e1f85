//! Bodies that do not decode, and department streams that break or go
//! silent, are refusals like any other: INVALID_ARGUMENT (or ABORTED)
//! naming the body, charged to the caller's quota and refusal budget, and
//! audited, over real TLS sockets.

mod support;

use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use prost::bytes::{Buf, BufMut};
use support::{reason, start, start_configured};
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Field 1 with wire type 7, which no protobuf message decodes.
const JUNK: &[u8] = &[0x0f, 0x01];

/// Sends and receives bodies as bytes, whatever they are.
#[derive(Clone, Default)]
struct Raw;

struct RawCoder;

impl Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;
    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }
    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

async fn unary(channel: &Channel, path: &'static str, body: &[u8]) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    match grpc.unary(Request::new(body.to_vec()), PathAndQuery::from_static(path), Raw).await {
        Ok(_) => Status::ok("answered"),
        Err(status) => status,
    }
}

/// A server-streaming call: its refusal comes with the headers or as the stream's end.
async fn server_streaming(channel: &Channel, path: &'static str, body: &[u8]) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    match grpc
        .server_streaming(Request::new(body.to_vec()), PathAndQuery::from_static(path), Raw)
        .await
    {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return Status::ok("ended"),
                    Err(status) => return status,
                }
            }
        }
    }
}

fn field(status: &Status) -> &str {
    status.metadata().get("popbase-field").and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn bodies_that_do_not_decode_are_audited_charged_and_rate_limited() {
    let catalogue = popbase_gateway::catalogue::SHIPPED.replace(
        "certificate_cn = \"audit.dept.popbase\"\ndaily_quota = 10000",
        "certificate_cn = \"audit.dept.popbase\"\ndaily_quota = 3",
    );
    assert_ne!(catalogue, popbase_gateway::catalogue::SHIPPED, "quota edited");
    let p = support::start(Some(catalogue), "both").await;
    let auditor = p.department("audit.dept.popbase").await;

    // Each malformed call is the caller's error, named, and audited.
    for n in 1..=3 {
        let before = p.audit_count();
        let status = unary(&auditor, "/popbase.gateway.v1.Audit/GetChainHead", JUNK).await;
        assert_eq!(
            (status.code(), field(&status)),
            (Code::InvalidArgument, "body"),
            "call {n}: {status:?}"
        );
        assert!(status.message().contains("ChainHeadRequest"), "{}", status.message());
        assert_eq!(p.audit_count(), before + 1, "one record per malformed call");
        let audited = p.audit_record(p.audit_count());
        assert_eq!(
            (audited.department.as_str(), audited.interface.as_str(), audited.reason.as_str()),
            ("audit", "AuditChainHead", "INVALID_ARGUMENT")
        );
    }
    // ...and costs a quota unit: a quota of 3 is used up by three of them.
    let status = unary(&auditor, "/popbase.gateway.v1.Audit/GetChainHead", JUNK).await;
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::ResourceExhausted, "QUOTA_EXCEEDED")
    );

    // Arrow Flight's own decoder (INTERNAL in tonic) is refused the same way.
    let big_data = p.department("big-data.dept.popbase").await;
    let before = p.audit_count();
    let status = server_streaming(&big_data, "/arrow.flight.protocol.FlightService/DoGet", JUNK).await;
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "body"), "{status:?}");
    assert_eq!(p.audit_record(before + 1).interface, "Export");

    // A caller without credentials gets the authentication refusal, and a
    // flood of them is answered REFUSAL_FLOOD past the budget, unaudited
    // one by one but counted into a summary.
    let anonymous = p.channel(None).await;
    let budget = p.config.limits.refusals_per_window;
    let before = p.audit_count();
    let mut codes = Vec::new();
    for _ in 0..budget + 10 {
        let status = unary(&anonymous, "/popbase.gateway.v1.Persons/PersonSummary", JUNK).await;
        codes.push(reason(&status));
    }
    assert!(codes[..budget as usize].iter().all(|c| c == "NO_CREDENTIALS"), "{codes:?}");
    assert!(codes[budget as usize..].iter().all(|c| c == "REFUSAL_FLOOD"), "{codes:?}");
    assert_eq!(
        p.audit_count(),
        before + u64::from(budget),
        "the flood past the budget writes nothing yet"
    );
    p.gate.record_refusal_summaries(true).await;
    let summary = p.audit_record(p.audit_count());
    assert_eq!((summary.interface.as_str(), summary.count), ("REFUSALS", 10));
    p.stop().await;
}

#[tokio::test]
async fn a_malformed_intake_item_ends_the_stream_audited() {
    let p = start(None, "mtls").await;
    let education = p.department("education.dept.popbase").await;
    let before = p.audit_count();
    let mut grpc = tonic::client::Grpc::new(education);
    grpc.ready().await.expect("ready");
    let items = tokio_stream::iter(vec![JUNK.to_vec()]);
    let path = PathAndQuery::from_static("/popbase.gateway.v1.Enrollment/CheckIntake");
    let mut answers = grpc
        .streaming(Request::new(items), path, Raw)
        .await
        .expect("stream opens")
        .into_inner();
    let status = answers.message().await.expect_err("the stream ends with the refusal");
    assert_eq!((status.code(), field(&status)), (Code::InvalidArgument, "body"), "{status:?}");
    assert_eq!(p.audit_count(), before + 1);
    assert_eq!(p.audit_record(before + 1).interface, "EnrollmentCheck");
    p.stop().await;
}

#[tokio::test]
async fn a_silent_intake_stream_is_closed_after_the_idle_limit() {
    let p = start_configured("mtls", |config| config.limits.stream_idle_secs = 1).await;
    let education = p.department("education.dept.popbase").await;
    let before = p.audit_count();
    let (keep_open, items) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let mut grpc = tonic::client::Grpc::new(education);
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/popbase.gateway.v1.Enrollment/CheckIntake");
    let started = Instant::now();
    let mut answers = grpc
        .streaming(Request::new(tokio_stream::wrappers::ReceiverStream::new(items)), path, Raw)
        .await
        .expect("stream opens")
        .into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(10), answers.next())
        .await
        .expect("closed by the gateway, not by this test's timeout");
    let status = ended.expect("an answer").expect_err("a refusal");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    assert_eq!(p.audit_count(), before + 1, "the closing is audited");
    drop(keep_open);
    p.stop().await;
}
