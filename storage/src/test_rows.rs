//! A one-table store for the tests of whole-store features (backups,
//! engine figures): rows keyed and valued by a number.

use crate::{Batch, Schema, Store, Table};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Row {
    #[prost(uint64, tag = "1")]
    pub n: u64,
}

pub const ROWS: Table<Row> = Table::new("rows");

pub const SCHEMA: Schema = Schema {
    name: "rows-test",
    tables: &["rows"],
    write_mostly: &[],
    history: &[],
};

/// Commits row `n`.
pub fn write(store: &Store, n: u64) {
    let mut batch = Batch::new("test", "row");
    batch.put(&ROWS, n.to_be_bytes().to_vec(), &Row { n });
    store.commit(batch).expect("commit");
}
