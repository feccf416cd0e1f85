//! `popbase audit verify` and `popbase token`.

use std::path::Path;

use anyhow::Context;
use popbase_common::Config;
use popbase_gateway::audit::{head, verify};

/// Verifies a copied ledger store; fails (exit 1) at the first broken record.
pub fn verify(store_dir: &Path, head_file: Option<&Path>) -> anyhow::Result<()> {
    let external = match head_file {
        Some(path) => head::read_last(path).with_context(|| format!("reading the head file {}", path.display()))?,
        None => None,
    };
    let store = popbase_storage::Store::open(store_dir, popbase_gateway::tables::SCHEMA, Default::default())
        .with_context(|| format!("opening the ledger store copy {}", store_dir.display()))?;
    let report = verify::verify(&store, external);
    match report.broken {
        None => {
            println!(
                "audit chain verified: {} records, head {}",
                report.verified,
                hex::encode(&report.last_hash)
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
pub fn token(config: &Config, department: &str, hours: i64) -> anyhow::Result<()> {
    let catalogue = popbase_gateway::catalogue::Catalogue::load(&config.gateway.catalogue)?;
    if catalogue.department(department).is_none() {
        anyhow::bail!("'{department}' is not a department of the catalogue");
    }
    let max = i64::from(config.gateway.max_token_hours);
    if !(1..=max).contains(&hours) {
        anyhow::bail!("--hours must be 1 to {max} (gateway.max_token_hours): the gateway refuses longer tokens");
    }
    let key = popbase_gateway::role::read_or_create_key(&config.token_key_path())?;
    let issued = chrono::Utc::now().timestamp();
    println!(
        "{}",
        popbase_gateway::auth::mint_token(&key, department, issued, issued + hours * 3600)
    );
    Ok(())
}
