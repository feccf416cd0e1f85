//! What every load-test command drives: the gateway, the household service
//! for the set-up read of real ID numbers (over the mesh with split roles),
//! and the departments' tokens; and how it writes its report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

#[derive(clap::Args)]
pub struct Target {
    #[arg(long)]
    pub gateway: String,
    /// The household service (to find real ID numbers for the scenarios).
    #[arg(long)]
    pub household: String,
    /// With split roles in the mesh: the internal CA and a certificate the
    /// household role lets list persons (the gateway's), as PEM files; the
    /// set-up read is the only call that goes around the gateway.
    #[arg(long, requires_all = ["mesh_cert", "mesh_key"])]
    mesh_ca: Option<PathBuf>,
    #[arg(long)]
    mesh_cert: Option<PathBuf>,
    #[arg(long)]
    mesh_key: Option<PathBuf>,
    /// `department=token`, repeated. `run`: hrss and service_platform
    /// (person), education (intake), medical_insurance (uninsured), big_data
    /// (export); `subscribers`: medical_insurance, hrss, public_security, audit.
    #[arg(long = "token", value_parser = parse_token)]
    tokens: Vec<(String, String)>,
}

impl Target {
    /// The token given for `department`.
    pub fn token(&self, department: &str) -> anyhow::Result<String> {
        let tokens: HashMap<&str, &str> = self.tokens.iter().map(|(d, t)| (d.as_str(), t.as_str())).collect();
        tokens
            .get(department)
            .map(|t| t.to_string())
            .with_context(|| format!("--token {department}=… is needed"))
    }

    /// A channel to the household service, over the mesh when given its certificates.
    pub async fn household(&self) -> anyhow::Result<Channel> {
        match (&self.mesh_ca, &self.mesh_cert, &self.mesh_key) {
            (Some(ca), Some(cert), Some(key)) => connect_mesh(&self.household, ca, cert, key).await,
            _ => connect(&self.household).await,
        }
    }
}

fn parse_token(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(d, t)| (d.to_string(), t.trim().to_string()))
        .ok_or_else(|| "expected department=token".to_string())
}

/// Largest HTTP/2 frame the gateway may send us: an export's record
/// batches are about a megabyte each, and at HTTP/2's default of 16 KiB
/// each one arrived as some seventy frames.
const FRAME_BYTES: u32 = 1 << 20;

pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(url.to_string())
        .context("address")?
        .tcp_nodelay(true)
        .max_frame_size(FRAME_BYTES)
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// A mutual-TLS channel to an internal role (`http://` is dialled as `https://`).
async fn connect_mesh(url: &str, ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<Channel> {
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .identity(Identity::from_pem(read(cert)?, read(key)?));
    let url = url.replacen("http://", "https://", 1);
    Channel::from_shared(url.clone())
        .context("address")?
        .tls_config(tls)
        .context("TLS")?
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Prints the report's Markdown table and, given `out`, writes the report
/// as JSON there and the table beside it (`.md`).
pub fn emit(report: &impl Serialize, markdown: &str, out: Option<&Path>) -> anyhow::Result<()> {
    print!("{markdown}");
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_string_pretty(report)?).with_context(|| format!("{}", path.display()))?;
        std::fs::write(path.with_extension("md"), markdown)?;
    }
    Ok(())
}
