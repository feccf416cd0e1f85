//! Who a bulk export carried, in a form the citizen access log can answer
//! from without one index entry per row.
//!
//! An export's BATCH record names thousands of subjects (their export
//! pseudonyms). Indexed one key per subject, like an answer's, a 200,000-row
//! export wrote 200,000 index keys and cut the export's throughput to a
//! third. Instead the gateway names a batch's subjects by the first 8 bytes
//! of their pseudonyms ([`subject_id`]), and the ledger splits them by
//! [`bucket`] (the first byte) into at most 256 rows of
//! [`crate::tables::EXPORT_SUBJECTS`], keyed (bucket, seq), each a sorted
//! run of 8-byte ids: 32 times fewer keys, a quarter of the bytes of hex.
//! A resident's lookup reads its own bucket's rows (1/256 of every export's
//! subjects) and binary-searches each. The record keeps the digest of its
//! subjects, so the chain still covers them.

use std::collections::BTreeMap;

use popbase_domain::pseudonym::pseudonym_prefix;
use sha2::{Digest as _, Sha256};

/// Bytes of a subject in a manifest row.
pub const SUBJECT_BYTES: usize = 8;

/// A pseudonym as a manifest knows it: its first 8 bytes when it is 32 hex
/// digits (every pseudonym the gateway makes), else the first 8 bytes of
/// its SHA-256 (so any text still has one stable place). Eight bytes tell
/// residents apart: two of a city's millions share a prefix with odds of
/// about one in ten million million.
pub fn subject_id(pseudonym: &str) -> u64 {
    pseudonym_prefix(pseudonym.as_bytes()).unwrap_or_else(|| {
        let digest = Sha256::digest(pseudonym.as_bytes());
        let mut first = [0u8; SUBJECT_BYTES];
        first.copy_from_slice(&digest[..SUBJECT_BYTES]);
        u64::from_be_bytes(first)
    })
}

/// The manifest row a subject falls in: its first byte.
pub fn bucket(id: u64) -> u8 {
    id.to_be_bytes()[0]
}

/// One BATCH record's subjects: the rows to write and the record's digest.
#[derive(Debug, Default)]
pub struct Manifest {
    /// bucket → sorted, distinct subjects (8 bytes big-endian), concatenated.
    pub rows: BTreeMap<u8, Vec<u8>>,
    /// SHA-256 of the rows concatenated in bucket order (every distinct
    /// subject, sorted): stored in the BATCH record, so the hash chain
    /// covers the manifest and [`Manifest::digest_of`] checks rows read back.
    pub digest: Vec<u8>,
}

impl Manifest {
    /// The manifest of subjects given compactly (8 bytes big-endian each,
    /// as an export names them) and as pseudonyms (any other caller).
    pub fn of(ids: &[u8], pseudonyms: &[String]) -> Manifest {
        let mut ids: Vec<u64> = ids
            .chunks_exact(SUBJECT_BYTES)
            .map(|id| {
                let mut bytes = [0u8; SUBJECT_BYTES];
                bytes.copy_from_slice(id);
                u64::from_be_bytes(bytes)
            })
            .chain(pseudonyms.iter().map(|p| subject_id(p)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        // Sorted, each bucket's ids are one run: every row is cut from one
        // buffer at its exact size, and the digest is one pass over it.
        let mut sorted = Vec::with_capacity(ids.len() * SUBJECT_BYTES);
        for id in &ids {
            sorted.extend_from_slice(&id.to_be_bytes());
        }
        let mut rows = BTreeMap::new();
        let mut start = 0;
        for run in ids.chunk_by(|a, b| bucket(*a) == bucket(*b)) {
            let end = start + run.len() * SUBJECT_BYTES;
            rows.insert(bucket(run[0]), sorted[start..end].to_vec());
            start = end;
        }
        Manifest {
            rows,
            digest: Sha256::digest(&sorted).to_vec(),
        }
    }

    /// The digest of manifest rows (in bucket order), as [`Manifest::of`] makes it.
    pub fn digest_of<'a>(rows: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut digest = Sha256::new();
        for row in rows {
            digest.update(row);
        }
        digest.finalize().to_vec()
    }
}

/// Whether a manifest row (sorted 8-byte subjects) holds `id`.
pub fn contains(row: &[u8], id: u64) -> bool {
    let id = id.to_be_bytes();
    let (mut low, mut high) = (0, row.len() / SUBJECT_BYTES);
    while low < high {
        let mid = low + (high - low) / 2;
        match row[mid * SUBJECT_BYTES..(mid + 1) * SUBJECT_BYTES].cmp(id.as_slice()) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_is_found_in_its_bucket_and_no_other_is() {
        let pseudonyms: Vec<String> = (0..5000u32)
            .map(|n| hex::encode(Sha256::digest(n.to_be_bytes()))[..32].to_string())
            .collect();
        let (given_compactly, given_as_text) = pseudonyms.split_at(2500);
        let ids: Vec<u8> = given_compactly.iter().flat_map(|p| subject_id(p).to_be_bytes()).collect();
        let manifest = Manifest::of(&ids, given_as_text);
        assert!(manifest.rows.len() <= 256);
        assert_eq!(manifest.rows.values().map(|r| r.len()).sum::<usize>(), 5000 * SUBJECT_BYTES);
        for pseudonym in &pseudonyms {
            let id = subject_id(pseudonym);
            assert!(contains(&manifest.rows[&bucket(id)], id), "{pseudonym}");
        }
        assert_eq!(
            Manifest::digest_of(manifest.rows.values().map(Vec::as_slice)),
            manifest.digest,
            "the rows read back check against the record's digest"
        );
        let stranger = subject_id(&hex::encode([7u8; 16]));
        assert!(!manifest.rows.get(&bucket(stranger)).is_some_and(|row| contains(row, stranger)));
    }

    #[test]
    fn text_that_is_not_a_pseudonym_still_has_a_stable_place() {
        assert_eq!(subject_id("not hex"), subject_id("not hex"));
        assert_ne!(subject_id("not hex"), subject_id("not hex!"));
        assert_eq!(subject_id(&"ab".repeat(16)), 0xabab_abab_abab_abab);
    }
}
