//! Backup sets against real stores and BackupEngine directories.

use popbase_storage::{Batch, Schema, StoreOptions, Table};

use super::*;

#[derive(Clone, PartialEq, prost::Message)]
struct Row {
    #[prost(uint64, tag = "1")]
    n: u64,
}

const ROWS: Table<Row> = Table::new("rows");
const SCHEMA: Schema = Schema {
    name: "household",
    tables: &["rows"],
    write_mostly: &[],
    history: &[],
};

fn write(store: &Store, n: u64) {
    let mut batch = Batch::new("test", "row");
    batch.put(&ROWS, n.to_be_bytes().to_vec(), &Row { n });
    store.commit(batch).expect("commit");
}

const KEEP_ONE: Retention = Retention { daily: 1, weekly: 1 };

#[test]
fn sets_name_their_backups_and_vanish_with_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("data"), SCHEMA, StoreOptions::default()).expect("open");
    let root = dir.path().join("backups");
    let stores = [store.clone()];

    write(&store, 1);
    let (a, path) = take(&root, Role::Household, &stores, "a", KEEP_ONE, None).expect("set a");
    assert!(path.ends_with("sets/a.household.json"));
    assert_ne!(a.stores[0].weekly_id, 0, "the first backup is also the first weekly one");
    assert!(a.stores[0].seq >= 1);
    assert!(a.audit_head.is_none());

    let again = take(&root, Role::Household, &stores, "a", KEEP_ONE, None).expect_err("label reused");
    assert!(again.to_string().contains("already has this label"), "{again}");

    write(&store, 2);
    let (b, _) = take(&root, Role::Household, &stores, "b", KEEP_ONE, None).expect("set b");
    assert_eq!(b.stores[0].weekly_id, 0, "a week has not passed");
    write(&store, 3);
    take(&root, Role::Household, &stores, "c", KEEP_ONE, None).expect("set c");

    // a's daily backup was pruned but its weekly one is kept; b has none left.
    let labels: Vec<String> = manifests(&root).expect("list").into_iter().map(|(_, m)| m.label).collect();
    assert_eq!(labels, vec!["a", "c"]);
    let (kept_in, _) = kept_backup(&root, &a.stores[0]).expect("lookup").expect("a is kept");
    assert_eq!(kept_in, weekly_dir(&root, "household"));
    assert_eq!(newest_per_role(&root).len(), 1);
}

#[test]
fn the_ledger_set_records_the_head_it_was_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("data"), SCHEMA, StoreOptions::default()).expect("open");
    let head = || {
        Ok(HeadEntry {
            seq: 7,
            hash_hex: "ab".repeat(32),
        })
    };
    let (manifest, path) = take(&dir.path().join("b"), Role::Ledger, &[store], "n", KEEP_ONE, Some(&head)).expect("set");
    assert_eq!(manifest.audit_head.as_ref().map(|h| h.seq), Some(7));
    let (_, read) = manifests(&dir.path().join("b")).expect("list").pop().expect("one");
    assert_eq!(read, manifest, "the manifest reads back as written");
    assert!(path.is_file());
}
