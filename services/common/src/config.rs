//! Configuration: defaults, then a TOML file, then `POPBASE_*` environment
//! variables, then command-line flags (applied by the binary), each layer
//! overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use thiserror::Error;

/// The roles one `popbase` binary can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Every role in one process (the default, and the demo).
    All,
    Household,
    Residence,
    Feeds,
    /// The gateway's state: consents and the audit trail (so gateway
    /// replicas hold none).
    Ledger,
    Gateway,
    /// The operator console and the resident page (HTTPS), a client of the
    /// gateway's department port. Not one of [`Role::SINGLE`]: an all-in-one
    /// process serves it too only when `console.tls_cert` is set.
    Console,
}

impl Role {
    /// The single roles, in start-up order: each after the roles it calls in
    /// process (residence reads the feeds; the gateway calls everyone).
    pub const SINGLE: [Role; 5] = [Role::Household, Role::Feeds, Role::Residence, Role::Ledger, Role::Gateway];

    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Household => "household",
            Role::Residence => "residence",
            Role::Feeds => "feeds",
            Role::Ledger => "ledger",
            Role::Gateway => "gateway",
            Role::Console => "console",
        }
    }

    /// The single roles this role stands for.
    pub fn expand(self) -> Vec<Role> {
        match self {
            Role::All => Role::SINGLE.to_vec(),
            // No gRPC port: the console's HTTPS port is served apart.
            Role::Console => Vec::new(),
            single => vec![single],
        }
    }
}

impl FromStr for Role {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "all" => Role::All,
            "household" => Role::Household,
            "residence" => Role::Residence,
            "feeds" => Role::Feeds,
            "ledger" => Role::Ledger,
            "gateway" => Role::Gateway,
            "console" => Role::Console,
            other => {
                return Err(ConfigError::Invalid {
                    key: "role".into(),
                    reason: format!("'{other}' is not one of all, household, residence, feeds, ledger, gateway, console"),
                });
            }
        })
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {key}: {reason}")]
    Invalid { key: String, reason: String },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Root of the stores: `<data_dir>/<role>/` per storage-owning role.
    pub data_dir: PathBuf,
    /// Where `CreateBackup` keeps its BackupEngine directories and set
    /// manifests: a volume other than the data's (losing the data volume
    /// must not lose the backups); `<data_dir>/backups` when empty, which
    /// suits a demo only.
    pub backup_dir: PathBuf,
    /// Extra settlement policies (`*.toml`) that replace or add to the four
    /// shipped ones by id; empty: the shipped ones only.
    pub policy_dir: PathBuf,
    /// The city's time zone: every day the platform reasons about (consent
    /// validity, quota days, ages, permits, statistics) is a day of it.
    /// See `popbase_domain::clock`.
    pub city_time_zone: String,
    pub listen: Listen,
    pub upstream: Upstream,
    pub storage: StorageConfig,
    pub telemetry: TelemetryConfig,
    pub gateway: GatewayConfig,
    pub mesh: MeshConfig,
    pub limits: crate::limits::LimitsConfig,
    pub console: ConsoleConfig,
}

/// The internal mesh: mutual TLS between roles (see [`crate::mesh`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MeshConfig {
    /// PEM of the internal CA, the only one internal ports and clients trust.
    pub ca: PathBuf,
    /// This process's certificate (subject CN `<role>.roles.popbase`) and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Serve a split internal role without mesh certificates: plaintext and
    /// unauthenticated, for a throw-away development cluster only. Without
    /// it, `serve --role household|residence|feeds|ledger|gateway` refuses
    /// to start with no certificate.
    pub plaintext: bool,
}

impl MeshConfig {
    /// Whether this process has a mesh certificate.
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let set = [&self.ca, &self.cert, &self.key].map(|p| !p.as_os_str().is_empty());
        if set.iter().any(|s| *s) && !set.iter().all(|s| *s) {
            return Err(ConfigError::Invalid {
                key: "mesh".into(),
                reason: "ca, cert and key go together".into(),
            });
        }
        if self.plaintext && self.enabled() {
            return Err(ConfigError::Invalid {
                key: "mesh.plaintext".into(),
                reason: "set together with mesh certificates; choose one".into(),
            });
        }
        Ok(())
    }
}

/// The gateway's identity checks, keys, catalogue and audit head.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// `mtls` (client certificates), `token` (signed tokens) or `both`.
    pub auth: String,
    /// PEM server certificate and key; both empty: plaintext (demo only).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// PEM CA that signs department client certificates (needed for mtls/both).
    pub client_ca: PathBuf,
    /// Secret for signing tokens; empty: `<data_dir>/gateway-keys/token.key`, created on first start.
    pub token_key_file: PathBuf,
    /// Secret for subject pseudonyms; empty: `<data_dir>/gateway-keys/pseudonym.key`.
    pub pseudonym_key_file: PathBuf,
    /// Sharing catalogue TOML; empty: the shipped one.
    pub catalogue: PathBuf,
    /// Where the audit chain head is appended; empty: `<data_dir>/audit-head.log`.
    pub audit_head_file: PathBuf,
    /// A second head file on a volume the ledger's store is not on (in
    /// Kubernetes, its own volume); empty: none.
    pub audit_head_mirror: PathBuf,
    /// The ledger's Ed25519 key signing each head (PKCS#8, created on
    /// first start); empty: `<data_dir>/ledger-keys/audit-head.pk8`.
    pub audit_head_key_file: PathBuf,
    pub audit_head_interval_secs: u64,
    /// In `both` mode, the departments whose tokens are accepted (the
    /// console's: `audit`, `big_data`, `service_platform`); every other
    /// department must present its certificate. Empty: any department's.
    pub token_departments: Vec<String>,
    /// The longest a token may be issued for (`popbase token --hours`); a
    /// longer one is refused (`TOKEN_TOO_LONG`), whatever its expiry says.
    pub max_token_hours: u32,
    /// How long a change-notification subscription's position is kept
    /// without an acknowledgement; after that its Subscribe is refused
    /// (FAILED_PRECONDITION: re-snapshot with the export's `since_seq`).
    pub subscription_retention_days: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            auth: "token".into(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            client_ca: PathBuf::new(),
            token_key_file: PathBuf::new(),
            pseudonym_key_file: PathBuf::new(),
            catalogue: PathBuf::new(),
            audit_head_file: PathBuf::new(),
            audit_head_mirror: PathBuf::new(),
            audit_head_key_file: PathBuf::new(),
            audit_head_interval_secs: 10,
            token_departments: Vec::new(),
            max_token_hours: 24,
            subscription_retention_days: 7,
        }
    }
}

impl GatewayConfig {
    fn or_in(path: &Path, data_dir: &Path, default: &str) -> PathBuf {
        if path.as_os_str().is_empty() {
            data_dir.join(default)
        } else {
            path.to_path_buf()
        }
    }
}

impl Config {
    pub fn token_key_path(&self) -> PathBuf {
        GatewayConfig::or_in(&self.gateway.token_key_file, &self.data_dir, "gateway-keys/token.key")
    }

    pub fn pseudonym_key_path(&self) -> PathBuf {
        GatewayConfig::or_in(&self.gateway.pseudonym_key_file, &self.data_dir, "gateway-keys/pseudonym.key")
    }

    pub fn audit_head_path(&self) -> PathBuf {
        GatewayConfig::or_in(&self.gateway.audit_head_file, &self.data_dir, "audit-head.log")
    }

    /// Where heads are written: the head file, and its mirror if configured.
    pub fn audit_head_sinks(&self) -> Vec<PathBuf> {
        std::iter::once(self.audit_head_path())
            .chain((!self.gateway.audit_head_mirror.as_os_str().is_empty()).then(|| self.gateway.audit_head_mirror.clone()))
            .collect()
    }

    pub fn audit_head_key_path(&self) -> PathBuf {
        GatewayConfig::or_in(&self.gateway.audit_head_key_file, &self.data_dir, "ledger-keys/audit-head.pk8")
    }
}

/// The console role: its HTTPS certificate, and the gateway it calls.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// PEM certificate and key of the console's HTTPS port; empty: no
    /// console (it never serves plaintext).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The gateway's department port the console calls (`https://...` or,
    /// on loopback only, `http://...`); empty: this process's own gateway.
    pub gateway: String,
    /// PEM CA of the gateway's TLS certificate (for an `https` gateway).
    pub gateway_ca: PathBuf,
    /// PEM CA of operators' client certificates (subject CN
    /// `<person>.<department>.operators.popbase`); empty: operators sign in
    /// with tokens only.
    pub client_ca: PathBuf,
}

impl ConsoleConfig {
    pub fn enabled(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}

/// Listen address of each role.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    pub household: SocketAddr,
    pub residence: SocketAddr,
    pub feeds: SocketAddr,
    pub gateway: SocketAddr,
    /// The ledger (consents and audit trail for the gateway, Ops for
    /// backups). Internal: never the department-facing port, since
    /// departments must not trigger checkpoints; in Kubernetes only gateway
    /// pods and the backup job reach it.
    pub ledger: SocketAddr,
    /// Prometheus `GET /metrics` for the whole process.
    pub metrics: SocketAddr,
    /// Plaintext `grpc.health.v1` for the kubelet's probes, reporting on
    /// every role of this process and serving nothing else; unset: none
    /// (each role's own port still serves health, behind its TLS).
    pub health: Option<SocketAddr>,
    /// The console's HTTPS port (served when `console.tls_cert` is set).
    pub console: SocketAddr,
}

/// Where the gateway finds the services when they run in other processes.
/// In all-in-one mode the bound listen addresses are used instead.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    pub household: String,
    pub residence: String,
    pub feeds: String,
    /// The ledger, for a gateway that does not run it in-process.
    pub ledger: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// fsync the WAL before acknowledging a write (acknowledged = durable).
    pub sync_writes: bool,
    pub block_cache_mb: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` for people, `json` for log collectors.
    pub log_format: String,
    /// `tracing` filter directives, e.g. `info,popbase=debug`.
    pub log_filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("popbase-data"),
            backup_dir: PathBuf::new(),
            policy_dir: PathBuf::new(),
            city_time_zone: popbase_domain::clock::DEFAULT_TIME_ZONE.into(),
            listen: Listen::default(),
            upstream: Upstream::default(),
            storage: StorageConfig::default(),
            telemetry: TelemetryConfig::default(),
            gateway: GatewayConfig::default(),
            mesh: MeshConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            household: local(50061),
            residence: local(50062),
            feeds: local(50063),
            gateway: local(50051),
            ledger: local(50064),
            metrics: local(9090),
            health: None,
            console: local(8443),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            sync_writes: true,
            block_cache_mb: 256,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: "text".into(),
            log_filter: "info".into(),
        }
    }
}

impl Config {
    /// Defaults overlaid with `path` (when given) and then the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Applies `POPBASE_*` variables read through `env`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("POPBASE_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("POPBASE_BACKUP_DIR") {
            self.backup_dir = v.into();
        }
        if let Some(v) = env("POPBASE_POLICY_DIR") {
            self.policy_dir = v.into();
        }
        if let Some(v) = env("POPBASE_CITY_TIME_ZONE") {
            self.city_time_zone = v;
        }
        let listen = [
            ("POPBASE_LISTEN_HOUSEHOLD", &mut self.listen.household),
            ("POPBASE_LISTEN_RESIDENCE", &mut self.listen.residence),
            ("POPBASE_LISTEN_FEEDS", &mut self.listen.feeds),
            ("POPBASE_LISTEN_GATEWAY", &mut self.listen.gateway),
            ("POPBASE_LISTEN_LEDGER", &mut self.listen.ledger),
            ("POPBASE_LISTEN_METRICS", &mut self.listen.metrics),
        ];
        for (key, slot) in listen {
            if let Some(v) = env(key) {
                *slot = parse_addr(key, &v)?;
            }
        }
        let upstream = [
            ("POPBASE_UPSTREAM_HOUSEHOLD", &mut self.upstream.household),
            ("POPBASE_UPSTREAM_RESIDENCE", &mut self.upstream.residence),
            ("POPBASE_UPSTREAM_FEEDS", &mut self.upstream.feeds),
            ("POPBASE_UPSTREAM_LEDGER", &mut self.upstream.ledger),
        ];
        for (key, slot) in upstream {
            if let Some(v) = env(key) {
                *slot = v;
            }
        }
        if let Some(v) = env("POPBASE_LISTEN_CONSOLE") {
            self.listen.console = parse_addr("POPBASE_LISTEN_CONSOLE", &v)?;
        }
        let console_paths = [
            ("POPBASE_CONSOLE_TLS_CERT", &mut self.console.tls_cert),
            ("POPBASE_CONSOLE_TLS_KEY", &mut self.console.tls_key),
            ("POPBASE_CONSOLE_GATEWAY_CA", &mut self.console.gateway_ca),
            ("POPBASE_CONSOLE_CLIENT_CA", &mut self.console.client_ca),
        ];
        for (key, slot) in console_paths {
            if let Some(v) = env(key) {
                *slot = v.into();
            }
        }
        if let Some(v) = env("POPBASE_CONSOLE_GATEWAY") {
            self.console.gateway = v;
        }
        if let Some(v) = env("POPBASE_LISTEN_HEALTH") {
            self.listen.health = Some(parse_addr("POPBASE_LISTEN_HEALTH", &v)?);
        }
        let mesh_paths = [
            ("POPBASE_MESH_CA", &mut self.mesh.ca),
            ("POPBASE_MESH_CERT", &mut self.mesh.cert),
            ("POPBASE_MESH_KEY", &mut self.mesh.key),
        ];
        for (key, slot) in mesh_paths {
            if let Some(v) = env(key) {
                *slot = v.into();
            }
        }
        if let Some(v) = env("POPBASE_MESH_PLAINTEXT") {
            self.mesh.plaintext = parse_bool("POPBASE_MESH_PLAINTEXT", &v)?;
        }
        if let Some(v) = env("POPBASE_SYNC_WRITES") {
            self.storage.sync_writes = parse_bool("POPBASE_SYNC_WRITES", &v)?;
        }
        if let Some(v) = env("POPBASE_LOG_FORMAT") {
            self.telemetry.log_format = v;
        }
        if let Some(v) = env("POPBASE_LOG") {
            self.telemetry.log_filter = v;
        }
        let gateway_paths = [
            ("POPBASE_GATEWAY_TLS_CERT", &mut self.gateway.tls_cert),
            ("POPBASE_GATEWAY_TLS_KEY", &mut self.gateway.tls_key),
            ("POPBASE_GATEWAY_CLIENT_CA", &mut self.gateway.client_ca),
            ("POPBASE_GATEWAY_TOKEN_KEY_FILE", &mut self.gateway.token_key_file),
            ("POPBASE_GATEWAY_PSEUDONYM_KEY_FILE", &mut self.gateway.pseudonym_key_file),
            ("POPBASE_GATEWAY_CATALOGUE", &mut self.gateway.catalogue),
            ("POPBASE_GATEWAY_AUDIT_HEAD_FILE", &mut self.gateway.audit_head_file),
            ("POPBASE_GATEWAY_AUDIT_HEAD_MIRROR", &mut self.gateway.audit_head_mirror),
            ("POPBASE_GATEWAY_AUDIT_HEAD_KEY_FILE", &mut self.gateway.audit_head_key_file),
        ];
        for (key, slot) in gateway_paths {
            if let Some(v) = env(key) {
                *slot = v.into();
            }
        }
        if let Some(v) = env("POPBASE_GATEWAY_MAX_TOKEN_HOURS") {
            self.gateway.max_token_hours = v.parse().map_err(|_| ConfigError::Invalid {
                key: "POPBASE_GATEWAY_MAX_TOKEN_HOURS".into(),
                reason: format!("'{v}' is not a whole number of hours"),
            })?;
        }
        if let Some(v) = env("POPBASE_GATEWAY_SUBSCRIPTION_RETENTION_DAYS") {
            self.gateway.subscription_retention_days = v.parse().map_err(|_| ConfigError::Invalid {
                key: "POPBASE_GATEWAY_SUBSCRIPTION_RETENTION_DAYS".into(),
                reason: format!("'{v}' is not a whole number of days"),
            })?;
        }
        self.limits.apply_env(&env).map_err(|reason| ConfigError::Invalid {
            key: "limits".into(),
            reason,
        })?;
        if let Some(v) = env("POPBASE_GATEWAY_TOKEN_DEPARTMENTS") {
            self.gateway.token_departments = v.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
        }
        if let Some(v) = env("POPBASE_GATEWAY_AUTH") {
            self.gateway.auth = v;
        }
        self.validate()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        popbase_domain::clock::parse_zone(&self.city_time_zone).map_err(|e| ConfigError::Invalid {
            key: "city_time_zone".into(),
            reason: e.to_string(),
        })?;
        self.limits.validate().map_err(|reason| ConfigError::Invalid {
            key: "limits".into(),
            reason,
        })?;
        if !matches!(self.telemetry.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid {
                key: "telemetry.log_format".into(),
                reason: format!("'{}' is not text or json", self.telemetry.log_format),
            });
        }
        if !matches!(self.gateway.auth.as_str(), "mtls" | "token" | "both") {
            return Err(ConfigError::Invalid {
                key: "gateway.auth".into(),
                reason: format!("'{}' is not one of mtls, token, both", self.gateway.auth),
            });
        }
        if self.gateway.tls_cert.as_os_str().is_empty() != self.gateway.tls_key.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "gateway.tls_cert".into(),
                reason: "tls_cert and tls_key go together".into(),
            });
        }
        if self.gateway.auth != "token" && self.gateway.client_ca.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "gateway.client_ca".into(),
                reason: format!("auth = {} needs the department CA", self.gateway.auth),
            });
        }
        if self.gateway.auth != "token" && self.gateway.tls_cert.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "gateway.tls_cert".into(),
                reason: format!("auth = {} needs a server certificate", self.gateway.auth),
            });
        }
        self.mesh.validate()?;
        if !(1..=365).contains(&self.gateway.subscription_retention_days) {
            return Err(ConfigError::Invalid {
                key: "gateway.subscription_retention_days".into(),
                reason: "must be 1 to 365".into(),
            });
        }
        if !(1..=8760).contains(&self.gateway.max_token_hours) {
            return Err(ConfigError::Invalid {
                key: "gateway.max_token_hours".into(),
                reason: "must be 1 to 8760 (a year)".into(),
            });
        }
        if self.gateway.audit_head_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "gateway.audit_head_interval_secs".into(),
                reason: "must be at least 1".into(),
            });
        }
        if self.storage.block_cache_mb == 0 {
            return Err(ConfigError::Invalid {
                key: "storage.block_cache_mb".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    pub fn listen_addr(&self, role: Role) -> SocketAddr {
        match role {
            Role::Household | Role::All => self.listen.household,
            Role::Residence => self.listen.residence,
            Role::Feeds => self.listen.feeds,
            Role::Ledger => self.listen.ledger,
            Role::Gateway => self.listen.gateway,
            Role::Console => self.listen.console,
        }
    }

    pub fn set_listen_addr(&mut self, role: Role, addr: SocketAddr) {
        match role {
            Role::Household | Role::All => self.listen.household = addr,
            Role::Residence => self.listen.residence = addr,
            Role::Feeds => self.listen.feeds = addr,
            Role::Ledger => self.listen.ledger = addr,
            Role::Gateway => self.listen.gateway = addr,
            Role::Console => self.listen.console = addr,
        }
    }

    /// The store directory of a storage-owning role.
    pub fn store_dir(&self, role: Role) -> PathBuf {
        self.data_dir.join(role.name())
    }

    /// Where `CreateCheckpoint` writes: on the data volume, since a
    /// checkpoint hard-links the store's files.
    pub fn checkpoint_root(&self) -> PathBuf {
        self.data_dir.join("checkpoints")
    }

    pub fn backup_root(&self) -> PathBuf {
        if self.backup_dir.as_os_str().is_empty() {
            self.data_dir.join("backups")
        } else {
            self.backup_dir.clone()
        }
    }

    pub fn store_options(&self) -> popbase_storage::StoreOptions {
        popbase_storage::StoreOptions {
            durability: if self.storage.sync_writes {
                popbase_storage::Durability::Sync
            } else {
                popbase_storage::Durability::Buffered
            },
            block_cache_bytes: self.storage.block_cache_mb << 20,
            ..Default::default()
        }
    }
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        key: key.into(),
        reason: format!("'{value}' is not a socket address like 127.0.0.1:50051"),
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::Invalid {
            key: key.into(),
            reason: format!("'{other}' is not a boolean"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_then_env_override_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("popbase.toml");
        std::fs::write(
            &path,
            "data_dir = \"/var/lib/popbase\"\n[listen]\ngateway = \"0.0.0.0:6000\"\n[storage]\nsync_writes = false\n",
        )
        .expect("write");
        let mut config = Config::from_file(&path).expect("parse");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/popbase"));
        assert_eq!(config.listen.gateway, "0.0.0.0:6000".parse().expect("addr"));
        assert_eq!(config.listen.household, Listen::default().household, "unset keys keep defaults");
        assert!(!config.storage.sync_writes);

        let env: HashMap<&str, &str> = [("POPBASE_SYNC_WRITES", "true"), ("POPBASE_LISTEN_GATEWAY", "127.0.0.1:7000")].into();
        config.apply_env(|k| env.get(k).map(|v| v.to_string())).expect("env");
        assert!(config.storage.sync_writes);
        assert_eq!(config.listen.gateway, "127.0.0.1:7000".parse().expect("addr"));
        assert_eq!(config.store_dir(Role::Feeds), PathBuf::from("/var/lib/popbase/feeds"));
        assert_eq!(config.backup_root(), PathBuf::from("/var/lib/popbase/backups"));
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "data_dirr = \"x\"\n").expect("write");
        assert!(matches!(Config::from_file(&path), Err(ConfigError::Parse { .. })));
        let mut config = Config::default();
        let err = config.apply_env(|k| (k == "POPBASE_LISTEN_FEEDS").then(|| "nonsense".to_string()));
        assert!(matches!(err, Err(ConfigError::Invalid { key, .. }) if key == "POPBASE_LISTEN_FEEDS"));
        let mut config = Config::default();
        assert_eq!(config.city_time_zone, "Asia/Shanghai", "the city's days by default");
        let err = config.apply_env(|k| (k == "POPBASE_CITY_TIME_ZONE").then(|| "Europe/Paris".to_string()));
        assert!(matches!(err, Err(ConfigError::Invalid { key, .. }) if key == "city_time_zone"));
        assert!("household".parse::<Role>().is_ok());
        assert!("everything".parse::<Role>().is_err());
        assert_eq!(Role::All.expand().len(), 5);
    }
}
