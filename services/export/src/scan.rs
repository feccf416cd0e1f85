//! Reading a dataset's rows from a snapshot as a ticket selects them: the
//! whole table, or (with `since_seq`) only the rows the change log says
//! were written after that sequence, in key order, as they are now.

use std::collections::BTreeSet;

use arrow_schema::SchemaRef;
use popbase_common::ServiceResult;
use popbase_storage::{Read, Snapshot, StorageError, StorageResult, Table};
use prost::Message;

use crate::columns::Columns;
use crate::pipeline;
use crate::source::BatchSink;
use crate::wire::{WirePlan, WireRow};

/// Change-log batches read per page.
const LOG_PAGE: usize = 4096;

/// Keys of `table` under `prefix` written in `(since, snapshot]`.
pub fn changed_keys(snapshot: &Snapshot, table: &str, prefix: &[u8], since: u64) -> StorageResult<BTreeSet<Vec<u8>>> {
    let mut keys = BTreeSet::new();
    let mut after = since;
    while after < snapshot.seq() {
        let page = snapshot.changes_since(after, LOG_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for batch in &page {
            keys.extend(batch.changes_in(table).filter(|c| c.key.starts_with(prefix)).map(|c| c.key.clone()));
        }
    }
    Ok(keys)
}

/// Visits the encoded rows (messages without their version header) of
/// `table` under `prefix`: all of them, or those changed after `since`.
/// Rows deleted since are not visited. `visit` returns `false` to stop.
pub fn for_each_encoded<M>(
    snapshot: &Snapshot,
    table: &Table<M>,
    prefix: &[u8],
    since: Option<u64>,
    mut visit: impl FnMut(&[u8]) -> StorageResult<bool>,
) -> StorageResult<()> {
    match since {
        None => snapshot.for_each_encoded(table, prefix, |_, encoded| visit(encoded)),
        Some(since) => {
            for key in changed_keys(snapshot, table.name(), prefix, since)? {
                if let Some(encoded) = snapshot.get_encoded(table, &key)?
                    && !visit(&encoded)?
                {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// A whole export of one table: every row [`for_each_encoded`] selects is
/// decoded and goes to `write`, which adds the row's columns (or skips a
/// row outside the ticket's division), in batches of `schema` into `sink`.
/// Rows are decoded and written on [`pipeline`] threads, in key order.
pub fn export_table<M: Message + Default>(
    snapshot: &Snapshot,
    table: &Table<M>,
    prefix: &[u8],
    since: Option<u64>,
    schema: SchemaRef,
    sink: &mut BatchSink,
    write: impl Fn(&mut Columns, &M) + Sync,
) -> ServiceResult<()> {
    pipeline::build_in_parallel(
        schema,
        sink,
        |visit| for_each_encoded(snapshot, table, prefix, since, |encoded| Ok(visit(encoded))),
        |chunk, columns| {
            for encoded in chunk.rows() {
                write(columns, &M::decode(encoded).map_err(|e| StorageError::decode(table.name(), e))?);
            }
            Ok(())
        },
    )
}

/// [`export_table`] for a dataset whose columns a [`WirePlan`] reads
/// straight from each row's encoding (one row out per row in). `keep`
/// sees each row read and says whether it is exported.
pub fn export_encoded<M>(
    snapshot: &Snapshot,
    table: &Table<M>,
    prefix: &[u8],
    since: Option<u64>,
    plan: &WirePlan,
    sink: &mut BatchSink,
    keep: impl Fn(&WireRow<'_>, &[u8]) -> bool + Sync,
) -> ServiceResult<()> {
    pipeline::build_in_parallel(
        plan.schema().clone(),
        sink,
        |visit| for_each_encoded(snapshot, table, prefix, since, |encoded| Ok(visit(encoded))),
        |chunk, columns| {
            let mut row = plan.reader();
            for encoded in chunk.rows() {
                row.read(encoded).map_err(|e| StorageError::decode(table.name(), e))?;
                if keep(&row, encoded) {
                    row.write(encoded, columns);
                }
            }
            Ok(())
        },
    )
}
