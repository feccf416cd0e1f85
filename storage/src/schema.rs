//! Table declarations. A service lists its tables in a [`Schema`]; each table
//! is one RocksDB column family, so compaction, stats and scans stay per table.

use std::marker::PhantomData;

/// Column families every store has besides its own tables.
pub(crate) const META_CF: &str = "_meta";
pub(crate) const CHANGELOG_CF: &str = "_changelog";
/// Per-key index of the change log for the tables a schema keeps history of.
pub(crate) const HISTORY_CF: &str = "_history";

/// A table of prost messages, stored with a version header (see `value.rs`).
#[derive(Debug)]
pub struct Table<M> {
    name: &'static str,
    _message: PhantomData<fn() -> M>,
}

impl<M> Table<M> {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _message: PhantomData,
        }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// A key-only table: secondary indexes whose keys carry all the information.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    name: &'static str,
}

impl Index {
    pub const fn new(name: &'static str) -> Self {
        Self { name }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// What a store holds: its name (checked on open, so one service cannot open
/// another's directory by mistake) and its column families.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub name: &'static str,
    pub tables: &'static [&'static str],
    /// Tables written on every call and read only now and then (an audit's
    /// per-subject index): their memtable is an unsorted vector, so a write
    /// is an append instead of a skiplist search among a million random
    /// keys. The price is paid by readers: a read that reaches the live
    /// memtable sorts a copy of it (their memtables are capped at 16 MiB,
    /// so that costs up to about 50 ms), so never list a table read on a
    /// hot path, and never one read by point `get`. They are stored
    /// uncompressed: list only tables of random content (pseudonyms).
    pub write_mostly: &'static [&'static str],
    /// Tables whose changes by value-recording batches are indexed by key
    /// (see [`crate::history`]), so one key's history is read without the
    /// whole change log.
    pub history: &'static [&'static str],
}

impl Schema {
    pub(crate) fn column_families(&self) -> impl Iterator<Item = &'static str> + '_ {
        [META_CF, CHANGELOG_CF, HISTORY_CF].into_iter().chain(self.tables.iter().copied())
    }

    pub(crate) fn keeps_history(&self, table: &str) -> bool {
        self.history.contains(&table)
    }

    pub(crate) fn is_write_mostly(&self, table: &str) -> bool {
        self.write_mostly.contains(&table)
    }
}
