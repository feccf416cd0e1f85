//! The ledger's own check of its chain, run while it serves ("verify now"
//! on the console's audit-chain page): from the record after the last one
//! verified to the head, each record must carry the next sequence number,
//! its predecessor's hash and the hash of its own contents. Where it got to
//! is kept, so each check reads only the records added since. The full
//! offline check (export manifests, kept heads) stays `popbase audit verify`.

use popbase_proto::gateway::{AuditRecord, ChainVerification};
use popbase_storage::{Read, StorageResult, Store};

use super::chain::{GENESIS, record_hash};
use crate::tables::{self, AUDIT, AUDIT_HEAD, AUDIT_VERIFIED, HEAD_KEY};

/// Records one run checks at most (about a second's work per 100,000).
pub const MAX_RECORDS_PER_RUN: u64 = 1_000_000;

const LAST: &[u8] = b"last";

/// The last check's outcome (all zero before the first).
pub fn last(store: &Store) -> StorageResult<ChainVerification> {
    Ok(store.get(&AUDIT_VERIFIED, LAST)?.map(|row| row.value).unwrap_or_default())
}

/// Checks onward from the last verified record, at most `max` records,
/// keeps and answers the outcome. A broken record is reported and the
/// verified point stays before it, so every later run reports it again.
pub fn run(store: &Store, max: u64, now_millis: i64) -> StorageResult<ChainVerification> {
    let before = last(store)?;
    let from = before.verified_to_seq + 1;
    let mut prev = if before.verified_to_seq == 0 {
        GENESIS.to_vec()
    } else {
        before.verified_hash.clone()
    };
    let mut expected = from;
    let mut broken: Option<(u64, String)> = None;
    let mut checked = 0u64;
    store.for_each_between(&AUDIT, &tables::audit_key(from), None, |_, row| {
        if checked == max {
            return Ok(false);
        }
        let record: AuditRecord = row.value;
        let why = if record.seq != expected {
            Some(format!("record {expected} is missing or out of place (found {})", record.seq))
        } else if record.prev_hash != prev {
            Some(format!("record {expected} does not follow record {}", expected - 1))
        } else if record.hash != record_hash(&record) {
            Some(format!("record {expected} was altered: its contents do not match its hash"))
        } else {
            None
        };
        if let Some(why) = why {
            broken = Some((expected, why));
            return Ok(false);
        }
        prev = record.hash;
        expected += 1;
        checked += 1;
        Ok(true)
    })?;
    let verified_to = expected - 1;
    let head = store.get(&AUDIT_HEAD, HEAD_KEY)?.map_or(0, |h| h.value.seq);
    if broken.is_none() && checked < max && head > verified_to {
        broken = Some((
            verified_to + 1,
            format!("truncated: the head names record {head}, the trail ends at {verified_to}"),
        ));
    }
    let outcome = ChainVerification {
        verified_to_seq: verified_to,
        verified_hash: if verified_to == 0 { Vec::new() } else { prev },
        verified_at_unix_millis: now_millis,
        checked_from_seq: from,
        checked_to_seq: verified_to,
        complete: broken.is_none() && verified_to >= head,
        broken_seq: broken.as_ref().map_or(0, |b| b.0),
        broken_why: broken.map(|b| b.1).unwrap_or_default(),
        published_heads: Vec::new(),
        head_public_key_hex: String::new(),
    };
    let mut batch = popbase_storage::Batch::new("ledger", "chain check");
    batch.put(&AUDIT_VERIFIED, LAST.to_vec(), &outcome);
    store.commit(batch)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditLog};
    use popbase_storage::{Batch, StoreOptions};

    fn entry() -> AuditEntry {
        AuditEntry {
            department: "education".into(),
            interface: "EnrollmentCheck".into(),
            purpose: "P".into(),
            allowed: true,
            count: 1,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn checks_go_on_from_where_they_stopped_and_find_an_altered_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), tables::SCHEMA, StoreOptions::default()).expect("open");
        let log = AuditLog::start(store.clone()).expect("start");
        for _ in 0..10 {
            log.append(entry()).await.expect("append");
        }
        let first = run(&store, 4, 1).expect("run");
        assert_eq!((first.checked_from_seq, first.verified_to_seq, first.complete), (1, 4, false));
        let second = run(&store, 100, 2).expect("run");
        assert_eq!((second.checked_from_seq, second.verified_to_seq, second.complete), (5, 10, true));
        assert_eq!(second.broken_seq, 0);
        for _ in 0..3 {
            log.append(entry()).await.expect("append");
        }
        // Record 12 edited in place: found, and the verified point stays at 11.
        let mut record = store.get(&AUDIT, &tables::audit_key(12)).expect("get").expect("record").value;
        record.department = "someone_else".into();
        let mut batch = Batch::new("test", "tamper");
        batch.put(&AUDIT, tables::audit_key(12), &record);
        store.commit(batch).expect("tamper");
        let third = run(&store, 100, 3).expect("run");
        assert_eq!((third.verified_to_seq, third.broken_seq, third.complete), (11, 12, false));
        assert!(third.broken_why.contains("altered"), "{}", third.broken_why);
        assert_eq!(last(&store).expect("last").broken_seq, 12, "kept");
    }
}
