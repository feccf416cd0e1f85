//! Atomic write batches with optimistic version checks.

use prost::Message;

use crate::schema::{Index, Table};

#[derive(Debug)]
pub(crate) enum Op {
    Put {
        cf: &'static str,
        key: Vec<u8>,
        /// Encoded prost payload; `None` for index entries (empty value).
        payload: Option<Vec<u8>>,
        /// Append the batch's sequence number (8 bytes, big-endian) to `key`.
        append_seq: bool,
    },
    Delete {
        cf: &'static str,
        key: Vec<u8>,
    },
}

#[derive(Debug)]
pub(crate) struct Expectation {
    pub cf: &'static str,
    pub key: Vec<u8>,
    /// `None`: the key must not exist. `Some(v)`: it must exist at version `v`.
    pub version: Option<u64>,
}

/// A set of writes that commit together or not at all.
///
/// `actor` and `reason` go into the change log entry of the batch. Expectations
/// are checked under the store's commit lock; if any fails, nothing is written
/// and the commit returns [`crate::StorageError::Conflict`].
#[derive(Debug)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) expectations: Vec<Expectation>,
    pub(crate) actor: String,
    pub(crate) reason: String,
    pub(crate) record_values: bool,
    /// The sequence the expectations' versions were read at (see [`Batch::read_at`]).
    pub(crate) read_at: Option<u64>,
}

impl Batch {
    pub fn new(actor: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            ops: Vec::new(),
            expectations: Vec::new(),
            actor: actor.into(),
            reason: reason.into(),
            record_values: false,
            read_at: None,
        }
    }

    /// Says the versions this batch expects were all read at or after the
    /// commit of `seq` (the store's or a snapshot's sequence, taken before
    /// reading): the commit then reads them again only when a later commit
    /// wrote one of their keys, instead of always.
    pub fn read_at(&mut self, seq: u64) -> &mut Self {
        self.read_at = Some(seq);
        self
    }

    /// Keep before/after images of table rows in the change log entry
    /// (life events want them; bulk imports do not).
    pub fn record_values(mut self) -> Self {
        self.record_values = true;
        self
    }

    pub fn put<M: Message>(&mut self, table: &Table<M>, key: Vec<u8>, value: &M) -> &mut Self {
        self.put_encoded(table, key, value.encode_to_vec())
    }

    /// Puts a value already encoded as `table`'s message (any valid
    /// protobuf encoding of it): for a writer that needed the bytes anyway,
    /// say to hash them, and should not encode twice.
    pub fn put_encoded<M: Message>(&mut self, table: &Table<M>, key: Vec<u8>, encoded: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Put {
            cf: table.name(),
            key,
            payload: Some(encoded),
            append_seq: false,
        });
        self
    }

    /// Puts `value` at `key_prefix` followed by the batch's own sequence
    /// number, known only at commit: an append-only log keyed by, say, date
    /// then sequence gets unique keys in commit order.
    pub fn put_sequenced<M: Message>(&mut self, table: &Table<M>, key_prefix: Vec<u8>, value: &M) -> &mut Self {
        self.ops.push(Op::Put {
            cf: table.name(),
            key: key_prefix,
            payload: Some(value.encode_to_vec()),
            append_seq: true,
        });
        self
    }

    pub fn delete<M>(&mut self, table: &Table<M>, key: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Delete { cf: table.name(), key });
        self
    }

    pub fn put_index(&mut self, index: &Index, key: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Put {
            cf: index.name(),
            key,
            payload: None,
            append_seq: false,
        });
        self
    }

    pub fn delete_index(&mut self, index: &Index, key: Vec<u8>) -> &mut Self {
        self.ops.push(Op::Delete { cf: index.name(), key });
        self
    }

    /// Commit only if `key` is still at `version` (`None`: still absent).
    pub fn expect_version<M>(&mut self, table: &Table<M>, key: Vec<u8>, version: Option<u64>) -> &mut Self {
        self.expectations.push(Expectation {
            cf: table.name(),
            key,
            version,
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}
