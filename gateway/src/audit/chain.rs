//! The chain rule: `hash = SHA-256(prev_hash || record encoded without its
//! hash)`, with the first record's `prev_hash` all zero. prost encodes
//! fields in number order, so the encoding (and the hash) is reproducible
//! by any verifier holding the proto.

use popbase_proto::gateway::AuditRecord;
use prost::Message;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash `record` must carry, given its own `prev_hash` and contents.
pub fn record_hash(record: &AuditRecord) -> [u8; 32] {
    let unsigned = AuditRecord {
        hash: Vec::new(),
        ..record.clone()
    };
    let mut hasher = Sha256::new();
    hasher.update(&record.prev_hash);
    hasher.update(unsigned.encode_to_vec());
    hasher.finalize().into()
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
}
