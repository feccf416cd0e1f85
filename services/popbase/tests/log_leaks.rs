//! No personal data in clear in what the platform says: the server's log
//! at debug level, in text and in JSON, the traces it exports over OTLP,
//! and the errors it answers, while
//! callers send it ID numbers, phone numbers and names, valid and hostile,
//! in the fields meant for them and in fields that are not (a purpose, an
//! evidence text). scripts/leak-scan.py decides; its self-test shows it
//! catches each kind.

mod support;

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use popbase_proto::common::Address;
use popbase_proto::gateway::enrollment_client::EnrollmentClient;
use popbase_proto::gateway::persons_client::PersonsClient;
use popbase_proto::gateway::{EnrollmentCheckRequest, PersonSummaryRequest};
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::household::{GetPersonRequest, ListPersonsRequest};
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use popbase_proto::residence::{ApplyForPermitRequest, RegisterResidenceRequest, ResidenceBasis, ResidenceRegistration};
use support::raw::Raw;
use support::writes::{day, id};
use support::{Children, popbase, serve_all_in_one_logging, stop_all, token, with_token};
use tonic::transport::Channel;

/// An OTLP trace collector that keeps the raw bytes of every export (the
/// spans as protobuf: their strings are there as sent).
#[derive(Clone, Default)]
struct TraceSink(Arc<Mutex<Vec<u8>>>);

impl tonic::server::NamedService for TraceSink {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

struct Export(Arc<Mutex<Vec<u8>>>);

impl tonic::server::UnaryService<Vec<u8>> for Export {
    type Response = Vec<u8>;
    type Future = std::future::Ready<Result<tonic::Response<Vec<u8>>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        self.0.lock().expect("lock").extend(request.into_inner());
        // An empty ExportTraceServiceResponse: everything accepted.
        std::future::ready(Ok(tonic::Response::new(Vec::new())))
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for TraceSink {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let kept = self.0.clone();
        Box::pin(async move { Ok(tonic::server::Grpc::new(Raw).unary(Export(kept), request).await) })
    }
}

/// Starts a [`TraceSink`] on a free port; its endpoint URL.
fn trace_sink(sink: &TraceSink) -> String {
    let addr = support::free_port();
    let server = tonic::transport::Server::builder().add_service(sink.clone()).serve(addr);
    tokio::spawn(server);
    format!("http://{addr}")
}

/// A planted mobile number and a name as the generator makes them.
const PHONE: &str = "13912345678";
const NAME: &str = "王伟";

fn channel(roles: &std::collections::HashMap<String, String>, role: &str) -> Channel {
    Channel::from_shared(format!("http://{}", roles[role])).expect("url").connect_lazy()
}

/// Calls carrying personal data, right and wrong; the message of every
/// error answered, one per line.
async fn provoke(roles: &std::collections::HashMap<String, String>, data: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let mut note = |result: Result<(), tonic::Status>| {
        if let Err(status) = result {
            errors.push(format!("{:?} {}", status.code(), status.message()));
        }
    };
    let mut registry = HouseholdRegistryClient::new(channel(roles, "household"));
    let someone = registry
        .list_persons(ListPersonsRequest {
            division_code: "3703".into(),
            page: None,
        })
        .await
        .expect("persons")
        .into_inner()
        .persons
        .remove(0)
        .id_number;
    let stranger = id(7);
    for asked in [someone.clone(), stranger.clone(), format!("{stranger}9"), PHONE.to_string()] {
        note(registry.get_person(GetPersonRequest { id_number: asked }).await.map(|_| ()));
    }

    let mut residence = ResidencePermitsClient::new(channel(roles, "residence"));
    let registration = |id_number: &str, phone: &str| ResidenceRegistration {
        id_number: id_number.into(),
        name: NAME.into(),
        address: Some(Address {
            committee_code: "370302001001".into(),
            detail: format!("和平路1号 {PHONE}"),
        }),
        registered_on: day(2024, 1, 10),
        basis: ResidenceBasis::Employment as i32,
        phone: phone.into(),
        ..Default::default()
    };
    for (id_number, phone) in [(stranger.as_str(), PHONE), (someone.as_str(), "not a phone"), ("370302", PHONE)] {
        let request = RegisterResidenceRequest {
            registration: Some(registration(id_number, phone)),
        };
        note(residence.register_residence(request).await.map(|_| ()));
    }
    let apply = ApplyForPermitRequest {
        id_number: stranger.clone(),
        on: day(2024, 8, 1),
        basis: ResidenceBasis::Employment as i32,
        evidence: format!("{NAME} {PHONE} {someone}"),
    };
    note(residence.apply_for_permit(apply).await.map(|_| ()));

    let bearer = token(data, "education");
    let mut enrollment = EnrollmentClient::new(channel(roles, "gateway"));
    for (purpose, child) in [
        ("COMPULSORY_EDUCATION_ENROLLMENT", someone.as_str()),
        ("COMPULSORY_EDUCATION_ENROLLMENT", stranger.as_str()),
        (someone.as_str(), stranger.as_str()),
        (PHONE, NAME),
    ] {
        let request = EnrollmentCheckRequest {
            purpose: purpose.into(),
            request_id: format!("{NAME}-{PHONE}"),
            child_id_number: child.into(),
            guardian_id_numbers: vec![someone.clone(), stranger.clone()],
            ..Default::default()
        };
        note(enrollment.check(with_token(&bearer, request)).await.map(|_| ()));
    }
    let mut persons = PersonsClient::new(channel(roles, "gateway"));
    for asked in [someone.clone(), format!("{someone}{PHONE}")] {
        let request = PersonSummaryRequest {
            purpose: format!("CHECK {NAME}"),
            id_number: asked,
            ..Default::default()
        };
        note(persons.person_summary(with_token(&bearer, request)).await.map(|_| ()));
    }
    errors
}

fn scan(files: &[&Path]) -> (bool, String) {
    let scanner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/leak-scan.py");
    let out = std::process::Command::new("python3")
        .arg(scanner)
        .args(files)
        .output()
        .expect("python3");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

// Several workers: the trace sink must answer while this test waits on the
// servers' processes (their last spans are exported as they shut down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_id_number_phone_or_name_in_clear_in_debug_logs_traces_or_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let generated = popbase(&data, &["gen", "--city", "3703", "--persons", "200", "--seed", "3"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let mut outputs = Vec::new();
    let sink = TraceSink::default();
    let collector = trace_sink(&sink);
    for format in ["text", "json"] {
        let log = dir.path().join(format!("server-{format}.log"));
        let env = [
            ("POPBASE_LOG", "debug"),
            ("POPBASE_LOG_FORMAT", format),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ];
        let (child, roles) = serve_all_in_one_logging(&data, &env, Stdio::from(File::create(&log).expect("log file")));
        let mut running = Children::default();
        running.push(child);
        let errors = provoke(&roles, &data).await;
        stop_all(&mut running);
        assert!(errors.len() >= 8, "the hostile calls were refused: {errors:?}");
        let answered = dir.path().join(format!("errors-{format}.log"));
        std::fs::write(&answered, errors.join("\n")).expect("write errors");
        let text = std::fs::read_to_string(&log).expect("read log");
        assert!(
            text.lines().count() > 100,
            "a debug log of some size: {} lines",
            text.lines().count()
        );
        outputs.push((log, answered));
    }
    // The traces exported while both servers ran (flushed at their shutdown).
    let traces = dir.path().join("traces.otlp");
    let exported = sink.0.lock().expect("lock").clone();
    let names_a_request = exported.windows(b"grpc.request".len()).any(|w| w == b"grpc.request");
    assert!(names_a_request, "the servers exported their spans: {} bytes", exported.len());
    std::fs::write(&traces, exported).expect("write traces");
    let mut files: Vec<&Path> = outputs.iter().flat_map(|(log, errors)| [log.as_path(), errors.as_path()]).collect();
    files.push(traces.as_path());
    let (clean, report) = scan(&files);
    assert!(clean, "personal data in clear:\n{report}");

    // The scanner sees a planted one in the same files (the negative control).
    let planted = dir.path().join("planted.log");
    std::fs::write(&planted, format!("{}\nresident {NAME} phone {PHONE}\n", id(7))).expect("write");
    let (clean, report) = scan(&[planted.as_path()]);
    assert!(
        !clean && report.contains("ID number") && report.contains("mobile number") && report.contains("generated name"),
        "{report}"
    );
}
