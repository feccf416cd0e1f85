//! Fuzzing every method of every role over real sockets.
//!
//! The methods come from the descriptor set the binary is built with, so a
//! new method is fuzzed the day it is added; Arrow Flight's (export
//! tickets and descriptors) are added by hand. For each, the bodies are:
//! the seed corpus (`tests/fuzz-corpus/seeds.hex`), messages built from the
//! method's input descriptor with hostile values in every field (valid and
//! one-off ID numbers, phone numbers, huge and control-character strings,
//! extreme numbers, unknown enum values, repeated fields past their
//! bounds, nesting), the same with random bytes flipped, and random bytes.
//! Client-streaming methods get one to three such items.
//!
//! Every answer must be a decision, never a crash: no INTERNAL, UNKNOWN or
//! DATA_LOSS, an INVALID_ARGUMENT names its field (`popbase-field`), and
//! afterwards the process is alive and every port answers a real call.
//! `POPBASE_FUZZ_CASES` sets the generated cases per method (120 by default).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use http::uri::PathAndQuery;
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use support::raw::Raw;
use support::rng::Rng;
use support::{Children, popbase, serve_all_in_one, token, with_token};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// One method as the descriptor set describes it.
struct Method {
    path: String,
    input: String,
    client_streaming: bool,
    server_streaming: bool,
}

/// Every message type by full name (".pkg.Name", nested ones too) and every method.
fn descriptors() -> (HashMap<String, DescriptorProto>, Vec<Method>) {
    let set = FileDescriptorSet::decode(popbase_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let (mut messages, mut methods) = (HashMap::new(), Vec::new());
    fn add(prefix: &str, message: &DescriptorProto, into: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            add(&name, nested, into);
        }
        into.insert(name, message.clone());
    }
    for file in &set.file {
        let package = format!(".{}", file.package());
        for message in &file.message_type {
            add(&package, message, &mut messages);
        }
        for service in &file.service {
            for method in &service.method {
                methods.push(Method {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    input: method.input_type().to_string(),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    add_flight(&mut messages, &mut methods);
    (messages, methods)
}

/// Arrow Flight's requests (arrow-flight exports no descriptor set): the
/// export tickets and descriptors departments and the big-data bureau send.
fn add_flight(messages: &mut HashMap<String, DescriptorProto>, methods: &mut Vec<Method>) {
    use prost_types::FieldDescriptorProto;
    let field = |name: &str, number: i32, kind: Type, label: Label| FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        r#type: Some(kind as i32),
        label: Some(label as i32),
        ..Default::default()
    };
    let message = |name: &str, fields: Vec<FieldDescriptorProto>| DescriptorProto {
        name: Some(name.into()),
        field: fields,
        ..Default::default()
    };
    let one = Label::Optional;
    for (name, fields) in [
        ("Ticket", vec![field("ticket", 1, Type::Bytes, one)]),
        (
            "FlightDescriptor",
            vec![
                field("type", 1, Type::Enum, one),
                field("cmd", 2, Type::Bytes, one),
                field("path", 3, Type::String, Label::Repeated),
            ],
        ),
        ("Criteria", vec![field("expression", 1, Type::Bytes, one)]),
        (
            "Action",
            vec![field("type", 1, Type::String, one), field("body", 2, Type::Bytes, one)],
        ),
        (
            "HandshakeRequest",
            vec![
                field("protocol_version", 1, Type::Uint64, one),
                field("payload", 2, Type::Bytes, one),
            ],
        ),
    ] {
        messages.insert(format!(".arrow.flight.protocol.{name}"), message(name, fields));
    }
    for (method, input, client_streaming, server_streaming) in [
        ("DoGet", "Ticket", false, true),
        ("GetFlightInfo", "FlightDescriptor", false, false),
        ("GetSchema", "FlightDescriptor", false, false),
        ("ListFlights", "Criteria", false, true),
        ("DoAction", "Action", false, true),
        ("Handshake", "HandshakeRequest", true, true),
    ] {
        methods.push(Method {
            path: format!("/arrow.flight.protocol.FlightService/{method}"),
            input: format!(".arrow.flight.protocol.{input}"),
            client_streaming,
            server_streaming,
        });
    }
}

/// Hostile and plausible values for string fields.
fn strings(valid_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = valid_ids.to_vec();
    out.extend(valid_ids.iter().map(|id| format!("{}0", &id[..17])));
    out.extend(
        [
            "",
            "3703",
            "370302",
            "370302001001",
            "13912345678",
            "王伟",
            "COMPULSORY_EDUCATION_ENROLLMENT",
            "AUDIT",
            "MEDICAL_INSURANCE_ENROLLMENT",
            "property",
            "nightly-1",
            "../../etc/passwd",
            "' OR 1=1 --",
            "\0\n\r\t\"\\",
            "😀𝄞\u{202e}",
            "2026-02-30",
        ]
        .map(String::from),
    );
    out.push("x".repeat(10_000));
    out.push("长".repeat(3_000));
    out
}

const NUMBERS: [u64; 9] = [0, 1, 2, 7, 255, 10_001, u32::MAX as u64, i64::MAX as u64, u64::MAX];

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bodies stop growing past this (the servers refuse 4 MiB and more
/// before decoding; a fuzz case that takes the client a minute to encode
/// tests nothing).
const BODY_BUDGET: usize = 1 << 20;

/// A random instance of `message`, field by field, `depth` levels deep at most.
fn build(name: &str, messages: &HashMap<String, DescriptorProto>, values: &[String], rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(message) = messages.get(name) else {
        return out;
    };
    for field in &message.field {
        if rng.chance(30) {
            continue;
        }
        let repeats = match field.label() {
            Label::Repeated if rng.chance(2) => 10_001,
            Label::Repeated => rng.below(4),
            _ => 1,
        };
        let number = u64::from(field.number() as u32);
        for _ in 0..repeats {
            if out.len() > BODY_BUDGET {
                return out;
            }
            match field.r#type() {
                Type::String | Type::Bytes => {
                    let value = &values[rng.below(values.len())];
                    varint(number << 3 | 2, &mut out);
                    varint(value.len() as u64, &mut out);
                    out.extend_from_slice(value.as_bytes());
                }
                Type::Message if depth > 0 => {
                    let nested = build(field.type_name(), messages, values, rng, depth - 1);
                    if out.len() + nested.len() > BODY_BUDGET {
                        return out;
                    }
                    varint(number << 3 | 2, &mut out);
                    varint(nested.len() as u64, &mut out);
                    out.extend_from_slice(&nested);
                }
                Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                    varint(number << 3 | 1, &mut out);
                    out.extend_from_slice(&NUMBERS[rng.below(NUMBERS.len())].to_le_bytes());
                }
                Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                    varint(number << 3 | 5, &mut out);
                    out.extend_from_slice(&(NUMBERS[rng.below(NUMBERS.len())] as u32).to_le_bytes());
                }
                Type::Message | Type::Group => {}
                _ => {
                    // Every varint kind: ints, bools, enums (unknown values included).
                    varint(number << 3, &mut out);
                    let value = if rng.chance(50) {
                        rng.next()
                    } else {
                        NUMBERS[rng.below(NUMBERS.len())]
                    };
                    varint(value, &mut out);
                }
            }
        }
    }
    out
}

/// The seed corpus: one hex body per line.
fn seeds() -> Vec<Vec<u8>> {
    let text = include_str!("fuzz-corpus/seeds.hex");
    let mut bodies = Vec::new();
    let mut after_comment = false;
    for line in text.lines() {
        if line.starts_with('#') {
            after_comment = true;
            continue;
        }
        let hex: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if hex.is_empty() && !after_comment {
            continue;
        }
        bodies.push(hex::decode(&hex).expect("seeds.hex holds hex"));
        after_comment = false;
    }
    bodies
}

/// What is wrong with an answer, if anything: a crash rather than a
/// decision (INTERNAL, UNKNOWN, DATA_LOSS), an INVALID_ARGUMENT that names
/// no field, or caller text (`personal`) repeated in the message.
fn verdict(status: &Status, personal: &[String]) -> Option<String> {
    let field = status.metadata().get("popbase-field").and_then(|v| v.to_str().ok()).unwrap_or("");
    if matches!(status.code(), Code::Internal | Code::Unknown | Code::DataLoss) {
        return Some(format!("{:?} {}", status.code(), status.message()));
    }
    if status.code() == Code::InvalidArgument && field.is_empty() {
        return Some(format!("INVALID_ARGUMENT naming no field: {}", status.message()));
    }
    let echoed = personal.iter().find(|v| status.message().contains(v.as_str()))?;
    let shown: String = echoed.chars().take(6).collect();
    Some(format!("echoes caller text ({shown}…) in {:?}", status.code()))
}

/// The judge can fail: each kind of bad answer is caught, decisions pass.
#[test]
fn the_verdict_catches_crashes_unnamed_fields_and_echoes() {
    let personal = vec!["110105194912310020".to_string()];
    let mut named = Status::invalid_argument("must be 18 characters");
    named.metadata_mut().insert("popbase-field", "id_number".parse().expect("ascii"));
    assert_eq!(verdict(&named, &personal), None);
    assert_eq!(verdict(&Status::not_found("no such person"), &personal), None);
    assert!(verdict(&Status::internal("h2 protocol error"), &personal).is_some());
    assert!(verdict(&Status::unknown("no answer within 20 s"), &personal).is_some());
    assert!(verdict(&Status::invalid_argument("bad"), &personal).is_some());
    assert!(verdict(&Status::failed_precondition("110105194912310020 exists"), &personal).is_some());
}

/// The answer's status (OK when it answered), reading a stream to its end.
async fn call(channel: &Channel, bearer: &str, method: &Method, bodies: Vec<Vec<u8>>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Err(e) = grpc.ready().await {
        return Status::unavailable(format!("not ready: {e}"));
    }
    let path = PathAndQuery::try_from(method.path.as_str()).expect("a method path");
    let answered = match (method.client_streaming, method.server_streaming) {
        (false, false) => grpc.unary(with_token(bearer, bodies[0].clone()), path, Raw).await.map(|_| ()),
        (false, true) => match grpc.server_streaming(with_token(bearer, bodies[0].clone()), path, Raw).await {
            Err(status) => Err(status),
            Ok(response) => drain(response.into_inner()).await,
        },
        (true, false) => grpc
            .client_streaming(with_token(bearer, tokio_stream::iter(bodies)), path, Raw)
            .await
            .map(|_| ()),
        (true, true) => match grpc.streaming(with_token(bearer, tokio_stream::iter(bodies)), path, Raw).await {
            Err(status) => Err(status),
            Ok(response) => drain(response.into_inner()).await,
        },
    };
    answered.err().unwrap_or_else(|| Status::ok("answered"))
}

async fn drain(mut stream: tonic::Streaming<Vec<u8>>) -> Result<(), Status> {
    for _ in 0..1_000 {
        if stream.message().await?.is_none() {
            break;
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_method_of_every_role_answers_hostile_bodies_with_a_decision() {
    let cases: usize = std::env::var("POPBASE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let generated = popbase(data, &["gen", "--city", "3703", "--persons", "200", "--seed", "9"]);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    // A quota no fuzzing day exhausts, so refusals stay about the bodies.
    let (child, roles) = serve_all_in_one(data, &[("POPBASE_LIMITS_REFUSALS_PER_WINDOW", "1000000")]);
    let mut running = Children::default();
    running.push(child);
    let bearer = token(data, "service_platform");
    let ports: BTreeMap<&str, Channel> = ["gateway", "household", "residence", "feeds", "ledger"]
        .into_iter()
        .map(|role| {
            let channel = Channel::from_shared(format!("http://{}", roles[role])).expect("url").connect_lazy();
            (role, channel)
        })
        .collect();
    let (messages, methods) = descriptors();
    let valid_ids = vec![support::writes::id(1), support::writes::id(2), "11010519491231002X".to_string()];
    let values = strings(&valid_ids);
    // What an answer must never repeat: personal data and long caller text.
    let personal: Vec<String> = values
        .iter()
        .filter(|v| v.chars().count() == 18 || v.chars().count() >= 100 || v.as_str() == "13912345678" || v.as_str() == "王伟")
        .cloned()
        .collect();
    let seeds = seeds();
    let mut rng = Rng(0x2026_1204);
    let (mut sent, mut by_code, mut failures) = (0usize, BTreeMap::<String, usize>::new(), Vec::new());
    // POPBASE_FUZZ_ONLY=<part of a path> narrows the run to matching methods.
    let only = std::env::var("POPBASE_FUZZ_ONLY").unwrap_or_default();
    for method in methods.iter().filter(|m| m.path.contains(&only)) {
        // Only the ports that serve it: the others answer UNIMPLEMENTED.
        for (role, channel) in &ports {
            let probe = call(channel, &bearer, method, vec![Vec::new()]).await;
            if probe.code() == Code::Unimplemented {
                continue;
            }
            let mut bodies: Vec<Vec<u8>> = seeds.clone();
            for case in 0..cases {
                let mut body = build(&method.input, &messages, &values, &mut rng, 3);
                if case % 4 == 1 && !body.is_empty() {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(body.len());
                        body[at] ^= 1 << rng.below(8);
                    }
                }
                if case % 8 == 3 {
                    body = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                }
                bodies.push(body);
            }
            for body in bodies {
                let items = if method.client_streaming {
                    let mut items = vec![body];
                    for _ in 0..rng.below(3) {
                        items.push(build(&method.input, &messages, &values, &mut rng, 3));
                    }
                    items
                } else {
                    vec![body]
                };
                let (size, started) = (items.iter().map(Vec::len).sum::<usize>(), std::time::Instant::now());
                let status = match tokio::time::timeout(Duration::from_secs(20), call(channel, &bearer, method, items)).await {
                    Ok(status) => status,
                    Err(_) => Status::unknown("no answer within 20 s"),
                };
                if started.elapsed() > Duration::from_secs(2) {
                    eprintln!("slow: {} {size} bytes {:?} {:?}", method.path, started.elapsed(), status.code());
                }
                sent += 1;
                *by_code.entry(format!("{:?}", status.code())).or_default() += 1;
                if let Some(why) = verdict(&status, &personal)
                    && failures.len() < 20
                {
                    failures.push(format!("{role} {}: {why}", method.path));
                }
            }
        }
    }
    println!(
        "fuzz over sockets: {sent} calls to {} methods, answers by code: {by_code:?}",
        methods.len()
    );
    assert!(failures.is_empty(), "answers that are not decisions:\n{}", failures.join("\n"));
    assert!(running.0[0].try_wait().expect("wait").is_none(), "the server is alive");

    // Every port still answers a real call.
    use popbase_proto::gateway::ChainHeadRequest;
    use popbase_proto::gateway::audit_client::AuditClient;
    use popbase_proto::household::ListPersonsRequest;
    use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
    let persons = HouseholdRegistryClient::new(ports["household"].clone())
        .list_persons(ListPersonsRequest {
            division_code: "3703".into(),
            page: None,
        })
        .await
        .expect("the registry answers");
    assert!(!persons.into_inner().persons.is_empty());
    let audit = token(data, "audit");
    AuditClient::new(ports["gateway"].clone())
        .get_chain_head(with_token(&audit, ChainHeadRequest { purpose: "AUDIT".into() }))
        .await
        .expect("the gateway answers");
    for role in ["residence", "feeds", "ledger"] {
        let mut health = tonic_health::pb::health_client::HealthClient::new(ports[role].clone());
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .expect("health");
        assert_eq!(answer.into_inner().status, 1, "{role} serves");
    }
    support::stop_all(&mut running);
}
