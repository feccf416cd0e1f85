//! The audit trail: exactly one record per answer or refusal under
//! concurrent load, and a chain that catches an edit, a deletion and a
//! cut tail in a copied store.

mod support;

use popbase_gateway::audit::{head, verify};
use popbase_gateway::tables::{AUDIT, AUDIT_HEAD, HEAD_KEY, audit_key};
use popbase_proto::common::Date;
use popbase_proto::gateway::audit_client::AuditClient;
use popbase_proto::gateway::enrollment_client::EnrollmentClient;
use popbase_proto::gateway::{AuditRecord, ChainHead, Decision, EnrollmentCheckRequest, UsageStatisticsRequest};
use popbase_storage::{Batch, Read, Store};
use support::{XINHUA, start, today};

const TASKS: u64 = 8;
const CALLS: u64 = 25;

#[tokio::test]
async fn one_record_per_call_under_concurrent_load_and_usage_counts_them() {
    let p = start(None, "mtls").await;
    let before = p.audit_count();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let mut client = EnrollmentClient::new(p.department("education.dept.popbase").await);
        let (child, father) = (p.people.child.clone(), p.people.father.clone());
        tasks.push(tokio::spawn(async move {
            let (mut allowed, mut denied) = (0u64, 0u64);
            for n in 0..CALLS {
                // Every third call names a purpose the catalogue does not approve.
                let purpose = if (t + n) % 3 == 0 {
                    "SOMETHING_ELSE"
                } else {
                    "COMPULSORY_EDUCATION_ENROLLMENT"
                };
                let request = EnrollmentCheckRequest {
                    purpose: purpose.into(),
                    request_id: format!("{t}-{n}"),
                    child_id_number: child.clone(),
                    guardian_id_numbers: vec![father.clone()],
                    district_codes: vec![XINHUA.into()],
                    reference_date: None,
                };
                match client.check(request).await {
                    Ok(_) => allowed += 1,
                    Err(_) => denied += 1,
                }
            }
            (allowed, denied)
        }));
    }
    let (mut allowed, mut denied) = (0, 0);
    for task in tasks {
        let (a, d) = task.await.expect("task");
        allowed += a;
        denied += d;
    }
    assert_eq!(allowed + denied, TASKS * CALLS);
    assert!(denied > 0 && allowed > 0);
    // Every answer has its record; refusals too, up to the department's
    // budget per window, and the rest are counted into one summary record
    // when the window closes: no refusal goes unrecorded.
    let budget = u64::from(p.config.limits.refusals_per_window).min(denied);
    assert_eq!(
        p.audit_count(),
        before + allowed + budget,
        "one record per answer and per budgeted refusal"
    );
    p.gate.record_refusal_summaries(true).await;
    let summary = record(p.ledger.store(), p.audit_count());
    assert_eq!(summary.interface, popbase_gateway::gate::REFUSALS_INTERFACE);
    assert_eq!(
        (summary.department.as_str(), summary.reason.as_str()),
        ("education", "REFUSAL_FLOOD")
    );
    assert_eq!(summary.count, denied - budget, "the summary counts every refusal past the budget");

    let store = p.ledger.store().clone();
    let mut decisions = (0, 0);
    store
        .for_each(&AUDIT, &[], |_, row| {
            let r: AuditRecord = row.value;
            if r.interface == "EnrollmentCheck" {
                if r.decision == Decision::Allowed as i32 {
                    decisions.0 += 1;
                    assert_eq!(r.subjects.len(), 2, "child and guardian, as pseudonyms");
                    assert!(r.subjects.iter().all(|s| s.len() == 32 && !s.contains(&p.people.child)));
                    assert!(r.fields.contains(&"place".to_string()));
                } else {
                    decisions.1 += 1;
                    assert_eq!(r.reason, "PURPOSE_MISMATCH");
                }
            }
            Ok(true)
        })
        .expect("scan");
    assert_eq!(decisions, (allowed, budget));
    assert_eq!(verify::verify(&store, &[]).broken, None, "the chain holds under concurrency");

    let mut auditor = AuditClient::new(p.department("audit.dept.popbase").await);
    let usage = auditor
        .usage_statistics(UsageStatisticsRequest {
            purpose: "AUDIT".into(),
            from: Some(Date::from(today())),
            to: Some(Date::from(today())),
            department: "education".into(),
        })
        .await
        .expect("usage")
        .into_inner()
        .usage;
    let row = usage.iter().find(|u| u.interface == "EnrollmentCheck").expect("education row");
    assert_eq!((row.allowed, row.denied), (allowed, budget));
    let summarised = usage.iter().find(|u| u.interface == "REFUSALS").expect("summary row");
    assert_eq!(summarised.denied, denied - budget, "usage counts the refusals a summary stands for");
    // And by reason: every refusal under its code, summaries included.
    assert_eq!(
        row.denied_by_reason.get("PURPOSE_MISMATCH"),
        Some(&budget),
        "{:?}",
        row.denied_by_reason
    );
    assert_eq!(row.denied_by_reason.values().sum::<u64>(), row.denied, "{:?}", row.denied_by_reason);
    assert_eq!(summarised.denied_by_reason.values().sum::<u64>(), summarised.denied);
    assert!(row.denied_by_reason.keys().all(|reason| !reason.is_empty()));
    // And by the city's hour: every call of the day in one of 24.
    assert_eq!(row.by_hour.len(), 24);
    assert_eq!(row.by_hour.iter().sum::<u64>(), row.allowed + row.denied);
    p.stop().await;
}

/// A copy of the ledger store (as an auditor gets it from a backup).
fn copy(store: &Store, dir: &std::path::Path, name: &str) -> Store {
    let path = dir.join(name);
    store.checkpoint(&path).expect("checkpoint");
    Store::open(&path, popbase_gateway::tables::SCHEMA, Default::default()).expect("open copy")
}

fn record(store: &Store, seq: u64) -> AuditRecord {
    store.get(&AUDIT, &audit_key(seq)).expect("read").expect("present").value
}

#[tokio::test]
async fn verify_catches_an_edit_a_deletion_and_a_cut_tail() {
    let p = start(None, "mtls").await;
    let mut client = EnrollmentClient::new(p.department("education.dept.popbase").await);
    for n in 0..6 {
        let request = EnrollmentCheckRequest {
            purpose: if n % 2 == 0 { "COMPULSORY_EDUCATION_ENROLLMENT" } else { "WRONG" }.into(),
            request_id: n.to_string(),
            child_id_number: p.people.child.clone(),
            guardian_id_numbers: vec![p.people.mother.clone()],
            district_codes: vec![XINHUA.into()],
            reference_date: None,
        };
        let _ = client.check(request).await;
    }
    let live = p.ledger.store().clone();
    let head_file = p.dir.path().join("kept-head.log");
    let kept = p.ledger.audit.head();
    std::fs::write(&head_file, head::format_line(&kept)).expect("keep head");
    let last = kept.seq;
    assert!(last >= 6);
    let copies = tempfile::tempdir().expect("tempdir");

    let intact = copy(&live, copies.path(), "intact");
    let report = verify::verify(&intact, &head::kept(&head_file).expect("head file"));
    assert_eq!((report.verified, report.broken), (last, None));

    // One edited field of record 3 (a denial made to look allowed).
    let edited = copy(&live, copies.path(), "edited");
    let mut r = record(&edited, 3);
    r.decision = if r.decision == Decision::Allowed as i32 {
        Decision::Denied
    } else {
        Decision::Allowed
    } as i32;
    let mut batch = Batch::new("attacker", "edit");
    batch.put(&AUDIT, audit_key(3), &r);
    edited.commit(batch).expect("edit");
    let broken = verify::verify(&edited, &[]).broken.expect("edit caught");
    assert_eq!(broken.seq, 3, "{}", broken.why);

    // Record 4 deleted.
    let deleted = copy(&live, copies.path(), "deleted");
    let mut batch = Batch::new("attacker", "delete");
    batch.delete(&AUDIT, audit_key(4));
    deleted.commit(batch).expect("delete");
    assert_eq!(verify::verify(&deleted, &[]).broken.map(|b| b.seq), Some(4));

    // The last two records cut off: the store's own head names them...
    let cut = copy(&live, copies.path(), "cut");
    let mut batch = Batch::new("attacker", "truncate");
    batch.delete(&AUDIT, audit_key(last)).delete(&AUDIT, audit_key(last - 1));
    cut.commit(batch).expect("truncate");
    assert_eq!(verify::verify(&cut, &[]).broken.map(|b| b.seq), Some(last - 1));
    // ...and if the head is rewritten too, the head the auditor kept still does.
    let new_tail = record(&cut, last - 2);
    let mut batch = Batch::new("attacker", "rewrite head");
    let forged = ChainHead {
        seq: new_tail.seq,
        hash: new_tail.hash.clone(),
        at_unix_millis: new_tail.at_unix_millis,
    };
    batch.put(&AUDIT_HEAD, HEAD_KEY.to_vec(), &forged);
    cut.commit(batch).expect("rewrite head");
    assert_eq!(verify::verify(&cut, &[]).broken, None, "without the kept head the cut is invisible");
    let broken = verify::verify(&cut, &head::kept(&head_file).expect("head file"))
        .broken
        .expect("kept head catches it");
    assert_eq!(broken.seq, last - 1, "{}", broken.why);
    // A restore appends the rolled-back head after the ones handed out
    // before: every line is checked, and the report names the one that fails.
    let both = p.dir.path().join("both-heads.log");
    std::fs::write(&both, format!("{}{}", head::format_line(&kept), head::format_line(&forged))).expect("heads");
    let broken = verify::verify(&cut, &head::kept(&both).expect("heads"))
        .broken
        .expect("the earlier line");
    assert!(broken.why.contains("both-heads.log line 1"), "{}", broken.why);
    p.stop().await;
}
