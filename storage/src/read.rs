//! Typed reads shared by the live [`crate::Store`] and a [`crate::Snapshot`].
//!
//! Both implement the two raw primitives; everything typed (decode, prefix
//! scans, paging) is written once here.

use prost::Message;

use crate::keys::prefix_end;
use crate::schema::{Index, Table};
use crate::{StorageError, StorageResult, value};

/// A decoded value and the sequence number of the batch that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<M> {
    pub version: u64,
    pub value: M,
}

/// Visitor over raw `(key, value)` pairs; returns `false` to stop.
pub type RawVisitor<'v> = dyn FnMut(&[u8], &[u8]) -> StorageResult<bool> + 'v;

/// Visitor over the answers of a batched read, one per key asked, in order: the raw value if any.
pub type ManyVisitor<'v> = dyn FnMut(Option<&[u8]>) -> StorageResult<()> + 'v;

pub trait Read {
    /// Raw value of `key` in column family `cf`.
    #[doc(hidden)]
    fn raw_get(&self, cf: &str, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;

    /// Raw values of `keys` in column family `cf`, handed to `visit` in the order of `keys`.
    #[doc(hidden)]
    fn raw_get_many(&self, cf: &str, keys: &[Vec<u8>], visit: &mut ManyVisitor<'_>) -> StorageResult<()>;

    /// Visits keys in `[from, until)` in order until the visitor returns `false`.
    #[doc(hidden)]
    fn raw_scan(&self, cf: &str, from: &[u8], until: Option<&[u8]>, visit: &mut RawVisitor<'_>) -> StorageResult<()>;

    /// The value at `key`, decoded, with its version.
    fn get<M: Message + Default>(&self, table: &Table<M>, key: &[u8]) -> StorageResult<Option<Versioned<M>>> {
        self.raw_get(table.name(), key)?
            .map(|raw| decode_value(table.name(), &raw))
            .transpose()
    }

    /// The values at `keys`, decoded, in the order asked. One batched engine
    /// read (RocksDB `MultiGet`): a batch of point look-ups shares the work of
    /// finding the memtables and files and sorts its keys through the block
    /// cache, which a loop of [`Read::get`] pays per key.
    fn get_many<M: Message + Default>(&self, table: &Table<M>, keys: &[Vec<u8>]) -> StorageResult<Vec<Option<Versioned<M>>>> {
        let mut out = Vec::with_capacity(keys.len());
        self.raw_get_many(table.name(), keys, &mut |raw| {
            out.push(raw.map(|raw| decode_value(table.name(), raw)).transpose()?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether each of `keys` holds a row of `table`, in the order asked:
    /// one batched read like [`Read::get_many`], without decoding the rows
    /// (ingest matching a thousand records' persons at a time).
    fn contains_many<M: Message + Default>(&self, table: &Table<M>, keys: &[Vec<u8>]) -> StorageResult<Vec<bool>> {
        self.raw_contains_many(table.name(), keys)
    }

    /// Whether each of `keys` is in `index`, in the order asked: one batched
    /// read (ingest asking which of a chunk's records were unmatched, so
    /// that only those get a delete instead of a tombstone each).
    fn index_contains_many(&self, index: &Index, keys: &[Vec<u8>]) -> StorageResult<Vec<bool>> {
        self.raw_contains_many(index.name(), keys)
    }

    /// Whether each of `keys` is in column family `cf`, in the order asked.
    #[doc(hidden)]
    fn raw_contains_many(&self, cf: &str, keys: &[Vec<u8>]) -> StorageResult<Vec<bool>> {
        let mut out = Vec::with_capacity(keys.len());
        self.raw_get_many(cf, keys, &mut |raw| {
            out.push(raw.is_some());
            Ok(())
        })?;
        Ok(out)
    }

    /// How many keys the column family `cf` (a table or index) holds,
    /// counted one by one: for checks after a restore, not a request path.
    fn count_keys(&self, cf: &str) -> StorageResult<u64> {
        let mut count = 0u64;
        self.raw_scan(cf, &[], None, &mut |_, _| {
            count += 1;
            Ok(true)
        })?;
        Ok(count)
    }

    /// Whether an index entry exists.
    fn contains(&self, index: &Index, key: &[u8]) -> StorageResult<bool> {
        Ok(self.raw_get(index.name(), key)?.is_some())
    }

    /// Visits every row whose key starts with `prefix`, in key order, until `visit` returns `false`.
    fn for_each<M: Message + Default>(
        &self,
        table: &Table<M>,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], Versioned<M>) -> StorageResult<bool>,
    ) -> StorageResult<()> {
        let end = prefix_end(prefix);
        self.raw_scan(table.name(), prefix, end.as_deref(), &mut |k, v| {
            visit(k, decode_value(table.name(), v)?)
        })
    }

    /// Like [`Read::for_each`], but hands `visit` each row's encoded message
    /// (the payload without its version header), borrowed from the engine's
    /// buffer and not decoded: a bulk reader that needs a few fields of
    /// every row can take them from the wire bytes instead of allocating the
    /// whole message (see `popbase_export::wire`).
    fn for_each_encoded<M>(
        &self,
        table: &Table<M>,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> StorageResult<bool>,
    ) -> StorageResult<()> {
        let end = prefix_end(prefix);
        self.raw_scan(table.name(), prefix, end.as_deref(), &mut |k, v| {
            let (_, payload) = value::decode(table.name(), v)?;
            visit(k, payload)
        })
    }

    /// The encoded message at `key` (payload without its version header).
    fn get_encoded<M>(&self, table: &Table<M>, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.raw_get(table.name(), key)?
            .map(|raw| value::decode(table.name(), &raw).map(|(_, payload)| payload.to_vec()))
            .transpose()
    }

    /// Visits every row with `from <= key < until` (open-ended without
    /// `until`), in key order, until `visit` returns `false`.
    fn for_each_between<M: Message + Default>(
        &self,
        table: &Table<M>,
        from: &[u8],
        until: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], Versioned<M>) -> StorageResult<bool>,
    ) -> StorageResult<()> {
        self.raw_scan(table.name(), from, until, &mut |k, v| visit(k, decode_value(table.name(), v)?))
    }

    /// One page of rows under `prefix`, strictly after key `after` when given.
    fn scan<M: Message + Default>(
        &self,
        table: &Table<M>,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Versioned<M>)>> {
        let mut rows = Vec::new();
        let (from, end) = page_bounds(prefix, after);
        if limit == 0 {
            return Ok(rows);
        }
        self.raw_scan(table.name(), &from, end.as_deref(), &mut |k, v| {
            rows.push((k.to_vec(), decode_value(table.name(), v)?));
            Ok(rows.len() < limit)
        })?;
        Ok(rows)
    }

    /// One page of index keys under `prefix`, strictly after `after` when given.
    fn index_keys(&self, index: &Index, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> StorageResult<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        let (from, end) = page_bounds(prefix, after);
        if limit == 0 {
            return Ok(keys);
        }
        self.raw_scan(index.name(), &from, end.as_deref(), &mut |k, _| {
            keys.push(k.to_vec());
            Ok(keys.len() < limit)
        })?;
        Ok(keys)
    }

    /// Number of index entries under `prefix` (a key-only scan, nothing decoded).
    fn count_index(&self, index: &Index, prefix: &[u8]) -> StorageResult<u64> {
        count_keys(self, index.name(), prefix)
    }

    /// Number of table rows under `prefix` (a key-only scan, nothing decoded).
    fn count_rows<M>(&self, table: &Table<M>, prefix: &[u8]) -> StorageResult<u64> {
        count_keys(self, table.name(), prefix)
    }

    /// Visits every index key under `prefix` until `visit` returns `false`.
    fn for_each_index_key(&self, index: &Index, prefix: &[u8], mut visit: impl FnMut(&[u8]) -> StorageResult<bool>) -> StorageResult<()> {
        let end = prefix_end(prefix);
        self.raw_scan(index.name(), prefix, end.as_deref(), &mut |k, _| visit(k))
    }
}

fn count_keys<R: Read + ?Sized>(view: &R, cf: &str, prefix: &[u8]) -> StorageResult<u64> {
    let mut n = 0;
    let end = prefix_end(prefix);
    view.raw_scan(cf, prefix, end.as_deref(), &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// Scan start and exclusive end for a page under `prefix` after `after`.
fn page_bounds(prefix: &[u8], after: Option<&[u8]>) -> (Vec<u8>, Option<Vec<u8>>) {
    let from = match after {
        // The smallest key greater than `after` is `after` followed by 0x00.
        Some(after) if after >= prefix => {
            let mut next = after.to_vec();
            next.push(0);
            next
        }
        _ => prefix.to_vec(),
    };
    (from, prefix_end(prefix))
}

pub(crate) fn decode_value<M: Message + Default>(table: &str, raw: &[u8]) -> StorageResult<Versioned<M>> {
    let (version, payload) = value::decode(table, raw)?;
    let value = M::decode(payload).map_err(|e| StorageError::decode(table, e))?;
    Ok(Versioned { version, value })
}
