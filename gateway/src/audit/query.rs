//! Reading the trail: a citizen's accesses, departments' usage per day.

use popbase_proto::gateway::{Access, AuditRecord, Decision, Usage};
use popbase_storage::keys::KeyReader;
use popbase_storage::{Read, StorageResult, Store};

use super::manifest;
use crate::tables::{self, AUDIT, AUDIT_BY_SUBJECT, EXPORT_SUBJECTS, USAGE};

/// The newest `limit` accesses to the data of the person with pseudonym
/// `subject`: answers and writes (the subject index) and exports (their
/// manifests).
pub fn accesses(store: &Store, subject: &str, limit: usize) -> StorageResult<Vec<Access>> {
    let mut seqs = Vec::new();
    store.for_each_index_key(&AUDIT_BY_SUBJECT, &tables::subject_prefix(subject), |key| {
        let mut reader = KeyReader::new(key);
        reader.str()?;
        seqs.push(reader.u64()?);
        Ok(true)
    })?;
    // The exports that carried them: their bucket's manifest rows.
    let id = manifest::subject_id(subject);
    store.for_each(
        &EXPORT_SUBJECTS,
        &tables::export_subjects_prefix(manifest::bucket(id)),
        |key, row| {
            if manifest::contains(&row.value, id) {
                let mut reader = KeyReader::new(key);
                reader.u32()?;
                seqs.push(reader.u64()?);
            }
            Ok(true)
        },
    )?;
    seqs.sort_unstable();
    seqs.dedup();
    let mut out = Vec::new();
    for seq in seqs.into_iter().rev().take(limit) {
        if let Some(row) = store.get(&AUDIT, &tables::audit_key(seq))? {
            let r: AuditRecord = row.value;
            out.push(Access {
                at_unix_millis: r.at_unix_millis,
                department: r.department,
                interface: r.interface,
                purpose: r.purpose,
                allowed: r.decision == Decision::Allowed as i32,
                fields: r.fields,
            });
        }
    }
    Ok(out)
}

/// Usage rows for days `from..=to` (yyyymmdd), of one department or all.
pub fn usage(store: &Store, from: u32, to: u32, department: &str) -> StorageResult<Vec<Usage>> {
    let mut out = Vec::new();
    store.for_each_between(
        &USAGE,
        &tables::usage_day_prefix(from),
        Some(&tables::usage_day_prefix(to.saturating_add(1))),
        |_, row| {
            if department.is_empty() || row.value.department == department {
                out.push(row.value);
            }
            Ok(true)
        },
    )?;
    Ok(out)
}
