//! `popbase demo`: a small city on first start, then every role in one
//! process, its internal ports in a mesh of its own (a CA and certificates
//! under `<data>/mesh/`, created on first start), so the demo's registry,
//! residence, feeds and ledger ports refuse anyone without a certificate,
//! as production's do.

use std::path::Path;

use anyhow::Context;
use popbase_common::mesh::MeshIdentity;
use popbase_common::mesh::pki::{self, Pki};
use popbase_common::{Config, Role};

/// The identities the demo issues: itself (every role), and the two tools
/// an operator uses against it (`popbase backup`/`stats` as backup; the
/// load tester's set-up read of the registry as the gateway).
const DEMO_IDENTITIES: [MeshIdentity; 3] = [MeshIdentity::AllInOne, MeshIdentity::Backup, MeshIdentity::Gateway];

/// The demo's mesh in `dir`: its CA and certificates, created when missing.
fn demo_mesh(dir: &Path) -> anyhow::Result<()> {
    if dir.join("ca.pem").exists() {
        return Ok(());
    }
    let pki = Pki::create_in(dir, "popbase demo mesh CA").with_context(|| format!("creating the demo CA in {}", dir.display()))?;
    for identity in DEMO_IDENTITIES {
        let issued = pki
            .issue(identity, &["127.0.0.1", "localhost"])
            .context("issuing a demo certificate")?;
        pki::write_pair(dir, identity.name(), &issued.cert_pem, &issued.key_pem)?;
    }
    Ok(())
}

/// The console's HTTPS certificate in `dir`, from a CA of its own (a
/// browser is told to trust `ca.pem`, never the mesh's), created when missing.
fn demo_console_certificate(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("console.pem").exists() {
        let pki =
            Pki::create_in(dir, "popbase demo console CA").with_context(|| format!("creating the console CA in {}", dir.display()))?;
        let issued = pki
            .issue_named("console.popbase", &["127.0.0.1", "localhost"])
            .context("issuing the console certificate")?;
        pki::write_pair(dir, "console", &issued.cert_pem, &issued.key_pem)?;
    }
    // Operators' client certificates come from a CA of their own; one for a
    // demo auditor (curl --cert, or import it into a browser).
    let operators = dir.join("operators");
    if !operators.join("ca.pem").exists() {
        let operator_ca = Pki::create_in(&operators, "popbase demo operators CA").context("creating the operators' CA")?;
        let auditor = operator_ca
            .issue_named("demo.audit.operators.popbase", &[])
            .context("issuing the demo auditor's certificate")?;
        pki::write_pair(&operators, "demo.audit", &auditor.cert_pem, &auditor.key_pem)?;
    }
    Ok(())
}

/// Seed of the demo city, so every demo shows the same people.
const DEMO_SEED: u64 = 2021;

pub async fn run(mut config: Config, persons: u64) -> anyhow::Result<()> {
    if !config.mesh.enabled() {
        let dir = config.data_dir.join("mesh");
        demo_mesh(&dir)?;
        config.mesh.ca = dir.join("ca.pem");
        config.mesh.cert = dir.join("all.pem");
        config.mesh.key = dir.join("all.key");
    }
    if !config.console.enabled() {
        let dir = config.data_dir.join("console");
        demo_console_certificate(&dir)?;
        config.console.tls_cert = dir.join("console.pem");
        config.console.tls_key = dir.join("console.key");
        config.console.client_ca = dir.join("operators/ca.pem");
    }
    let household_dir = config.store_dir(Role::Household);
    if !household_dir.join("CURRENT").exists() {
        crate::say::info(&format!(
            "popbase demo: generating a {persons}-person city (Zibo, seed {DEMO_SEED}) in {}",
            config.data_dir.display()
        ));
        let generation_config = config.clone();
        tokio::task::spawn_blocking(move || {
            crate::generate::run(&generation_config, "3703", persons, DEMO_SEED, crate::generate::EventsYear::Run)
        })
        .await??;
    } else {
        crate::say::info(&format!("popbase demo: using the city already in {}", config.data_dir.display()));
    }
    let data = config.data_dir.display().to_string();
    let mesh = config.data_dir.join("mesh").display().to_string();
    // The commands as printed must work: the binary that is running, not a
    // `popbase` that may not be on PATH.
    let popbase = std::env::current_exe().map_or_else(|_| "popbase".to_string(), |p| p.display().to_string());
    let banner = move |bound: &crate::serve::Bound| {
        let addr = |role| bound.of(role).map_or_else(|| "?".to_string(), |a| a.to_string());
        let (gateway, household, metrics) = (addr(Role::Gateway), addr(Role::Household), bound.metrics);
        let console = bound.console.map_or_else(|| "?".to_string(), |a| a.to_string());
        crate::say::info(&format!(
            "\npopbase demo: every role is serving. The gateway runs in token mode without TLS\n\
             (demo only; production uses mTLS, see docs/operations.md); the internal ports\n\
             take only certificates of the demo's mesh ({mesh}). Try, from the repository:\n\
             \x20 {popbase} token --data {data} --department education      # a signed department token\n\
             \x20 examples/python/run.sh --gateway {gateway} --data {data}\n\
             \x20 examples/python/run.sh --example feed --gateway {gateway} --data {data}\n\
             \x20 POPBASE_MESH_CA={mesh}/ca.pem POPBASE_MESH_CERT={mesh}/backup.pem POPBASE_MESH_KEY={mesh}/backup.key \\\n\
             \x20   {popbase} stats --target http://{household}\n\
             \x20 curl http://{metrics}/metrics\n\
             The console (HTTPS; its CA is {data}/console/ca.pem): https://{console}/\n\
             \x20 operators sign in with: {popbase} token --data {data} --department audit\n\
             \x20 a resident with:        {popbase} token --data {data} --resident <their ID number>\n\
             Stop with Ctrl-C.\n"
        ));
    };
    crate::serve::run_with(config, Role::All, Box::new(banner)).await
}
