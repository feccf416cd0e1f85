//! Reading the trail: a citizen's accesses, departments' usage per day,
//! auditors' searches.

use popbase_proto::gateway::{Access, AuditRecord, AuditSearchResponse, Decision, Usage};
use popbase_proto::ledger::AuditSearch;
use popbase_storage::keys::KeyReader;
use popbase_storage::{Read, StorageResult, Store};

use super::manifest;
use crate::tables::{self, AUDIT, AUDIT_BY_SUBJECT, AUDIT_HEAD, EXPORT_SUBJECTS, HEAD_KEY, USAGE};

/// The newest `limit` accesses to the data of the person with pseudonym
/// `subject`: answers and writes (the subject index) and exports (their
/// manifests).
pub fn accesses(store: &Store, subject: &str, limit: usize) -> StorageResult<Vec<Access>> {
    let mut out = Vec::new();
    for seq in subject_seqs(store, subject)?.into_iter().rev().take(limit) {
        if let Some(row) = store.get(&AUDIT, &tables::audit_key(seq))? {
            let r: AuditRecord = row.value;
            out.push(Access {
                at_unix_millis: r.at_unix_millis,
                department: r.department,
                interface: r.interface,
                purpose: r.purpose,
                allowed: r.decision == Decision::Allowed as i32,
                fields: r.fields,
                ..Default::default()
            });
        }
    }
    Ok(out)
}

/// The sequence numbers, ascending, of every record about the person with
/// pseudonym `subject`: answers and writes (the subject index) and exports
/// (their manifests).
fn subject_seqs(store: &Store, subject: &str) -> StorageResult<Vec<u64>> {
    let mut seqs = Vec::new();
    store.for_each_index_key(&AUDIT_BY_SUBJECT, &tables::subject_prefix(subject), |key| {
        let mut reader = KeyReader::new(key);
        reader.str()?;
        seqs.push(reader.u64()?);
        Ok(true)
    })?;
    // The exports that carried them: their bucket's manifest rows.
    let id = manifest::subject_id(subject);
    store.for_each(
        &EXPORT_SUBJECTS,
        &tables::export_subjects_prefix(manifest::bucket(id)),
        |key, row| {
            if manifest::contains(&row.value, id) {
                let mut reader = KeyReader::new(key);
                reader.u32()?;
                seqs.push(reader.u64()?);
            }
            Ok(true)
        },
    )?;
    seqs.sort_unstable();
    seqs.dedup();
    Ok(seqs)
}

/// Usage rows for days `from..=to` (yyyymmdd), of one department or all.
pub fn usage(store: &Store, from: u32, to: u32, department: &str) -> StorageResult<Vec<Usage>> {
    let mut out = Vec::new();
    store.for_each_between(
        &USAGE,
        &tables::usage_day_prefix(from),
        Some(&tables::usage_day_prefix(to.saturating_add(1))),
        |_, row| {
            if department.is_empty() || row.value.department == department {
                out.push(row.value);
            }
            Ok(true)
        },
    )?;
    Ok(out)
}

/// Most records in one page of an audit search.
pub const MAX_SEARCH_PAGE: u32 = 200;

/// Records one search call looks at, at most: a page of a rare match in a
/// long trail ends early and says where to go on, so no call scans the
/// whole trail.
pub const SEARCH_SCAN_BOUND: usize = 50_000;

/// One page of an audit search, oldest first. The writer stamps records in
/// sequence order from one clock, so times ascend with `seq` and the window's
/// start is found by bisection; a clock stepped back by hand makes the window
/// approximate, never the records wrong.
pub fn search(store: &Store, q: &AuditSearch) -> StorageResult<AuditSearchResponse> {
    let limit = q.limit.max(1) as usize;
    let to = if q.to_unix_millis == 0 { i64::MAX } else { q.to_unix_millis };
    let matches = |r: &AuditRecord| {
        (q.department.is_empty() || r.department == q.department)
            && (q.interface.is_empty() || r.interface == q.interface)
            && r.at_unix_millis >= q.from_unix_millis
            && r.at_unix_millis <= to
    };
    let mut page = AuditSearchResponse::default();
    let mut looked = 0usize;
    let mut last_seen = q.after_seq;
    let mut more = false;
    if !q.subject.is_empty() {
        // A person's records: few, read from the subject index.
        for seq in subject_seqs(store, &q.subject)?.into_iter().filter(|s| *s > q.after_seq) {
            if page.records.len() == limit {
                more = true;
                break;
            }
            if let Some(row) = store.get(&AUDIT, &tables::audit_key(seq))? {
                let record: AuditRecord = row.value;
                last_seen = seq;
                if matches(&record) {
                    page.records.push(record);
                }
            }
        }
    } else {
        let start = q.after_seq.saturating_add(1).max(first_at_or_after(store, q.from_unix_millis)?);
        store.for_each_between(&AUDIT, &tables::audit_key(start), None, |_, row| {
            let record: AuditRecord = row.value;
            if record.at_unix_millis > to {
                return Ok(false);
            }
            if page.records.len() == limit || looked == SEARCH_SCAN_BOUND {
                more = true;
                return Ok(false);
            }
            looked += 1;
            last_seen = record.seq;
            if matches(&record) {
                page.records.push(record);
            }
            Ok(true)
        })?;
    }
    page.next_after_seq = if more { last_seen } else { 0 };
    Ok(page)
}

/// The first sequence number whose record is stamped at or after `millis`
/// (past the head when none is): bisection over the chain's 1..=head.
fn first_at_or_after(store: &Store, millis: i64) -> StorageResult<u64> {
    if millis <= 0 {
        return Ok(1);
    }
    let head = store.get(&AUDIT_HEAD, HEAD_KEY)?.map_or(0, |h| h.value.seq);
    let (mut lo, mut hi) = (1u64, head.saturating_add(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at = store
            .get(&AUDIT, &tables::audit_key(mid))?
            .map_or(i64::MAX, |r| r.value.at_unix_millis);
        if at < millis {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditLog};
    use popbase_storage::StoreOptions;

    fn entry(department: &str, interface: &str, subject: &str) -> AuditEntry {
        AuditEntry {
            department: department.into(),
            interface: interface.into(),
            purpose: "P".into(),
            subjects: vec![subject.into()],
            allowed: true,
            count: 1,
            ..Default::default()
        }
    }

    fn search(subject: &str, department: &str, after_seq: u64, limit: u32) -> AuditSearch {
        AuditSearch {
            subject: subject.into(),
            department: department.into(),
            after_seq,
            limit,
            ..Default::default()
        }
    }

    /// Pages follow one another without gaps or repeats, by subject or by
    /// department, and a window starts at the first record in it.
    #[tokio::test]
    async fn searches_page_through_matches_and_windows_by_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
        let log = AuditLog::start(store.clone()).expect("start");
        let (alice, bob) = ("a".repeat(32), "b".repeat(32));
        for i in 0..25u32 {
            let department = if i % 2 == 0 { "education" } else { "hrss" };
            let subject = if i % 5 == 0 { &alice } else { &bob };
            log.append(entry(department, "PersonSummary", subject)).await.expect("append");
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = super::search(&store, &search("", "education", after, 4)).expect("page");
            assert!(page.records.len() <= 4);
            seen.extend(page.records.iter().map(|r| r.seq));
            if page.next_after_seq == 0 {
                break;
            }
            after = page.next_after_seq;
        }
        assert_eq!(
            seen,
            (1..=25).step_by(2).collect::<Vec<u64>>(),
            "every education record once, in order"
        );

        let alice_records = super::search(&store, &search(&alice, "", 0, 200)).expect("by subject");
        assert_eq!(
            alice_records.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 6, 11, 16, 21]
        );
        assert_eq!(alice_records.next_after_seq, 0);
        let first_two = super::search(&store, &search(&alice, "", 0, 2)).expect("by subject, paged");
        assert_eq!(first_two.next_after_seq, 6);
        let rest = super::search(&store, &search(&alice, "hrss", 6, 200)).expect("filtered");
        assert_eq!(rest.records.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![16]);

        // A window after every record finds none; one from the 10th record's
        // time holds it and those after (records of one millisecond share it).
        let at = |seq: u64| {
            store
                .get(&AUDIT, &tables::audit_key(seq))
                .expect("get")
                .expect("record")
                .value
                .at_unix_millis
        };
        let late = AuditSearch {
            from_unix_millis: at(25) + 1,
            limit: 200,
            ..Default::default()
        };
        assert!(super::search(&store, &late).expect("late").records.is_empty());
        let from_tenth = AuditSearch {
            from_unix_millis: at(10),
            limit: 200,
            ..Default::default()
        };
        let found = super::search(&store, &from_tenth).expect("window");
        assert!(found.records.iter().all(|r| r.at_unix_millis >= at(10)));
        assert!(found.records.iter().any(|r| r.seq == 10) && found.records.last().map(|r| r.seq) == Some(25));
        assert_eq!(first_at_or_after(&store, 0).expect("bisect"), 1);
        assert_eq!(first_at_or_after(&store, at(25) + 1).expect("bisect"), 26);
    }
}
