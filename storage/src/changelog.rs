//! The change log: one entry per committed batch, keyed by its sequence number.
//!
//! Exports read it for "changed since N", the residence service follows the
//! registry's log to end permits on settlement, and life events record who,
//! when, why, and (when asked) the before/after images of each row.

/// What happened to one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ChangeOp {
    Unspecified = 0,
    Put = 1,
    Delete = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Change {
    #[prost(string, tag = "1")]
    pub table: String,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(enumeration = "ChangeOp", tag = "3")]
    pub op: i32,
    /// Encoded prost value before the change (only when the batch records values).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub before: Option<Vec<u8>>,
    /// Encoded prost value after the change (only when the batch records values).
    #[prost(bytes = "vec", optional, tag = "5")]
    pub after: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChangeBatch {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// Commit time, milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub unix_millis: i64,
    /// Who asked for the change (a department, an operator, `import`).
    #[prost(string, tag = "3")]
    pub actor: String,
    /// Why: the life event or operation name, e.g. `birth`, `move_in:property`.
    #[prost(string, tag = "4")]
    pub reason: String,
    #[prost(message, repeated, tag = "5")]
    pub changes: Vec<Change>,
}

impl ChangeBatch {
    /// Changes to one table, in batch order.
    pub fn changes_in<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a Change> + 'a {
        self.changes.iter().filter(move |c| c.table == table)
    }
}

/// The first fields of a [`ChangeBatch`] without its changes: prost skips
/// the rest unread, so a follower can filter batches by reason cheaply.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ChangeHeader {
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    #[prost(int64, tag = "2")]
    pub unix_millis: i64,
    #[prost(string, tag = "4")]
    pub reason: String,
}
