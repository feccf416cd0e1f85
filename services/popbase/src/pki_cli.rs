//! `popbase pki`: a development internal CA and mesh certificates as PEM
//! files, so a split-role cluster on one machine (and the tests) can run
//! with mutual TLS on. Production issues the same shapes with cert-manager
//! (`k8s/overlays/prod/mesh-certificates.yaml`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use popbase_common::mesh::MeshIdentity;
use popbase_common::mesh::pki::{self, Pki};

#[derive(Args, Debug)]
pub struct PkiArgs {
    /// Folder of the CA (`ca.pem`, `ca.key`, created when missing) and the issued pairs.
    #[arg(long)]
    pub dir: PathBuf,
    /// household, residence, feeds, ledger, gateway, backup or all (an all-in-one process).
    #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
    pub identity: Option<String>,
    /// Instead: a console operator's client certificate for this person
    /// (1-32 of a-z, 0-9, -), of --department; the folder's CA is then the
    /// operators' CA (`console.client_ca`), never the mesh's.
    #[arg(long, requires = "department")]
    pub operator: Option<String>,
    /// The operator's department: audit or big_data.
    #[arg(long)]
    pub department: Option<String>,
    /// Host names or IP addresses other roles reach this one at (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

/// The folder's CA, created on first use.
fn ca(dir: &Path) -> anyhow::Result<Pki> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    if cert.exists() {
        let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
        return Pki::from_pem(&read(&cert)?, &read(&key)?).with_context(|| format!("the CA in {}", dir.display()));
    }
    let pki = Pki::create_in(dir, "popbase mesh CA (development)").with_context(|| format!("creating the CA in {}", dir.display()))?;
    crate::say::info(&format!("popbase pki: created the internal CA in {}", dir.display()));
    Ok(pki)
}

/// An operator's certificate: subject CN `<person>.<department>.operators.popbase`.
fn operator(args: &PkiArgs, person: &str) -> anyhow::Result<()> {
    let department = args.department.as_deref().unwrap_or("");
    if person.is_empty() || person.len() > 32 || !person.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        anyhow::bail!("--operator must be 1-32 of a-z, 0-9 and -");
    }
    if !popbase_console::OPERATORS.iter().any(|(d, _)| *d == department) {
        anyhow::bail!("--department must be audit or big_data (the operator departments)");
    }
    let pki = ca(&args.dir)?;
    let name = format!("{person}.{department}");
    let issued = pki
        .issue_named(&format!("{name}.operators.popbase"), &[])
        .context("issuing the certificate")?;
    pki::write_pair(&args.dir, &name, &issued.cert_pem, &issued.key_pem)?;
    println!("{}", args.dir.join(format!("{name}.pem")).display());
    Ok(())
}

pub fn run(args: &PkiArgs) -> anyhow::Result<()> {
    if let Some(person) = &args.operator {
        return operator(args, person);
    }
    let name = args.identity.as_deref().unwrap_or("");
    let identity = MeshIdentity::from_name(name).with_context(|| {
        let names: Vec<&str> = MeshIdentity::ALL.iter().map(|i| i.name()).collect();
        format!("--identity must be one of {}", names.join(", "))
    })?;
    let pki = ca(&args.dir)?;
    let hosts: Vec<&str> = args.hosts.iter().map(String::as_str).collect();
    let issued = pki.issue(identity, &hosts).context("issuing the certificate")?;
    pki::write_pair(&args.dir, identity.name(), &issued.cert_pem, &issued.key_pem)?;
    println!("{}", args.dir.join(format!("{}.pem", identity.name())).display());
    Ok(())
}
