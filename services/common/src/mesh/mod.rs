//! The platform's internal trust boundary ("the mesh"): one internal CA,
//! one certificate per role process, mutual TLS on every internal port and
//! on every call between roles.
//!
//! A role's certificate names it in its subject CN, `<role>.roles.popbase`
//! (see [`MeshIdentity`]). A role's port accepts only clients whose
//! certificate chains to the internal CA (the TLS handshake refuses anyone
//! else, a client without a certificate included), then lets each call
//! through only when [`policy::allowed`] names the caller's identity for the
//! service it calls ([`guard::MeshGuardLayer`]); any other call gets
//! `PERMISSION_DENIED` with reason `ROLE_NOT_ALLOWED`.
//!
//! Departments never hold mesh certificates: their CA is a different one,
//! trusted only by the gateway's department-facing port.
//!
//! An all-in-one process's gateway calls its roles in process (see
//! [`crate::upstream::in_process`]); its settlement follower and feed
//! matching dial its own ports, so with a mesh it presents the `all`
//! identity, which only an all-in-one process admits.

pub mod guard;
pub mod identity;
pub mod pki;
pub mod policy;

use std::path::{Path, PathBuf};

use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

pub use identity::MeshIdentity;

use crate::config::MeshConfig;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum MeshError {
    #[error("mesh file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("mesh certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
}

/// This process's place in the mesh: the internal CA it trusts and the
/// certificate it presents, both as a server and as a client.
#[derive(Clone)]
pub struct Mesh {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    identity: MeshIdentity,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Mesh").field("identity", &self.identity).finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, MeshError> {
    std::fs::read(path).map_err(|source| MeshError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl Mesh {
    /// The mesh of `config`; `None` when no mesh certificate is configured.
    pub fn load(config: &MeshConfig) -> Result<Option<Mesh>, MeshError> {
        if !config.enabled() {
            return Ok(None);
        }
        let cert_pem = read(&config.cert)?;
        let identity = identity::of_pem(&cert_pem).map_err(|reason| MeshError::Certificate {
            path: config.cert.clone(),
            reason,
        })?;
        Ok(Some(Mesh {
            ca_pem: read(&config.ca)?,
            key_pem: read(&config.key)?,
            cert_pem,
            identity,
        }))
    }

    /// Who this process is in the mesh.
    pub fn identity(&self) -> MeshIdentity {
        self.identity
    }

    /// TLS for an internal role's listener: this process's certificate,
    /// and a client certificate from the internal CA required of every caller.
    pub fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// TLS for calls to other roles: the internal CA as the only trust
    /// anchor, and this process's certificate as the client identity.
    pub fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(HANDSHAKE_TIMEOUT)
    }
}
