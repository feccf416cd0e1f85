//! Bulk export over Arrow Flight through the gateway: listing, reading
//! every dataset de-identified, the audit record of each export,
//! pseudonym stability, identified exports, refusals, and incremental
//! exports after a change.

mod support;

use std::collections::BTreeSet;

use arrow_array::types::Int16Type;
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::{Criteria, FlightClient, FlightDescriptor, Ticket as FlightTicket};
use arrow_schema::Schema;
use futures::TryStreamExt;
use popbase_domain::Pseudonymizer;
use popbase_export::{DATASETS, SNAPSHOT_SEQ_KEY, Ticket};
use popbase_household::EventContext;
use popbase_proto::common::Address;
use popbase_proto::gateway::{AuditRecord, Decision, ExportPhase};
use sha2::{Digest, Sha256};
use support::{Platform, XIYUAN, reason, start, start_with_local_exports};

const BIG_DATA: &str = "big-data.dept.popbase";
const POLICE: &str = "public-security.dept.popbase";

async fn client(p: &Platform, cn: &str) -> FlightClient {
    FlightClient::new(p.department(cn).await)
}

/// All rows of one DoGet, and the schema they came with.
async fn read(client: &mut FlightClient, ticket: &Ticket) -> Result<(Schema, Vec<RecordBatch>), FlightError> {
    let mut stream = client.do_get(FlightTicket::new(ticket.to_bytes())).await?;
    let mut batches = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        batches.push(batch);
    }
    let schema = stream.schema().map(|s| s.as_ref().clone()).expect("a schema arrives first");
    Ok((schema, batches))
}

async fn list(client: &mut FlightClient) -> Vec<arrow_flight::FlightInfo> {
    client
        .list_flights(Vec::<u8>::new())
        .await
        .expect("list")
        .try_collect()
        .await
        .expect("infos")
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn texts(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let values = batch.column_by_name(column).unwrap_or_else(|| panic!("column {column}"));
        // Enum labels arrive as a dictionary (popbase_export::labels).
        if let Some(labels) = values.as_any().downcast_ref::<DictionaryArray<Int16Type>>() {
            let words = labels.values().as_any().downcast_ref::<StringArray>().expect("labels");
            out.extend(
                labels
                    .keys()
                    .iter()
                    .map(|k| k.map_or(String::new(), |k| words.value(k as usize).to_string())),
            );
            continue;
        }
        let values = values.as_any().downcast_ref::<StringArray>().expect("text");
        out.extend(values.iter().map(|v| v.unwrap_or_default().to_string()));
    }
    out
}

fn ticket(dataset: &str) -> Ticket {
    Ticket {
        purpose: "POPULATION_ANALYSIS".into(),
        ..Ticket::for_dataset(dataset)
    }
}

fn last_record(p: &Platform) -> AuditRecord {
    p.audit_record(p.audit_count())
}

fn status_of(error: FlightError) -> tonic::Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => panic!("expected a gRPC status, got {other}"),
    }
}

#[tokio::test]
async fn big_data_lists_and_reads_every_dataset_pseudonymised_and_each_export_is_one_record() {
    let p = start(None, "mtls").await;
    let mut flight = client(&p, BIG_DATA).await;
    let infos = list(&mut flight).await;
    let listed: BTreeSet<String> = infos
        .iter()
        .filter_map(|i| i.flight_descriptor.as_ref())
        .map(|d| d.path[0].clone())
        .collect();
    let all: BTreeSet<String> = DATASETS.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(listed, all, "the bureau is approved for every dataset");

    let expected_rows = [
        ("persons", 6),
        ("households", 3),
        ("residence_permits", 3),
        ("medical_insurance", 5),
        ("statistics", 2),
        ("standard_addresses", 3),
    ];
    for info in infos {
        let name = info.flight_descriptor.as_ref().map(|d| d.path[0].clone()).expect("descriptor");
        let listed_schema = info.clone().try_decode_schema().expect("schema");
        for personal in [
            "id_number",
            "name",
            "phone",
            "address_detail",
            "birth_date",
            "father_id_number",
            "permit_number",
        ] {
            assert!(listed_schema.field_with_name(personal).is_err(), "{name} lists {personal}");
        }
        let ticket_bytes = info.endpoint[0].ticket.as_ref().expect("ticket").ticket.clone();
        let before = p.audit_count();
        let mut stream = flight.do_get(FlightTicket::new(ticket_bytes)).await.expect("do_get");
        let mut batches = Vec::new();
        while let Some(batch) = stream.try_next().await.expect("batch") {
            batches.push(batch);
        }
        let schema = stream.schema().expect("schema").clone();
        assert_eq!(schema.fields(), listed_schema.fields(), "{name}: the listed schema is what arrives");
        assert!(schema.metadata().contains_key(SNAPSHOT_SEQ_KEY), "{name}");
        if let Some((_, n)) = expected_rows.iter().find(|(d, _)| *d == name) {
            assert_eq!(rows(&batches), *n, "{name} rows");
        }
        if name == "residence_permits" {
            // The permit that lapsed yesterday is still marked valid in the
            // store (this harness runs no expiry); the export says expired.
            let mut statuses = texts(&batches, "status");
            statuses.sort();
            assert_eq!(statuses, ["expired", "valid", "valid"], "the true status leaves");
        }
        if name == "persons" {
            // Enum labels leave as dictionaries of their whole label set,
            // the set listed in the field (what a reader sees without rows).
            let status = schema.field_with_name("status").expect("status");
            assert!(matches!(status.data_type(), arrow_schema::DataType::Dictionary(_, _)), "{status:?}");
            let listed = &status.metadata()[popbase_export::labels::LABELS_KEY];
            assert!(
                listed.split(',').any(|l| l == "active") && listed.split(',').any(|l| l == "deceased"),
                "{listed}"
            );
            let column = batches[0].column_by_name("status").expect("status");
            let dictionary = column.as_any().downcast_ref::<DictionaryArray<Int16Type>>().expect("a dictionary");
            assert_eq!(
                dictionary.values().len(),
                listed.split(',').count(),
                "the whole set, in every batch"
            );
            assert!(
                texts(&batches, "status")
                    .iter()
                    .all(|s| s == "active" || s == "moved_out" || s == "deceased")
            );
        }
        // STARTED, a BATCH record per group of batches naming their subjects
        // (these small exports are one group per batch), COMPLETED.
        let records = 2 + batches.len() as u64;
        assert_eq!(p.audit_count(), before + records, "{name}: the records of one export");
        let started = p.audit_record(before + 1);
        let phase = |r: &AuditRecord| r.export.as_ref().map(|e| e.phase);
        assert_eq!(phase(&started), Some(ExportPhase::Started as i32), "{name}");
        assert_eq!(started.count, 0, "{name}: nothing has left when it starts");
        let record = last_record(&p);
        assert_eq!(phase(&record), Some(ExportPhase::Completed as i32), "{name}");
        assert_eq!(
            record.export.as_ref().map(|e| e.started_seq),
            Some(before + 1),
            "{name}: names its start"
        );
        assert_eq!(record.decision, Decision::Allowed as i32);
        assert_eq!(record.interface, format!("Export.{name}"));
        assert_eq!(record.count, rows(&batches) as u64, "{name}: the record counts the rows");
        assert!(record.subjects.is_empty(), "exports digest their subjects instead of listing them");
        assert_eq!(record.fields, schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>());
        let subject = ["id_pseudonym", "party_a_id_pseudonym", "head_id_pseudonym"]
            .into_iter()
            .find(|c| schema.field_with_name(c).is_ok());
        if let Some(column) = subject {
            let mut digest = Sha256::new();
            for pseudonym in texts(&batches, column).iter().filter(|p| !p.is_empty()) {
                digest.update(pseudonym.as_bytes());
                digest.update(b"\n");
            }
            assert_eq!(record.subjects_digest, digest.finalize().to_vec(), "{name}: digest of the subjects");
        }
    }

    // Pseudonyms: 32 hex characters, keyed, the same in every export and dataset.
    let (schema, persons) = read(&mut flight, &ticket("persons")).await.expect("persons");
    assert!(schema.field_with_name("birth_month").is_ok());
    let ids = texts(&persons, "id_pseudonym");
    let key = std::fs::read_to_string(p.config.pseudonym_key_path()).expect("key");
    let expected = Pseudonymizer::new(key.trim().as_bytes().to_vec()).pseudonym("export", &p.people.father);
    assert!(ids.contains(&expected), "the father's pseudonym is the keyed HMAC of his ID number");
    assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    let (_, again) = read(&mut flight, &ticket("persons")).await.expect("persons again");
    assert_eq!(texts(&again, "id_pseudonym"), ids, "stable across exports");
    let (_, insurance) = read(&mut flight, &ticket("medical_insurance")).await.expect("insurance");
    let persons_set: BTreeSet<String> = ids.into_iter().collect();
    assert!(
        texts(&insurance, "id_pseudonym").iter().all(|id| persons_set.contains(id)),
        "joinable across datasets"
    );
    assert!(
        texts(&persons, "birth_month")
            .iter()
            .all(|m| m.len() == 7 && m.as_bytes()[4] == b'-')
    );
    p.stop().await;
}

#[tokio::test]
async fn the_all_in_one_gateway_reads_batches_in_process_and_releases_exactly_the_same() {
    let (over_flight, in_process) = (start(None, "mtls").await, start_with_local_exports().await);
    let (mut remote, mut local) = (client(&over_flight, BIG_DATA).await, client(&in_process, BIG_DATA).await);
    for dataset in DATASETS {
        let before = in_process.audit_count();
        let (remote_schema, remote_batches) = read(&mut remote, &ticket(dataset.name)).await.expect("over Flight");
        let (local_schema, local_batches) = read(&mut local, &ticket(dataset.name)).await.expect("in process");
        assert_eq!(local_schema.fields(), remote_schema.fields(), "{}", dataset.name);
        assert_eq!(
            local_schema.metadata().get(SNAPSHOT_SEQ_KEY).is_some(),
            remote_schema.metadata().get(SNAPSHOT_SEQ_KEY).is_some()
        );
        // Each platform has its own pseudonym key and was seeded at its own
        // moment (feed as-of times): compare everything else.
        let plain = |batches: &[RecordBatch]| -> Vec<Vec<arrow_array::ArrayRef>> {
            batches
                .iter()
                .map(|b| {
                    let schema = b.schema();
                    let kept = schema.fields().iter().enumerate().filter(|(_, f)| {
                        !f.name().ends_with("pseudonym") && !matches!(f.data_type(), arrow_schema::DataType::Timestamp(..))
                    });
                    kept.map(|(i, _)| b.column(i).clone()).collect()
                })
                .collect()
        };
        assert_eq!(rows(&local_batches), rows(&remote_batches), "{}", dataset.name);
        assert_eq!(plain(&local_batches), plain(&remote_batches), "{}: the same rows", dataset.name);
        let again = read(&mut local, &ticket(dataset.name)).await.expect("in process, again").1;
        assert_eq!(again, local_batches, "{}: pseudonyms stable", dataset.name);
        assert_eq!(
            in_process.audit_count(),
            before + 2 * (2 + local_batches.len() as u64),
            "{}: STARTED, a record per batch and COMPLETED, per export",
            dataset.name
        );
        let record = last_record(&in_process);
        assert_eq!(record.count, rows(&local_batches) as u64);
    }
    // A refusal still ends before any source is read.
    let mut identified = ticket("persons");
    identified.level = Some(popbase_export::Level::Identified);
    let refused = read(&mut local, &identified).await.expect_err("not approved");
    assert_eq!(status_of(refused).code(), tonic::Code::PermissionDenied);
    over_flight.stop().await;
    in_process.stop().await;
}

fn names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn narrow(dataset: &str, columns: &[&str]) -> Ticket {
    Ticket {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        ..ticket(dataset)
    }
}

/// A ticket naming columns gets those, de-identified as usual, with the
/// values and the audit digest of a whole export; over Flight from the
/// owning role and in process alike.
#[tokio::test]
async fn a_ticket_naming_columns_gets_exactly_those() {
    for p in [start(None, "mtls").await, start_with_local_exports().await] {
        let mut bureau = client(&p, BIG_DATA).await;
        let (_, whole) = read(&mut bureau, &ticket("persons")).await.expect("whole");
        let whole_digest = last_record(&p).subjects_digest;
        let asked = narrow("persons", &["father_id_number", "sex", "birth_date"]);
        let (schema, batches) = read(&mut bureau, &asked).await.expect("narrow");
        let expected = ["sex", "birth_month", "father_id_pseudonym"];
        assert_eq!(names(&schema), expected, "the dataset's order, de-identified");
        assert!(schema.metadata().contains_key(SNAPSHOT_SEQ_KEY));
        for column in expected {
            assert_eq!(texts(&batches, column), texts(&whole, column), "{column}");
        }
        let record = last_record(&p);
        assert_eq!(record.fields, expected);
        assert_eq!(record.count, rows(&whole) as u64);
        assert_eq!(record.subjects_digest, whole_digest, "the subjects are digested all the same");
        let described = bureau
            .get_schema(FlightDescriptor::new_cmd(asked.to_bytes()))
            .await
            .expect("schema");
        assert_eq!(names(&described), expected, "GetSchema describes the same columns");

        // Datasets built whole by their scan are cut down the same way.
        let (schema, batches) = read(&mut bureau, &narrow("statistics", &["persons", "committee_code"]))
            .await
            .expect("statistics");
        assert_eq!(names(&schema), ["committee_code", "persons"]);
        assert_eq!(rows(&batches), 2);
        let (schema, _) = read(&mut bureau, &narrow("medical_insurance", &["status", "id_number"]))
            .await
            .expect("insurance");
        assert_eq!(names(&schema), ["id_pseudonym", "status"]);

        let before = p.audit_count();
        let e = read(&mut bureau, &narrow("persons", &["sex", "phone"])).await.expect_err("dropped");
        let status = status_of(e);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("ticket.columns") && status.message().contains("phone"),
            "{}",
            status.message()
        );
        assert!(status.message().contains("pseudonymised"), "{}", status.message());
        let e = read(&mut bureau, &narrow("persons", &["shoe_size"])).await.expect_err("unknown");
        assert_eq!(reason(&status_of(e)), "NOT_APPROVED", "only approved columns may be named");
        assert_eq!(p.audit_count(), before + 2, "refusals are audited");
        let mut police = client(&p, POLICE).await;
        let mut identified = narrow("persons", &["name", "phone"]);
        identified.purpose = "REGISTRY_RECONCILIATION".into();
        let e = read(&mut police, &identified).await.expect_err("phone not approved");
        let status = status_of(e);
        assert_eq!(
            (status.code(), reason(&status)),
            (tonic::Code::PermissionDenied, "NOT_APPROVED".into())
        );
        assert!(status.message().contains("phone"), "{}", status.message());
        identified.columns = vec!["name".into()];
        let (schema, batches) = read(&mut police, &identified).await.expect("names");
        assert_eq!(names(&schema), ["name"]);
        assert_eq!(rows(&batches), rows(&whole));
        p.stop().await;
    }
}

/// One DoGet straight to an owning role's Flight endpoint.
async fn read_source(p: &Platform, ticket: &Ticket) -> Result<(Schema, Vec<RecordBatch>), FlightError> {
    let owner = ticket.check().expect("ticket").owner;
    let response = p.sources.flight(owner).do_get(FlightTicket::new(ticket.to_bytes())).await?;
    let mut stream = FlightRecordBatchStream::new_from_flight_data(response.into_inner().map_err(FlightError::from));
    let mut batches = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        batches.push(batch);
    }
    let schema = stream.schema().map(|s| s.as_ref().clone()).expect("a schema arrives first");
    Ok((schema, batches))
}

/// The owning role builds only the columns its ticket names, and refuses
/// a name its dataset does not have.
#[tokio::test]
async fn an_owning_role_builds_only_the_columns_asked_for() {
    let p = start(None, "mtls").await;
    for dataset in ["persons", "households", "changes", "statistics", "medical_insurance"] {
        let full = Ticket::for_dataset(dataset);
        let (whole, all) = read_source(&p, &full).await.expect("whole");
        let last = whole.fields().len() - 1;
        let asked = Ticket {
            columns: vec![whole.field(last).name().clone(), whole.field(0).name().clone()],
            ..full.clone()
        };
        let (schema, batches) = read_source(&p, &asked).await.expect("narrow");
        assert_eq!(
            names(&schema),
            [whole.field(0).name().clone(), whole.field(last).name().clone()],
            "{dataset}"
        );
        assert_eq!(rows(&batches), rows(&all), "{dataset}");
        let values = |batches: &[RecordBatch], columns: &[usize]| -> Vec<arrow_array::ArrayRef> {
            batches.iter().flat_map(|b| columns.iter().map(|i| b.column(*i).clone())).collect()
        };
        assert_eq!(values(&batches, &[0, 1]), values(&all, &[0, last]), "{dataset}: the same values");
    }
    let unknown = Ticket {
        columns: vec!["shoe_size".into()],
        ..Ticket::for_dataset("persons")
    };
    let status = status_of(read_source(&p, &unknown).await.expect_err("unknown column"));
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("ticket.columns"), "{}", status.message());
    p.stop().await;
}

#[tokio::test]
async fn the_catalogue_names_exactly_the_columns_each_dataset_has() {
    let p = start(None, "mtls").await;
    for dataset in DATASETS {
        let descriptor = FlightDescriptor::new_path(vec![dataset.name.to_string()]);
        let result = p.sources.flight(dataset.owner).get_schema(descriptor).await.expect("schema");
        let schema = Schema::try_from(result.get_ref()).expect("decode");
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let catalogue = p.gate.catalogue();
        let interface = catalogue.interface(dataset.interface).expect("catalogued");
        assert_eq!(interface.fields, columns, "{}", dataset.interface);
    }
    p.stop().await;
}

#[tokio::test]
async fn identified_exports_refusals_and_their_reasons() {
    // Certificates optional, so an anonymous caller gets as far as the gate.
    let p = start(None, "both").await;
    let mut police = client(&p, POLICE).await;
    let mut ticket_for_police = Ticket::for_dataset("persons");
    ticket_for_police.purpose = "REGISTRY_RECONCILIATION".into();
    let (schema, batches) = read(&mut police, &ticket_for_police).await.expect("identified persons");
    assert!(schema.field_with_name("name").is_ok() && schema.field_with_name("id_number").is_ok());
    assert!(schema.field_with_name("phone").is_err(), "not approved, not released");
    assert!(texts(&batches, "id_number").contains(&p.people.father));

    let refused = |e: FlightError| {
        let status = status_of(e);
        (status.code(), reason(&status))
    };
    let mut not_approved = ticket("medical_insurance");
    not_approved.purpose = "REGISTRY_RECONCILIATION".into();
    let before = p.audit_count();
    let e = read(&mut police, &not_approved).await.expect_err("not approved");
    assert_eq!(refused(e), (tonic::Code::PermissionDenied, "NOT_APPROVED".into()));
    assert_eq!(p.audit_count(), before + 1, "a refusal is audited");

    let mut bureau = client(&p, BIG_DATA).await;
    let mut identified = ticket("persons");
    identified.level = Some(popbase_export::Level::Identified);
    let e = read(&mut bureau, &identified).await.expect_err("more than approved");
    assert_eq!(refused(e), (tonic::Code::PermissionDenied, "NOT_APPROVED".into()));
    let mut wrong_purpose = ticket("persons");
    wrong_purpose.purpose = "MARKETING".into();
    let e = read(&mut bureau, &wrong_purpose).await.expect_err("purpose");
    assert_eq!(refused(e), (tonic::Code::PermissionDenied, "PURPOSE_MISMATCH".into()));
    let e = bureau
        .do_get(FlightTicket::new(r#"{"dataset":"persons","division":"37x"}"#))
        .await
        .expect_err("bad ticket");
    let status = status_of(e);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("ticket.division"), "{}", status.message());
    let e = bureau
        .get_schema(FlightDescriptor::new_path(vec!["biometrics".into()]))
        .await
        .expect_err("unknown dataset");
    assert!(status_of(e).message().contains("ticket.dataset"));

    let mut hrss = client(&p, "hrss.dept.popbase").await;
    let none = list(&mut hrss).await;
    let Err(e) = bureau.list_flights(br#"{"purpose":"a b"}"#.to_vec()).await else {
        panic!("a malformed purpose in the criteria was accepted");
    };
    let status = status_of(e);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("criteria.purpose"), "{}", status.message());
    assert!(none.is_empty(), "no export approvals, nothing listed");
    let mut anonymous = FlightClient::new(p.channel(None).await);
    let Err(e) = anonymous.list_flights(Criteria::default().expression).await else {
        panic!("an anonymous listing was answered");
    };
    assert_eq!(status_of(e).code(), tonic::Code::Unauthenticated);
    p.stop().await;
}

#[tokio::test]
async fn an_incremental_export_returns_exactly_the_changed_rows() {
    let p = start(None, "mtls").await;
    let mut bureau = client(&p, BIG_DATA).await;
    let (schema, _) = read(&mut bureau, &ticket("persons")).await.expect("full export");
    let seq: u64 = schema.metadata()[SNAPSHOT_SEQ_KEY].parse().expect("seq");

    let context = EventContext {
        actor: "test".into(),
        on: popbase_domain::clock::today(),
    };
    let moved_to = Address {
        committee_code: XIYUAN.into(),
        detail: "公园路1号".into(),
    };
    p.registry
        .change_address(&context, "37030300000001", &moved_to)
        .expect("address change");

    let since = |dataset: &str| Ticket {
        since_seq: Some(seq),
        ..ticket(dataset)
    };
    let (after, changed) = read(&mut bureau, &since("persons")).await.expect("incremental persons");
    let key = std::fs::read_to_string(p.config.pseudonym_key_path()).expect("key");
    let pseudonyms = Pseudonymizer::new(key.trim().as_bytes().to_vec());
    let family: BTreeSet<String> = [&p.people.father, &p.people.mother, &p.people.child]
        .iter()
        .map(|id| pseudonyms.pseudonym("export", id))
        .collect();
    assert_eq!(
        texts(&changed, "id_pseudonym").into_iter().collect::<BTreeSet<_>>(),
        family,
        "exactly the family that moved"
    );
    assert!(texts(&changed, "committee_code").iter().all(|c| c == XIYUAN));
    assert!(after.metadata()[SNAPSHOT_SEQ_KEY].parse::<u64>().expect("seq") > seq);
    let (_, households) = read(&mut bureau, &since("households")).await.expect("incremental households");
    assert_eq!(rows(&households), 1);
    let (_, changes) = read(&mut bureau, &since("changes")).await.expect("incremental changes");
    assert_eq!(rows(&changes), 3, "one event, one row per person concerned");
    assert!(texts(&changes, "kind").iter().all(|k| k == "address_changed"));

    let in_xiyuan = Ticket {
        division: XIYUAN.into(),
        ..ticket("persons")
    };
    let (_, xiyuan) = read(&mut bureau, &in_xiyuan).await.expect("division");
    assert_eq!(rows(&xiyuan), 4, "the stranger and the family that moved in");
    let nothing_new = Ticket {
        since_seq: after.metadata()[SNAPSHOT_SEQ_KEY].parse().ok(),
        ..ticket("persons")
    };
    let (_, none) = read(&mut bureau, &nothing_new).await.expect("nothing new");
    assert_eq!(rows(&none), 0);
    p.stop().await;
}
