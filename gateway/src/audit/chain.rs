//! The chain rule: `hash = SHA-256(prev_hash || record encoded without its
//! hash)`, with the first record's `prev_hash` all zero. prost encodes
//! fields in number order, so the encoding (and the hash) is reproducible
//! by any verifier holding the proto.

use popbase_proto::gateway::AuditRecord;
use prost::Message;
use prost::encoding::WireType;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// Field number of `AuditRecord.hash`.
const HASH_FIELD: u32 = 13;

/// The hash `record` must carry, given its own `prev_hash` and contents.
pub fn record_hash(record: &AuditRecord) -> [u8; 32] {
    let unsigned = AuditRecord {
        hash: Vec::new(),
        ..record.clone()
    };
    unsigned_hash(&record.prev_hash, &unsigned.encode_to_vec())
}

/// The chain hash of a record from its encoding without the hash.
fn unsigned_hash(prev_hash: &[u8], unsigned: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(unsigned);
    hasher.finalize().into()
}

/// Chains `record` (whose `hash` is still empty): its hash and its stored
/// encoding, from one encoding of it. The stored bytes are that encoding
/// with the hash field appended after field 14, out of number order, which
/// every protobuf decoder reads as the same record; a verifier re-encodes
/// the decoded record and gets the canonical bytes back.
pub fn seal(record: &AuditRecord) -> ([u8; 32], Vec<u8>) {
    debug_assert!(record.hash.is_empty(), "a record is sealed once");
    let mut encoded = Vec::with_capacity(record.encoded_len() + 2 + 32);
    // Encoding into a Vec only fails for want of capacity, reserved above.
    let _ = record.encode(&mut encoded);
    let hash = unsigned_hash(&record.prev_hash, &encoded);
    prost::encoding::encode_key(HASH_FIELD, WireType::LengthDelimited, &mut encoded);
    prost::encoding::encode_varint(hash.len() as u64, &mut encoded);
    encoded.extend_from_slice(&hash);
    (hash, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_covered() {
        let record = AuditRecord {
            seq: 1,
            prev_hash: GENESIS.to_vec(),
            department: "education".into(),
            subjects: vec!["ab".into()],
            ..Default::default()
        };
        let base = record_hash(&record);
        let mut edited = record.clone();
        edited.department = "educatioN".into();
        assert_ne!(record_hash(&edited), base);
        let mut other_prev = record.clone();
        other_prev.prev_hash = vec![1; 32];
        assert_ne!(record_hash(&other_prev), base);
        let mut with_hash = record.clone();
        with_hash.hash = base.to_vec();
        assert_eq!(record_hash(&with_hash), base, "the hash field itself is not hashed");
    }

    #[test]
    fn a_sealed_record_decodes_as_the_record_with_its_hash() {
        let record = AuditRecord {
            seq: 7,
            prev_hash: vec![3; 32],
            department: "education".into(),
            subjects: vec!["ab".into(), "cd".into()],
            fields: vec!["place".into()],
            count: 1,
            subjects_digest: vec![9; 32],
            ..Default::default()
        };
        let (hash, stored) = seal(&record);
        assert_eq!(hash, record_hash(&record));
        let decoded = AuditRecord::decode(stored.as_slice()).expect("decodes");
        assert_eq!(
            decoded,
            AuditRecord {
                hash: hash.to_vec(),
                ..record
            }
        );
        assert_eq!(record_hash(&decoded), hash, "a verifier recomputes the same hash");
    }
}
