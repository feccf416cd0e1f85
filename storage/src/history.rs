//! A key's history: the change-log entries that changed it, found without
//! reading the whole log.
//!
//! For the tables a schema lists in `history`, every batch that records
//! values (life events: before/after images) also writes an entry
//! `(table, key, seq)` to the `_history` column family. Reading a key's
//! history is one prefix scan of that family plus one change-log read per
//! entry; the registry answers "as of a past date" from it. Batches that do
//! not record values (bulk imports) are not indexed: what they wrote is the
//! state before any history.

use prost::Message;

use crate::changelog::ChangeBatch;
use crate::error::{StorageError, StorageResult};
use crate::keys::KeyBuilder;
use crate::read::Read;
use crate::schema::{CHANGELOG_CF, HISTORY_CF};

/// The history entry of `key` of `table` changed in batch `seq`.
pub(crate) fn history_key(table: &str, key: &[u8], seq: u64) -> Vec<u8> {
    let mut out = key_prefix(table, key);
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// Every history entry of one key starts with this: the table, the key's
/// length (so no key is a prefix of another's entries), the key.
fn key_prefix(table: &str, key: &[u8]) -> Vec<u8> {
    let mut out = KeyBuilder::new().str(table).u32(key.len() as u32).build();
    out.extend_from_slice(key);
    out
}

/// The change-log entries that changed `key` of `table`, oldest first
/// (commit order), read through `view` (a store or one snapshot).
pub fn history_of(view: &impl Read, table: &str, key: &[u8]) -> StorageResult<Vec<ChangeBatch>> {
    let prefix = key_prefix(table, key);
    let end = crate::keys::prefix_end(&prefix);
    let mut seqs = Vec::new();
    view.raw_scan(HISTORY_CF, &prefix, end.as_deref(), &mut |k, _| {
        let seq = k
            .get(prefix.len()..)
            .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StorageError::decode(HISTORY_CF, "a history key without its sequence"))?;
        seqs.push(seq);
        Ok(true)
    })?;
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        if let Some(raw) = view.raw_get(CHANGELOG_CF, &seq.to_be_bytes())? {
            out.push(ChangeBatch::decode(raw.as_slice()).map_err(|e| StorageError::decode(CHANGELOG_CF, e))?);
        }
    }
    Ok(out)
}
