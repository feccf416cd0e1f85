//! `popbase audit verify` and `popbase token`.

use std::path::Path;

use anyhow::Context;
use popbase_common::Config;
use popbase_gateway::audit::{head, verify};

/// Verifies a copied ledger store against every head line of `head_files`
/// (signed by `head_key` when given); fails (exit 1) at the first broken
/// record or head, naming it. A missing store is an error, never created.
pub fn verify(store_dir: &Path, head_files: &[std::path::PathBuf], head_key: Option<&str>) -> anyhow::Result<()> {
    if !store_dir.join("CURRENT").is_file() {
        anyhow::bail!(
            "no ledger store at {}: give the directory of a copy (a checkpoint or backup)",
            store_dir.display()
        );
    }
    let mut kept = Vec::new();
    for file in head_files {
        let lines = head::read_all(file)?;
        if let Some(key) = head_key
            && let Some(bad) = lines.iter().find(|l| !head::signature_holds(l, key))
        {
            anyhow::bail!(
                "head {} line {} is not signed by the ledger key given (--head-key)",
                file.display(),
                bad.line
            );
        }
        kept.extend(head::kept(file)?);
    }
    let store = popbase_storage::Store::open(store_dir, popbase_gateway::tables::SCHEMA, Default::default())
        .with_context(|| format!("opening the ledger store copy {}", store_dir.display()))?;
    let report = verify::verify(&store, &kept);
    match report.broken {
        None => {
            println!(
                "audit chain verified: {} records, head {}, against {} kept head lines",
                report.verified,
                hex::encode(&report.last_hash),
                kept.len()
            );
            Ok(())
        }
        Some(broken) => {
            println!("audit chain BROKEN at record {}: {}", broken.seq, broken.why);
            println!("records 1..{} verify", report.verified);
            anyhow::bail!("audit chain broken at record {}", broken.seq)
        }
    }
}

/// Prints a token for `department` signed with the gateway's token key.
/// The gateway's token key, which must exist already: a token signed with a
/// key no gateway holds is refused.
fn existing_token_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    let path = config.token_key_path();
    if !path.is_file() {
        anyhow::bail!(
            "no token key at {}: give the --data (or gateway.token_key_file) of a gateway that has started",
            path.display()
        );
    }
    Ok(popbase_gateway::role::read_or_create_key(&path)?)
}

/// Prints the service platform's assertion that the resident with
/// `id_number` signed in, valid for an hour (the console's resident page).
pub fn resident_assertion(config: &Config, id_number: &str) -> anyhow::Result<()> {
    if popbase_common::validate::id_number("--resident", id_number, popbase_domain::clock::today()).is_err() {
        anyhow::bail!("--resident is not a valid ID number (18 characters, GB 11643 check digit)");
    }
    let key = existing_token_key(config)?;
    let issued = chrono::Utc::now().timestamp();
    println!(
        "{}",
        popbase_gateway::auth::mint_resident_assertion(&key, id_number, issued, issued + popbase_gateway::auth::MAX_ASSERTION_SECS)
    );
    Ok(())
}

pub fn token(config: &Config, department: &str, hours: i64) -> anyhow::Result<()> {
    let catalogue = popbase_gateway::catalogue::Catalogue::load(&config.gateway.catalogue)?;
    if catalogue.department(department).is_none() {
        anyhow::bail!("'{department}' is not a department of the catalogue");
    }
    let max = i64::from(config.gateway.max_token_hours);
    if !(1..=max).contains(&hours) {
        anyhow::bail!("--hours must be 1 to {max} (gateway.max_token_hours): the gateway refuses longer tokens");
    }
    let key = existing_token_key(config)?;
    let issued = chrono::Utc::now().timestamp();
    println!(
        "{}",
        popbase_gateway::auth::mint_token(&key, department, issued, issued + hours * 3600)
    );
    Ok(())
}
