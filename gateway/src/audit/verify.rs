//! Offline verification of a copied ledger store: recompute the chain
//! from the first record and report the first one that breaks it: an
//! edited record (hash mismatch), a deleted one (sequence gap or a
//! `prev_hash` that no longer matches), a cut tail (the store's own head,
//! or an externally kept head line, names a record the trail no longer has),
//! or an export manifest that no longer matches its BATCH record's digest.

use popbase_proto::gateway::{AuditRecord, ExportPhase};
use std::collections::HashMap;

use popbase_storage::keys::KeyReader;
use popbase_storage::{Read, StorageResult, Store};
use sha2::{Digest as _, Sha256};

use super::chain::{GENESIS, record_hash};
use super::manifest::Manifest;
use crate::tables::{AUDIT, AUDIT_HEAD, EXPORT_SUBJECTS, HEAD_KEY};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first record that is missing or does not verify.
    pub seq: u64,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records that verified, from seq 1.
    pub verified: u64,
    pub last_hash: Vec<u8>,
    pub broken: Option<Broken>,
}

fn is_export_batch(record: &AuditRecord) -> bool {
    record.export.as_ref().is_some_and(|e| e.phase == ExportPhase::Batch as i32)
}

/// The digests of every BATCH record's manifest rows (see
/// [`crate::audit::manifest`]), by record, to check against the records'
/// own: one scan (rows come bucket by bucket, so each record's in bucket
/// order), not point reads of a write-mostly table.
fn manifest_digests(store: &Store) -> StorageResult<HashMap<u64, Sha256>> {
    let mut digests: HashMap<u64, Sha256> = HashMap::new();
    store.for_each(&EXPORT_SUBJECTS, &[], |key, row| {
        let mut reader = KeyReader::new(key);
        reader.u32()?;
        digests.entry(reader.u64()?).or_default().update(&row.value);
        Ok(true)
    })?;
    Ok(digests)
}

/// A head kept outside the store, and where it was read from (for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptHead {
    pub seq: u64,
    pub hash: Vec<u8>,
    /// E.g. "audit-head.log line 12".
    pub origin: String,
}

/// Verifies the trail in `store` against every head kept outside it: each
/// must name a record the trail holds, with that record's hash.
pub fn verify(store: &Store, kept: &[KeptHead]) -> Report {
    let mut manifests = match manifest_digests(store) {
        Ok(digests) => digests,
        Err(e) => {
            return Report {
                verified: 0,
                last_hash: GENESIS.to_vec(),
                broken: Some(Broken {
                    seq: 1,
                    why: format!("the export manifests cannot be read: {e}"),
                }),
            };
        }
    };
    let mut expected = 1u64;
    let mut prev = GENESIS.to_vec();
    let mut broken: Option<Broken> = None;
    let mut kept_by_seq: HashMap<u64, Vec<&KeptHead>> = HashMap::new();
    for head in kept {
        kept_by_seq.entry(head.seq).or_default().push(head);
    }
    let scan = store.for_each(&AUDIT, &[], |_, row| {
        let record: AuditRecord = row.value;
        let fail = |why: String| Broken { seq: expected, why };
        if record.seq != expected {
            broken = Some(if record.seq > expected {
                fail(format!("record {expected} is missing (the next one is {})", record.seq))
            } else {
                fail(format!("record {expected} carries seq {}", record.seq))
            });
            return Ok(false);
        }
        if record.prev_hash != prev {
            broken = Some(fail(format!(
                "record {expected} does not follow record {}: prev_hash differs",
                expected - 1
            )));
            return Ok(false);
        }
        let hash = record_hash(&record);
        if record.hash != hash {
            broken = Some(fail(format!("record {expected} was altered: its contents do not match its hash")));
            return Ok(false);
        }
        let manifest = manifests.remove(&expected).map(|digest| digest.finalize().to_vec());
        let manifest_holds = match (is_export_batch(&record), manifest) {
            // Written before manifests: the subjects are in the record itself.
            (true, None) if record.subjects_digest.is_empty() => true,
            (true, manifest) => manifest.unwrap_or_else(|| Manifest::digest_of([])) == record.subjects_digest,
            (false, manifest) => manifest.is_none(),
        };
        if !manifest_holds {
            broken = Some(fail(format!(
                "record {expected}'s export manifest was altered: its subjects do not match the record"
            )));
            return Ok(false);
        }
        if let Some(heads) = kept_by_seq.get(&expected)
            && let Some(differs) = heads.iter().find(|h| h.hash != hash)
        {
            broken = Some(fail(format!("record {expected} differs from the head kept at {}", differs.origin)));
            return Ok(false);
        }
        prev = hash.to_vec();
        expected += 1;
        Ok(true)
    });
    if let Err(e) = scan
        && broken.is_none()
    {
        broken = Some(Broken {
            seq: expected,
            why: format!("record {expected} cannot be read: {e}"),
        });
    }
    let last = expected - 1;
    if broken.is_none() {
        match store.get(&AUDIT_HEAD, HEAD_KEY) {
            Ok(Some(head)) if head.value.seq > last => {
                broken = Some(Broken {
                    seq: last + 1,
                    why: format!(
                        "truncated: the store's head names record {} but the trail ends at {last}",
                        head.value.seq
                    ),
                });
            }
            Ok(Some(head)) if head.value.seq == last && head.value.hash != prev => {
                broken = Some(Broken {
                    seq: last,
                    why: format!("record {last} differs from the store's head"),
                });
            }
            Ok(_) => {}
            Err(e) => {
                broken = Some(Broken {
                    seq: last + 1,
                    why: format!("the store's head cannot be read: {e}"),
                })
            }
        }
    }
    if broken.is_none()
        && let Some(beyond) = kept.iter().filter(|h| h.seq > last).max_by_key(|h| h.seq)
    {
        broken = Some(Broken {
            seq: last + 1,
            why: format!(
                "truncated: the head kept at {} names record {} but the trail ends at {last}",
                beyond.origin, beyond.seq
            ),
        });
    }
    if broken.is_none()
        && let Some(seq) = manifests.keys().min()
    {
        broken = Some(Broken {
            seq: *seq,
            why: format!("export manifest rows name record {seq}, which the trail does not hold"),
        });
    }
    let verified = broken.as_ref().map_or(last, |b| b.seq.saturating_sub(1).min(last));
    Report {
        verified,
        last_hash: prev,
        broken,
    }
}
