//! Store behaviour against a real RocksDB in a temporary directory.

use super::*;
use crate::batch::Batch;
use crate::changelog::ChangeOp;
use crate::keys::KeyBuilder;
use crate::{Index, Table, Versioned};

#[derive(Clone, PartialEq, prost::Message)]
struct Rec {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    n: u32,
}

const RECS: Table<Rec> = Table::new("recs");
const BY_NAME: Index = Index::new("by_name");
const SCHEMA: Schema = Schema {
    name: "test",
    tables: &["recs", "by_name"],
    write_mostly: &[],
    history: &["recs"],
};

fn rec(name: &str, n: u32) -> Rec {
    Rec { name: name.into(), n }
}

fn key(s: &str) -> Vec<u8> {
    KeyBuilder::new().str(s).build()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, SCHEMA, StoreOptions::default()).expect("open")
}

#[test]
fn round_trip_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let mut batch = Batch::new("test", "insert");
        batch.put(&RECS, key("a"), &rec("alpha", 1));
        batch.put_index(&BY_NAME, key("alpha"));
        assert_eq!(store.commit(batch).expect("commit"), 1);
        let got = store.get(&RECS, &key("a")).expect("get").expect("present");
        assert_eq!(
            got,
            Versioned {
                version: 1,
                value: rec("alpha", 1)
            }
        );
    }
    let store = open(dir.path());
    assert_eq!(store.last_seq(), 1, "sequence recovered from the change log");
    assert_eq!(store.get(&RECS, &key("a")).expect("get").map(|v| v.value), Some(rec("alpha", 1)));
    assert!(store.contains(&BY_NAME, &key("alpha")).expect("contains"));
    let mut batch = Batch::new("test", "second");
    batch.put(&RECS, key("b"), &rec("beta", 2));
    assert_eq!(store.commit(batch).expect("commit"), 2);
}

#[test]
fn failed_expectation_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    batch.put(&RECS, key("a"), &rec("alpha", 1));
    store.commit(batch).expect("commit");

    // Two writers read version 1; the first commit wins, the second conflicts.
    let mut first = Batch::new("writer-1", "update");
    first
        .expect_version(&RECS, key("a"), Some(1))
        .put(&RECS, key("a"), &rec("alpha", 2));
    let mut second = Batch::new("writer-2", "update");
    second
        .expect_version(&RECS, key("a"), Some(1))
        .put(&RECS, key("a"), &rec("alpha", 3))
        .put(&RECS, key("c"), &rec("gamma", 3));
    store.commit(first).expect("first wins");
    let err = store.commit(second).expect_err("second must conflict");
    assert!(
        matches!(
            err,
            StorageError::Conflict {
                expected: Some(1),
                found: Some(2),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.get(&RECS, &key("a")).expect("get").map(|v| v.value.n), Some(2));
    assert_eq!(store.get(&RECS, &key("c")).expect("get"), None, "no part of a failed batch lands");
    assert_eq!(store.last_seq(), 2, "a failed batch takes no sequence number");

    let mut insert_only = Batch::new("test", "create");
    insert_only
        .expect_version(&RECS, key("a"), None)
        .put(&RECS, key("a"), &rec("dup", 0));
    assert!(matches!(
        store.commit(insert_only),
        Err(StorageError::Conflict { expected: None, .. })
    ));
}

#[test]
fn many_expectations_across_tables_are_checked_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    for i in 0..300 {
        batch.put(&RECS, key(&format!("k{i:03}")), &rec("r", i));
    }
    store.commit(batch).expect("commit");
    let expecting = |stale: Option<usize>| {
        let mut batch = Batch::new("test", "update");
        // Keys out of order, versions as read, and absent keys in an index.
        for i in (0..300).rev() {
            let version = if Some(i) == stale { Some(7) } else { Some(1) };
            batch.expect_version(&RECS, key(&format!("k{i:03}")), version);
            batch.expect_version(&BY_NAME_TABLE, key(&format!("n{i:03}")), None);
        }
        batch.put(&RECS, key("new"), &rec("new", 0));
        batch
    };
    let err = store.commit(expecting(Some(150))).expect_err("one stale version among 600");
    assert!(
        matches!(
            err,
            StorageError::Conflict {
                expected: Some(7),
                found: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.get(&RECS, &key("new")).expect("get"), None, "nothing of it lands");
    store.commit(expecting(None)).expect("every expectation holds");
    assert!(store.get(&RECS, &key("new")).expect("get").is_some());
}

#[test]
fn versions_read_at_a_sequence_conflict_only_with_later_writes_of_their_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    batch.put(&RECS, key("a"), &rec("alpha", 1)).put(&RECS, key("b"), &rec("beta", 1));
    store.commit(batch).expect("commit");
    let read_at = store.last_seq();
    let a = store.get(&RECS, &key("a")).expect("get").expect("a");
    // Another writer changes b, then a: only the second conflicts with a read of a.
    let mut other = Batch::new("other", "update");
    other.put(&RECS, key("b"), &rec("beta", 2));
    store.commit(other).expect("b");
    let update_a = |n: u32| {
        let mut batch = Batch::new("test", "update");
        batch
            .read_at(read_at)
            .expect_version(&RECS, key("a"), Some(a.version))
            .put(&RECS, key("a"), &rec("alpha", n));
        batch
    };
    let mut other = Batch::new("other", "update");
    other.put(&RECS, key("a"), &rec("alpha", 9));
    let seq_b = store.last_seq();
    store.commit(other).expect("a by the other writer");
    let err = store.commit(update_a(2)).expect_err("a changed after the read");
    assert!(matches!(err, StorageError::Conflict { .. }), "{err}");
    // Read again after both: the write of b alone is no conflict.
    let mut batch = Batch::new("test", "update");
    batch
        .read_at(seq_b)
        .expect_version(&RECS, key("b"), Some(seq_b))
        .put(&RECS, key("b"), &rec("beta", 3));
    store.commit(batch).expect("b unchanged since its read");
    // A read from before b's last write is checked exactly, and refused.
    let mut stale = Batch::new("test", "update");
    stale
        .read_at(0)
        .expect_version(&RECS, key("b"), Some(seq_b))
        .put(&RECS, key("b"), &rec("beta", 4));
    assert!(store.commit(stale).is_err(), "b was written again since");
    assert_eq!(store.get(&RECS, &key("a")).expect("get").map(|v| v.value.n), Some(9));
}

/// The index's column family read as a table, for expectations of absence.
const BY_NAME_TABLE: Table<Rec> = Table::new("by_name");

#[test]
fn snapshot_does_not_see_later_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    batch.put(&RECS, key("a"), &rec("alpha", 1));
    store.commit(batch).expect("commit");
    let snapshot = store.snapshot();
    let mut batch = Batch::new("test", "later");
    batch.put(&RECS, key("a"), &rec("alpha", 9)).put(&RECS, key("b"), &rec("beta", 2));
    batch.delete_index(&BY_NAME, key("alpha"));
    store.commit(batch).expect("commit");

    assert_eq!(snapshot.seq(), 1);
    assert_eq!(snapshot.get(&RECS, &key("a")).expect("get").map(|v| v.value.n), Some(1));
    assert_eq!(snapshot.scan(&RECS, &[], None, 10).expect("scan").len(), 1);
    assert_eq!(store.scan(&RECS, &[], None, 10).expect("scan").len(), 2);
    // The snapshot can move to another thread and outlive the borrow that made it.
    let handle = std::thread::spawn(move || snapshot.get(&RECS, &key("b")).expect("get"));
    assert_eq!(handle.join().expect("thread"), None);
}

#[test]
fn batched_reads_answer_in_the_order_asked_and_respect_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    batch.put(&RECS, key("a"), &rec("alpha", 1)).put(&RECS, key("c"), &rec("gamma", 3));
    store.commit(batch).expect("commit");
    let snapshot = store.snapshot();
    let mut batch = Batch::new("test", "later");
    batch.put(&RECS, key("b"), &rec("beta", 2)).put(&RECS, key("a"), &rec("alpha", 10));
    store.commit(batch).expect("commit");

    // Unsorted, with a miss and a repeat: answers line up with the keys.
    let keys = [key("c"), key("zz"), key("a"), key("b"), key("c")];
    let names = |rows: Vec<Option<Versioned<Rec>>>| rows.into_iter().map(|r| r.map(|v| (v.value.name, v.value.n))).collect::<Vec<_>>();
    let g = |name: &str, n: u32| Some((name.to_string(), n));
    assert_eq!(
        names(store.get_many(&RECS, &keys).expect("get_many")),
        vec![g("gamma", 3), None, g("alpha", 10), g("beta", 2), g("gamma", 3)]
    );
    assert_eq!(
        names(snapshot.get_many(&RECS, &keys).expect("get_many")),
        vec![g("gamma", 3), None, g("alpha", 1), None, g("gamma", 3)]
    );
    assert!(store.get_many(&RECS, &[]).expect("empty").is_empty());
}

#[test]
fn prefix_scans_page_in_key_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    for code in ["370302001001", "370302001002", "370303001001", "370302002001"] {
        batch.put(&RECS, key(code), &rec(code, 0));
    }
    store.commit(batch).expect("commit");
    let prefix = KeyBuilder::new().str_prefix("370302").build();
    let page1 = store.scan(&RECS, &prefix, None, 2).expect("scan");
    let names: Vec<&str> = page1.iter().map(|(_, v)| v.value.name.as_str()).collect();
    assert_eq!(names, ["370302001001", "370302001002"]);
    let page2 = store.scan(&RECS, &prefix, Some(&page1[1].0), 2).expect("scan");
    let names: Vec<&str> = page2.iter().map(|(_, v)| v.value.name.as_str()).collect();
    assert_eq!(names, ["370302002001"]);
}

#[test]
fn encoded_reads_hand_over_the_message_without_its_version() {
    use prost::Message;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    for code in ["370302001001", "370302001002", "370303001001"] {
        batch.put(&RECS, key(code), &rec(code, 7));
    }
    store.commit(batch).expect("commit");
    let snapshot = store.snapshot();
    let mut batch = Batch::new("test", "later");
    batch.put(&RECS, key("370302001001"), &rec("changed", 8));
    store.commit(batch).expect("commit");

    let prefix = KeyBuilder::new().str_prefix("370302").build();
    let mut seen = Vec::new();
    snapshot
        .for_each_encoded(&RECS, &prefix, |k, payload| {
            seen.push((k.to_vec(), Rec::decode(payload).expect("a whole message")));
            Ok(true)
        })
        .expect("scan");
    assert_eq!(
        seen,
        vec![
            (key("370302001001"), rec("370302001001", 7)),
            (key("370302001002"), rec("370302001002", 7))
        ]
    );
    let live = store.get_encoded(&RECS, &key("370302001001")).expect("get").expect("present");
    assert_eq!(Rec::decode(live.as_slice()).expect("decode"), rec("changed", 8));
    assert_eq!(snapshot.get_encoded(&RECS, &key("nope")).expect("get"), None);
}

#[test]
fn change_log_records_each_batch_with_images_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("importer", "import");
    batch.put(&RECS, key("a"), &rec("alpha", 1));
    store.commit(batch).expect("commit");
    let mut batch = Batch::new("clerk-7", "rename").record_values();
    batch.put(&RECS, key("a"), &rec("alpha", 2)).delete(&RECS, key("a2"));
    store.commit(batch).expect("commit");

    let log = store.changes_since(0, 10).expect("log");
    assert_eq!(log.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(log[0].changes[0].before, None, "images only when asked");
    let rename = &log[1];
    assert_eq!((rename.actor.as_str(), rename.reason.as_str()), ("clerk-7", "rename"));
    let change = &rename.changes[0];
    assert_eq!(
        change.before.as_deref().map(Rec::decode).and_then(Result::ok),
        Some(rec("alpha", 1))
    );
    assert_eq!(change.after.as_deref().map(Rec::decode).and_then(Result::ok), Some(rec("alpha", 2)));
    assert_eq!(rename.changes[1].op, ChangeOp::Delete as i32);
    assert_eq!(store.changes_since(1, 10).expect("log").len(), 1);
}

/// A row the batch expects absent has no before-image to read (the commit
/// skips the read); a row it expects at a version keeps its image.
#[test]
fn rows_expected_absent_have_no_before_image_and_others_keep_theirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("importer", "import");
    batch.put(&RECS, key("old"), &rec("old", 1));
    let old_version = store.commit(batch).expect("commit");
    let mut batch = Batch::new("clerk", "edit").record_values();
    batch.read_at(store.last_seq());
    batch
        .expect_version(&RECS, key("new"), None)
        .put(&RECS, key("new"), &rec("new", 1))
        .expect_version(&RECS, key("old"), Some(old_version))
        .put(&RECS, key("old"), &rec("old", 2));
    store.commit(batch).expect("commit");

    let log = store.changes_since(old_version, 10).expect("log");
    let images: Vec<Option<Rec>> = log[0]
        .changes
        .iter()
        .map(|c| c.before.as_deref().map(Rec::decode).and_then(Result::ok))
        .collect();
    assert_eq!(images, [None, Some(rec("old", 1))]);
    // Expected absent but present: refused before anything is written.
    let mut stale = Batch::new("clerk", "edit").record_values();
    stale.expect_version(&RECS, key("new"), None).put(&RECS, key("new"), &rec("new", 9));
    assert!(matches!(store.commit(stale), Err(StorageError::Conflict { .. })));
}

#[test]
fn a_keys_history_is_its_value_recording_batches_and_no_other_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut import = Batch::new("importer", "import");
    import.put(&RECS, key("a"), &rec("alpha", 1));
    store.commit(import).expect("commit");
    for (k, n) in [("a", 2), ("ab", 1), ("a", 3)] {
        let mut batch = Batch::new("clerk", "edit").record_values();
        batch.put(&RECS, key(k), &rec(k, n));
        store.commit(batch).expect("commit");
    }
    let mut removal = Batch::new("clerk", "remove").record_values();
    removal.delete(&RECS, key("a"));
    store.commit(removal).expect("commit");

    let snapshot = store.snapshot();
    let history = crate::history_of(&snapshot, "recs", &key("a")).expect("history");
    assert_eq!(
        history.iter().map(|b| b.seq).collect::<Vec<_>>(),
        [2, 4, 5],
        "not the import, not key ab"
    );
    let first = history[0].changes_in("recs").next().expect("change");
    assert_eq!(first.before.as_deref().map(Rec::decode).and_then(Result::ok), Some(rec("alpha", 1)));
    assert_eq!(history[2].changes[0].op, ChangeOp::Delete as i32);
    let other = crate::history_of(&store, "recs", &key("ab")).expect("history");
    assert_eq!(other.iter().map(|b| b.seq).collect::<Vec<_>>(), [3]);
    assert!(
        crate::history_of(&store, "by_name", &key("a")).expect("history").is_empty(),
        "not kept for indexes"
    );
}

#[test]
fn second_open_reports_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _store = open(dir.path());
    let err = Store::open(dir.path(), SCHEMA, StoreOptions::default()).err().expect("locked");
    assert!(matches!(err, StorageError::Locked { .. }), "{err}");
}

#[test]
fn corrupt_store_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    std::fs::write(dir.path().join("CURRENT"), b"garbage-without-newline").expect("write");
    let err = Store::open(dir.path(), SCHEMA, StoreOptions::default()).err().expect("corrupt");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

#[test]
fn another_services_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    let other = Schema {
        name: "other",
        tables: &["recs", "by_name"],
        write_mostly: &[],
        history: &[],
    };
    let err = Store::open(dir.path(), other, StoreOptions::default()).err().expect("wrong store");
    assert!(matches!(err, StorageError::WrongStore { .. }), "{err}");
}

#[test]
fn checkpoint_opens_as_a_store_with_the_same_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("live"));
    let mut batch = Batch::new("test", "insert");
    batch.put(&RECS, key("a"), &rec("alpha", 1));
    store.commit(batch).expect("commit");
    let target = dir.path().join("backup-1");
    assert_eq!(store.checkpoint(&target).expect("checkpoint"), 1);
    let mut batch = Batch::new("test", "after backup");
    batch.put(&RECS, key("b"), &rec("beta", 2));
    store.commit(batch).expect("commit");

    let restored = open(&target);
    assert_eq!(restored.last_seq(), 1);
    assert!(restored.get(&RECS, &key("a")).expect("get").is_some());
    assert!(restored.get(&RECS, &key("b")).expect("get").is_none());
    let stats = store.stats().expect("stats");
    assert_eq!(stats.last_seq, 2);
    assert!(stats.tables.iter().any(|t| t.table == "recs"));
}

#[test]
fn sequenced_keys_are_unique_and_in_commit_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    for n in 0..3 {
        let mut batch = Batch::new("test", "log");
        batch.put_sequenced(&RECS, key("day"), &rec("event", n));
        store.commit(batch).expect("commit");
    }
    let rows = store.scan(&RECS, &key("day"), None, 10).expect("scan");
    let suffixes: Vec<u64> = rows
        .iter()
        .map(|(k, _)| u64::from_be_bytes(k[k.len() - 8..].try_into().expect("8 bytes")))
        .collect();
    assert_eq!(suffixes, vec![1, 2, 3], "each key ends with its batch's sequence");
    assert_eq!(rows.iter().map(|(_, v)| v.value.n).collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[test]
fn recorded_batches_may_delete_index_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = Batch::new("test", "insert");
    batch.put_index(&BY_NAME, key("alpha"));
    store.commit(batch).expect("commit");
    let mut batch = Batch::new("test", "rename").record_values();
    batch.delete_index(&BY_NAME, key("alpha"));
    batch.put_index(&BY_NAME, key("beta"));
    store.commit(batch).expect("index entries carry no image, and are no corruption");
    assert!(!store.contains(&BY_NAME, &key("alpha")).expect("contains"));
    assert!(store.contains(&BY_NAME, &key("beta")).expect("contains"));
}

#[test]
fn filtered_change_log_reads_only_kept_batches_and_reports_the_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    for (i, reason) in ["import", "keep", "import", "keep"].into_iter().enumerate() {
        let mut batch = Batch::new("test", reason);
        batch.put(&RECS, key(&format!("k{i}")), &rec(reason, i as u32));
        store.commit(batch).expect("commit");
    }
    let (kept, last) = store.changes_since_where(0, 3, |r| r == "keep").expect("read");
    assert_eq!(kept.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![2]);
    assert_eq!(last, 3, "three batches scanned");
    let (kept, last) = store.changes_since_where(last, 10, |r| r == "keep").expect("read");
    assert_eq!((kept.len(), last), (1, 4));
    assert_eq!(
        store.changes_since_where(4, 10, |_| true).expect("read").1,
        4,
        "nothing new: the cursor stays"
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 60_000;
    let committed = store.committed_millis_after(2).expect("read").expect("a batch after 2");
    assert!(committed >= before, "the third batch's commit time");
    assert_eq!(store.committed_millis_after(4).expect("read"), None, "nothing after the head");
}

#[test]
fn write_mostly_index_reads_back_in_key_order_live_flushed_and_replayed() {
    const LOG: Index = Index::new("log");
    const WRITE_MOSTLY: Schema = Schema {
        name: "test",
        tables: &["recs", "log"],
        write_mostly: &["log"],
        history: &[],
    };
    let listed = |store: &Store, prefix: &str| {
        let mut keys = Vec::new();
        store
            .for_each_index_key(&LOG, &key(prefix), |k| {
                keys.push(k.to_vec());
                Ok(true)
            })
            .expect("scan");
        keys
    };
    let entry = |subject: &str, seq: u64| KeyBuilder::new().str(subject).u64(seq).build();
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), WRITE_MOSTLY, StoreOptions::default()).expect("open");
        for (subject, seq) in [("b", 3), ("a", 2), ("b", 1), ("c", 4)] {
            let mut batch = Batch::new("test", "log");
            batch.put_index(&LOG, entry(subject, seq));
            store.commit(batch).expect("commit");
        }
        // Still in the vector memtable: the read sorts a copy of it.
        assert_eq!(listed(&store, "b"), [entry("b", 1), entry("b", 3)]);
        store.flush().expect("flush");
        let mut batch = Batch::new("test", "log");
        batch.put_index(&LOG, entry("b", 2));
        store.commit(batch).expect("commit");
        // One key in the live memtable, two in a table file.
        assert_eq!(listed(&store, "b"), [entry("b", 1), entry("b", 2), entry("b", 3)]);
    }
    // Reopened: the unflushed key is replayed from the WAL.
    let store = Store::open(dir.path(), WRITE_MOSTLY, StoreOptions::default()).expect("reopen");
    assert_eq!(listed(&store, "b"), [entry("b", 1), entry("b", 2), entry("b", 3)]);
    assert_eq!(listed(&store, "a"), [entry("a", 2)]);
}

#[test]
fn markers_are_kept_across_reopen_and_apart_from_the_store_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        assert!(!store.marker("backfill.v1").expect("marker"));
        store.set_marker("backfill.v1").expect("set");
        assert!(store.marker("backfill.v1").expect("marker"));
        assert!(!store.marker("backfill.v2").expect("marker"));
    }
    let store = open(dir.path());
    assert!(store.marker("backfill.v1").expect("marker after reopen"));
    assert_eq!(store.name(), "test");
}

#[test]
fn commit_listeners_hear_every_committed_sequence_and_no_refused_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    store.listen_commits(Arc::new(move |seq| sink.lock().expect("lock").push(seq)));
    for i in 0..3u32 {
        let mut batch = Batch::new("test", "listen");
        batch.put(&RECS, key(&format!("l{i}")), &rec("listen", i));
        store.commit(batch).expect("commit");
    }
    let mut refused = Batch::new("test", "listen");
    refused.expect_version(&RECS, key("l0"), None);
    refused.put(&RECS, key("l0"), &rec("again", 9));
    assert!(store.commit(refused).is_err(), "a version conflict");
    assert_eq!(*heard.lock().expect("lock"), vec![1, 2, 3]);
}

/// The highest sequence the store's commit listeners have been told of.
fn highest_told(store: &Store) -> Arc<AtomicU64> {
    let told = Arc::new(AtomicU64::new(0));
    let listener_told = Arc::clone(&told);
    store.listen_commits(Arc::new(move |seq| {
        listener_told.fetch_max(seq, Ordering::SeqCst);
    }));
    told
}

/// Group commit: a durable batch is readable once written, but the change
/// log (what followers read) and the commit listeners see it only once its
/// WAL sync is done; one sync serves every batch written before it.
#[test]
fn durable_commits_share_a_sync_and_reach_the_change_log_once_synced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let told = highest_told(&store);
    let running_sync = store.inner.wal.hold();
    let committers: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut batch = Batch::new("test", "insert");
                batch.put(&RECS, key(&format!("k{i}")), &rec("r", i));
                store.commit_with(batch, Durability::Sync)
            })
        })
        .collect();
    while store.last_seq() < 4 {
        std::thread::yield_now();
    }
    assert!(store.get(&RECS, &key("k0")).expect("get").is_some(), "readable once written");
    assert_eq!(store.durable_seq(), 0);
    assert!(
        store.changes_since(0, 10).expect("changes").is_empty(),
        "not in the change log before its sync"
    );
    assert_eq!(told.load(Ordering::SeqCst), 0, "no listener told before the sync");
    drop(running_sync);
    let mut seqs: Vec<u64> = committers.into_iter().map(|c| c.join().expect("thread").expect("commit")).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(store.wal_syncs(), 1, "the first to sync covered all four");
    assert_eq!(store.changes_since(0, 10).expect("changes").len(), 4);
    assert_eq!(told.load(Ordering::SeqCst), 4);
}

/// A commit written now and synced later: readable at once, durable (in
/// the change log, told to listeners) only after `sync_through`, and a
/// buffered commit written in between does not excuse its sync.
#[test]
fn an_unsynced_commit_is_durable_only_once_synced_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let told = highest_told(&store);
    let mut batch = Batch::new("test", "audit");
    batch.put(&RECS, key("u0"), &rec("u", 0));
    let seq = store.commit_unsynced(batch).expect("written");
    assert!(store.get(&RECS, &key("u0")).expect("get").is_some(), "readable once written");
    assert_eq!((store.durable_seq(), store.wal_syncs()), (0, 0));
    assert_eq!(told.load(Ordering::SeqCst), 0, "no listener told before the sync");
    let mut buffered = Batch::new("test", "other");
    buffered.put(&RECS, key("u1"), &rec("u", 1));
    store.commit_with(buffered, Durability::Buffered).expect("buffered");
    store.sync_through(seq).expect("synced");
    assert_eq!(store.wal_syncs(), 1, "the buffered commit after it did not stand in for its sync");
    store.sync_through(seq).expect("already synced");
    assert_eq!(store.wal_syncs(), 1, "a sync covers a commit once");
    assert!(store.durable_seq() >= seq);
    assert!(told.load(Ordering::SeqCst) >= seq);
}

#[test]
fn a_settled_store_has_nothing_left_to_flush_or_compact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    // Three flushed files on level 0 and rows in the memtable: the fourth
    // file, flushed by settling, reaches level 0's compaction trigger.
    for round in 0..4u32 {
        let mut batch = Batch::new("test", "load");
        for n in 0..20_000u32 {
            let name = format!("r{:03}-{n:05}-{}", 3 - round, "x".repeat(64));
            batch.put(&RECS, key(&name), &rec(&name, n));
        }
        store.commit(batch).expect("commit");
        if round < 3 {
            store.flush().expect("flush");
        }
    }
    store.settle().expect("settle");
    let cf = store.cf("recs").expect("cf");
    let property = |name: &str| store.inner.db.property_int_value_cf(cf, name).expect("property").unwrap_or(0);
    assert_eq!(property("rocksdb.num-entries-active-mem-table"), 0, "the memtable was flushed");
    // Compaction moves files down until level 0 is under its trigger.
    assert!(property("rocksdb.num-files-at-level0") < 4, "level 0 was compacted");
    let figures = store.engine_figures().expect("figures");
    assert_eq!(
        (figures.running_compactions, figures.pending_compaction_bytes),
        (0, 0),
        "{figures:?}"
    );
    let last = format!("r000-19999-{}", "x".repeat(64));
    assert_eq!(
        store.get(&RECS, &key(&last)).expect("get").map(|v| v.value),
        Some(rec(&last, 19_999))
    );
}

#[test]
fn a_settled_store_opens_without_rewriting_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = |store: &Store| {
        let mut names: Vec<String> = store
            .inner
            .db
            .live_files()
            .expect("live files")
            .into_iter()
            .map(|f| f.name)
            .collect();
        names.sort();
        names
    };
    let settled = {
        let store = open(dir.path());
        for round in 0..2u32 {
            let mut batch = Batch::new("test", "load");
            for n in 0..5_000u32 {
                let name = format!("r{round}-{n:05}");
                batch.put(&RECS, key(&name), &rec(&name, n));
            }
            store.commit(batch).expect("commit");
            store.flush().expect("flush");
        }
        store.settle().expect("settle");
        files(&store)
    };
    // A serving store takes and releases snapshots; had settling left files
    // with sequence numbers on the last level, the first release would have
    // them rewritten (new file names) before this wait ends.
    let store = open(dir.path());
    drop(store.inner.db.snapshot());
    store.inner.db.wait_for_compact(&WaitForCompactOptions::default()).expect("wait");
    assert_eq!(
        files(&store),
        settled,
        "a released snapshot had files rewritten that settling should have"
    );
    assert_eq!(
        store.get(&RECS, &key("r1-04999")).expect("get").map(|v| v.value),
        Some(rec("r1-04999", 4_999))
    );
}
