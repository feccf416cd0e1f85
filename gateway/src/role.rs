//! What the `gateway` role serves, and how it is put together from config:
//! catalogue, keys, TLS, the consent store and the audit writer.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};
use popbase_domain::Pseudonymizer;
use thiserror::Error;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::auth::{AuthMode, Authenticator};
use crate::catalogue::{Catalogue, CatalogueError};
use crate::gate::Gate;
use crate::grpc::{
    audit::AuditService, catalogue::CatalogueService, consents::ConsentService, departments::DepartmentServices,
    enrollment::EnrollmentService, export::ExportService, ledger::LedgerService, malformed::charged, operations::OperationsService,
    subscriptions::SubscriptionService, writes::WriteServices,
};
use crate::ledger::{Ledger, LocalLedger};
use crate::live_catalogue::{self, LiveCatalogue};
use crate::sources::Sources;

/// Bytes of a generated key.
const KEY_BYTES: usize = 32;

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error("key file {path}: {source}")]
    Key { path: PathBuf, source: std::io::Error },
    #[error("TLS file {path}: {source}")]
    Tls { path: PathBuf, source: std::io::Error },
    #[error("gateway config: {0}")]
    Config(String),
    #[error(transparent)]
    Storage(#[from] popbase_storage::StorageError),
}

/// The key in `path`, created (random, hex, mode 0600) when missing.
pub fn read_or_create_key(path: &Path) -> Result<Vec<u8>, GatewayError> {
    let err = |source| GatewayError::Key {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 16 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "key shorter than 16 characters",
            )));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        Err(_) => {}
    }
    let mut random = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(err)?;
    let text = hex::encode(random);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
    }
    tracing::info!(path = %path.display(), "generated a gateway key");
    Ok(text.into_bytes())
}

fn read_pem(path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|source| GatewayError::Tls {
        path: path.to_path_buf(),
        source,
    })
}

fn tls(config: &Config, mode: AuthMode) -> Result<Option<ServerTlsConfig>, GatewayError> {
    let g = &config.gateway;
    if g.tls_cert.as_os_str().is_empty() {
        return Ok(None);
    }
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read_pem(&g.tls_cert)?, read_pem(&g.tls_key)?));
    if mode != AuthMode::Token {
        tls = tls.client_ca_root(Certificate::from_pem(read_pem(&g.client_ca)?));
    }
    if mode == AuthMode::Both {
        tls = tls.client_auth_optional(true);
    }
    Ok(Some(tls))
}

/// The gate and the gateway's gRPC services over `ledger` (consents and
/// audit trail, in this process or the `ledger` role) and `sources` (the
/// services it fetches from). The gateway itself keeps no state on disk
/// beyond its keys, so replicas scale out.
pub fn build(config: &Config, ledger: Arc<dyn Ledger>, sources: Sources) -> Result<(Arc<Gate>, RoleServices), GatewayError> {
    let mode: AuthMode = config.gateway.auth.parse().map_err(GatewayError::Config)?;
    let (catalogue, text) = Catalogue::load_with_text(&config.gateway.catalogue)?;
    let catalogue = Arc::new(LiveCatalogue::new(catalogue, text));
    let token_key = read_or_create_key(&config.token_key_path())?;
    let pseudonyms = Pseudonymizer::new(read_or_create_key(&config.pseudonym_key_path())?);
    let auth = Authenticator::new(mode, token_key, config.gateway.max_token_hours, catalogue.clone())
        .with_token_departments(config.gateway.token_departments.clone());
    let gate = Arc::new(Gate::new(catalogue, auth, ledger, pseudonyms, &config.limits));
    // Tell the ledger this replica is alive, so the per-second rates are
    // shared among the replicas there are.
    tokio::spawn(quota_heartbeat(gate.clone()));
    // And follow the catalogue applied through SharingCatalogue.
    tokio::spawn(live_catalogue::follow(gate.clone()));
    let mut services = RoleServices::new(Role::Gateway);
    services.tls = tls(config, mode)?;
    let departments = DepartmentServices::new(gate.clone(), sources.clone(), &config.limits);
    let writes = WriteServices::new(gate.clone(), sources.clone());
    // Each service charged for the calls whose bodies do not decode.
    services
        .add(charged(&gate, EnrollmentService::new(gate.clone(), sources.clone()).server()))
        .add(charged(&gate, departments.insurance()))
        .add(charged(&gate, departments.locality()))
        .add(charged(&gate, departments.persons()))
        .add(charged(&gate, writes.events()))
        .add(charged(&gate, writes.feeds()))
        .add(charged(&gate, writes.residence()))
        .add(charged(
            &gate,
            ExportService::new(gate.clone(), sources.clone(), config.limits.stream_idle()).server(),
        ))
        .add(charged(
            &gate,
            SubscriptionService::new(
                gate.clone(),
                sources.changes.clone(),
                config.gateway.subscription_retention_days,
                config.limits.max_subscription_streams,
            )
            .server(),
        ))
        .add(charged(&gate, OperationsService::new(gate.clone(), sources.clone()).server()))
        .add(charged(&gate, ConsentService::new(gate.clone(), sources).server()))
        .add(charged(&gate, AuditService::new(gate.clone()).server()))
        .add(charged(&gate, CatalogueService::new(gate.clone()).server()));
    Ok((gate, services))
}

/// What the `ledger` role serves over its open store: the ledger to
/// gateway replicas, and Ops (backups, store figures) to operators. An
/// internal port: departments never reach it.
pub fn ledger_services(ledger: &LocalLedger, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Ledger);
    services.add(LedgerService::new(ledger.clone()).server());
    let audit = ledger.audit.clone();
    let head: popbase_common::ops::HeadSource = std::sync::Arc::new(move || {
        let head = audit.head();
        Ok(popbase_common::backup_set::HeadEntry {
            seq: head.seq,
            hash_hex: hex::encode(&head.hash),
        })
    });
    services.add(
        OpsService::new(Role::Ledger, vec![ledger.store().clone()], config)
            .with_audit_head(head)
            .into_server(),
    );
    services
}

/// Every [`crate::quota::HEARTBEAT`], a zero-unit quota call: the ledger
/// counts this replica and answers how many there are. A failure is logged
/// and the last count kept.
async fn quota_heartbeat(gate: Arc<Gate>) {
    let mut tick = tokio::time::interval(crate::quota::HEARTBEAT);
    loop {
        tick.tick().await;
        let day = crate::audit::log::yyyymmdd(popbase_domain::clock::today());
        // A heartbeat is no request: its call to the ledger leaves no trace.
        let heartbeat = gate.ledger.take_quota("", day, 0, 0, gate.quotas.replica());
        match tracing::Instrument::instrument(heartbeat, popbase_common::propagation::unsampled_span("quota.heartbeat")).await {
            Ok(granted) => gate.quotas.heard(granted),
            Err(e) => tracing::warn!(error = %e, "the quota heartbeat to the ledger failed"),
        }
    }
}
