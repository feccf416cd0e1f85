//! `popbase restore`: rebuilds a data directory's stores from a backup set
//! and verifies what it rebuilt before anything serves from it.
//!
//! Run it with the roles stopped. For every role whose manifest of the set
//! is in the backup directory (all of them on an all-in-one volume, one in
//! a role's restore Job) it restores each store into `<data>/<role>`, which
//! must be missing or empty, then checks:
//! - each restored store holds at least the sequence its backup recorded
//!   (so every write acknowledged before the backup began is there);
//! - the ledger's audit chain verifies up to the head saved with the set;
//! - the residence role's registry cursor against the restored registry (a
//!   cursor ahead is reported; the role follows again from the registry's
//!   head when it starts).
//!
//! It prints the row count of every table.

use std::path::Path;

use anyhow::Context;
use popbase_common::backup_set::{self, Manifest};
use popbase_common::{Config, Role};
use popbase_storage::{Read, Schema, Store, backup};

fn schema_of(role: Role) -> anyhow::Result<Schema> {
    Ok(match role {
        Role::Household => popbase_household::tables::SCHEMA,
        Role::Residence => popbase_residence::tables::SCHEMA,
        Role::Feeds => popbase_feeds::tables::SCHEMA,
        Role::Ledger => popbase_gateway::tables::SCHEMA,
        other => anyhow::bail!("role {} keeps no store", other.name()),
    })
}

/// The manifests of set `label` (the newest set when `None`).
fn chosen_set(backup_dir: &Path, label: Option<&str>) -> anyhow::Result<Vec<Manifest>> {
    if !backup_dir.is_dir() {
        anyhow::bail!("no backup directory at {}", backup_dir.display());
    }
    let all: Vec<Manifest> = backup_set::manifests(backup_dir)?.into_iter().map(|(_, m)| m).collect();
    let Some(newest) = all.last() else {
        anyhow::bail!("no backup set under {} (sets/*.json)", backup_dir.display());
    };
    let label = label.unwrap_or(&newest.label).to_string();
    let chosen: Vec<Manifest> = all.iter().filter(|m| m.label == label).cloned().collect();
    if chosen.is_empty() {
        let mut labels: Vec<&str> = all.iter().map(|m| m.label.as_str()).collect();
        labels.dedup();
        anyhow::bail!(
            "no backup set '{label}' under {}; there are: {}",
            backup_dir.display(),
            labels.join(", ")
        );
    }
    Ok(chosen)
}

pub fn restore(config: &Config, backup_dir: &Path, label: Option<&str>) -> anyhow::Result<()> {
    let set = chosen_set(backup_dir, label)?;
    let mut restored = Vec::new();
    for manifest in &set {
        let role: Role = manifest.role.parse()?;
        let target = config.store_dir(role);
        let [entry] = manifest.stores.as_slice() else {
            anyhow::bail!(
                "the {} manifest of set '{}' does not name exactly one store",
                manifest.role,
                manifest.label
            );
        };
        let Some((dir, info)) = backup_set::kept_backup(backup_dir, entry)? else {
            anyhow::bail!("the {} backup of set '{}' has been pruned", entry.store, manifest.label);
        };
        backup::restore_backup(&dir, info.id, &target).with_context(|| format!("restoring {} into {}", entry.store, target.display()))?;
        let store = Store::open(&target, schema_of(role)?, config.store_options())
            .with_context(|| format!("opening the restored {} store", entry.store))?;
        if store.last_seq() < entry.seq {
            anyhow::bail!(
                "the restored {} store ends at sequence {}, but its backup recorded {}",
                entry.store,
                store.last_seq(),
                entry.seq
            );
        }
        // Followers of this store's log compare this with what they last saw.
        let mark = store.mark_restored()?;
        let mut counts = Vec::new();
        for table in schema_of(role)?.tables {
            counts.push(format!("{table}={}", store.count_keys(table)?));
        }
        crate::say::out(&format!(
            "restored role={} store={} from={} backup_id={} seq={} (recorded {}) epoch={} rows: {}\n",
            manifest.role,
            entry.store,
            dir.display(),
            info.id,
            store.last_seq(),
            entry.seq,
            mark.epoch,
            counts.join(" ")
        ))?;
        if let Some(head) = &manifest.audit_head {
            verify_chain(&store, head, &manifest.label)?;
        }
        restored.push((role, store));
    }
    report_follower(&restored)?;
    crate::say::out(&format!(
        "restore of set '{}' verified: {} stores into {}\n",
        set[0].label,
        restored.len(),
        config.data_dir.display()
    ))?;
    Ok(())
}

fn verify_chain(store: &Store, head: &backup_set::HeadEntry, label: &str) -> anyhow::Result<()> {
    let kept = popbase_gateway::audit::verify::KeptHead {
        seq: head.seq,
        hash: hex::decode(&head.hash_hex).context("the saved audit head's hash is not hex")?,
        origin: format!("the head saved with backup set '{label}'"),
    };
    let report = popbase_gateway::audit::verify::verify(store, &[kept]);
    if let Some(broken) = report.broken {
        anyhow::bail!("audit chain BROKEN at record {}: {}", broken.seq, broken.why);
    }
    crate::say::out(&format!(
        "audit chain verified: {} records, against the head saved with the set (record {})\n",
        report.verified, head.seq
    ))?;
    Ok(())
}

/// The residence role follows the registry's change log by sequence; say
/// where it will pick up.
fn report_follower(restored: &[(Role, Store)]) -> anyhow::Result<()> {
    let find = |role| restored.iter().find(|(r, _)| *r == role).map(|(_, s)| s.clone());
    let (Some(household), Some(residence)) = (find(Role::Household), find(Role::Residence)) else {
        return Ok(());
    };
    let cursor = popbase_residence::Permits::new(residence).follow_cursor()?;
    let head = household.last_seq();
    let line = if cursor > head {
        format!("follower residence: cursor {cursor} is past the restored registry's head {head}; on start it follows again from {head}\n")
    } else {
        format!("follower residence: cursor {cursor}, registry head {head}: consistent\n")
    };
    crate::say::out(&line)?;
    Ok(())
}
