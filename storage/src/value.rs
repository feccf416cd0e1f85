//! Versioned value encoding.
//!
//! Every table value is `[format: u8][version: u64 BE][prost payload]`.
//! The version is the sequence number of the batch that wrote the value, which
//! gives optimistic concurrency for free: a writer reads a record with its
//! version and commits with "expect version V"; a racing writer loses cleanly.
//! The format byte lets a later release change the layout without a rewrite.

use crate::StorageError;

const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 9;

pub(crate) fn encode(version: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub(crate) fn decode<'a>(table: &str, raw: &'a [u8]) -> Result<(u64, &'a [u8]), StorageError> {
    let bad = |detail: &str| StorageError::decode(table, detail);
    if raw.len() < HEADER_LEN {
        return Err(bad("value shorter than its header"));
    }
    if raw[0] != FORMAT_V1 {
        return Err(bad("unknown value format"));
    }
    let mut version = [0u8; 8];
    version.copy_from_slice(&raw[1..HEADER_LEN]);
    Ok((u64::from_be_bytes(version), &raw[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let raw = encode(42, b"payload");
        assert_eq!(decode("t", &raw).expect("decodes"), (42, &b"payload"[..]));
        assert!(decode("t", &raw[..5]).is_err());
        let mut future = raw.clone();
        future[0] = 9;
        assert!(decode("t", &future).is_err());
    }
}
