//! `popbase serve`: open each role's store, bind its listener, serve until
//! SIGTERM, drain, flush.

use anyhow::Context;
use popbase_common::mesh::{Mesh, MeshIdentity};
use popbase_common::metrics::{self, Metrics};
use popbase_common::server::{self, ProcessHealth, RoleServices};
use popbase_common::upstream::{self, Dialer, Upstream};
use popbase_common::{Config, Role, Shutdown};
use popbase_storage::Store;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How often the residence role asks the registry for new settlements.
const SETTLEMENT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// The line printed on stdout for each bound role, for scripts and tests:
/// `popbase serving role=<role> addr=<ip:port>`. `popbase ready` follows once all are up.
pub fn serving_line(role: Role, addr: std::net::SocketAddr) -> String {
    format!("popbase serving role={} addr={addr}", role.name())
}

fn open_store(config: &Config, role: Role, schema: popbase_storage::Schema) -> anyhow::Result<Store> {
    let dir = config.store_dir(role);
    Store::open(&dir, schema, config.store_options()).with_context(|| format!("opening the {} store", role.name()))
}

/// Where this process finds the services it calls: roles it serves itself
/// by their bound address, the others by the configured upstream.
#[derive(Default)]
struct Local {
    household: Option<String>,
    residence: Option<String>,
    feeds: Option<String>,
    /// The ledger this process runs, which its gateway calls directly.
    ledger: Option<popbase_gateway::ledger::LocalLedger>,
    /// Transports straight into the routers of the roles this process runs.
    in_process: std::collections::HashMap<Role, Upstream>,
    /// Handlers of the roles this process runs, which its gateway calls
    /// directly for the fetches of each answer.
    handlers: popbase_gateway::calls::LocalHandlers,
    /// Dataset sources of the roles this process runs, which its gateway
    /// reads batches from without the Flight hop.
    exports: Vec<std::sync::Arc<dyn popbase_export::DatasetSource>>,
    /// How this process calls roles in other processes (mTLS in the mesh).
    dialer: Dialer,
}

impl Local {
    fn household(&self, config: &Config) -> String {
        self.household.clone().unwrap_or_else(|| config.upstream.household.clone())
    }

    fn residence(&self, config: &Config) -> String {
        self.residence.clone().unwrap_or_else(|| config.upstream.residence.clone())
    }

    fn feeds(&self, config: &Config) -> String {
        self.feeds.clone().unwrap_or_else(|| config.upstream.feeds.clone())
    }

    /// How the gateway reaches `role`: in-process when this process runs
    /// it, else over the network to `address`.
    fn upstream(&self, role: Role, address: &str) -> anyhow::Result<Upstream> {
        match self.in_process.get(&role) {
            Some(local) => Ok(local.clone()),
            None => upstream::remote(role.name(), address, &self.dialer).map_err(anyhow::Error::msg),
        }
    }
}

fn role_services(
    config: &Config,
    role: Role,
    stores: &mut Vec<Store>,
    local: &mut Local,
    shutdown: &Shutdown,
    metrics: &std::sync::Arc<Metrics>,
) -> anyhow::Result<RoleServices> {
    Ok(match role {
        Role::Household => {
            let store = open_store(config, role, popbase_household::tables::SCHEMA)?;
            stores.push(store.clone());
            let policies = if config.policy_dir.as_os_str().is_empty() {
                popbase_household::settlement::PolicySet::shipped()
            } else {
                popbase_household::settlement::PolicySet::shipped_and_dir(&config.policy_dir)
            }
            .context("loading settlement policies")?;
            let registry = popbase_household::Registry::new(store);
            local.handlers.registry = Some(std::sync::Arc::new(popbase_household::grpc::RegistryService::new(registry.clone())));
            local
                .exports
                .push(std::sync::Arc::new(popbase_household::export::RegistryExports::new(
                    registry.clone(),
                )));
            // Settlements are decided on the pension, insurance and housing
            // feeds and the residence service's permits, not on declarations.
            let platform = popbase_household::settlement::PlatformSources {
                feeds: popbase_proto::feeds::feeds_client::FeedsClient::new(local.upstream(Role::Feeds, &local.feeds(config))?),
                residence: popbase_proto::residence::residence_permits_client::ResidencePermitsClient::new(
                    local.upstream(Role::Residence, &local.residence(config))?,
                ),
            };
            popbase_household::role::services(&registry, std::sync::Arc::new(policies), Some(platform), config)
        }
        Role::Residence => {
            let store = open_store(config, role, popbase_residence::tables::SCHEMA)?;
            stores.push(store.clone());
            let feeds = popbase_proto::feeds::feeds_client::FeedsClient::new(local.upstream(Role::Feeds, &local.feeds(config))?);
            let permits = popbase_residence::Permits::new(store);
            local.handlers.permits = Some(std::sync::Arc::new(popbase_residence::grpc::PermitsService::new(permits.clone())));
            local
                .exports
                .push(std::sync::Arc::new(popbase_residence::export::PermitExports::new(permits.clone())));
            popbase_residence::role::services(&permits, feeds, config)
        }
        Role::Feeds => {
            let store = open_store(config, role, popbase_feeds::tables::SCHEMA)?;
            stores.push(store.clone());
            let directory =
                popbase_feeds::directory::PersonDirectory::new(&local.household(config), &local.residence(config), &local.dialer)
                    .map_err(anyhow::Error::msg)?;
            let feeds = popbase_feeds::FeedStore::open(store)?;
            local.handlers.feeds = Some(std::sync::Arc::new(popbase_feeds::grpc::FeedsService::new(
                feeds.clone(),
                directory.clone(),
            )));
            local
                .exports
                .push(std::sync::Arc::new(popbase_feeds::export::FeedExports::new(feeds.clone())));
            popbase_feeds::role::services(&feeds, directory, config)
        }
        Role::Ledger => {
            let store = open_store(config, role, popbase_gateway::tables::SCHEMA)?;
            stores.push(store.clone());
            let ledger = popbase_gateway::ledger::LocalLedger::start(store).context("starting the audit writer")?;
            let audit = ledger.audit.clone();
            metrics.add_renderer(std::sync::Arc::new(move |out: &mut String| audit.render_metrics(out)));
            let quotas = ledger.quotas.clone();
            metrics.add_renderer(std::sync::Arc::new(move |out: &mut String| {
                let today = popbase_gateway::audit::log::yyyymmdd(popbase_domain::clock::today());
                quotas.render_metrics(today, out);
            }));
            let interval = std::time::Duration::from_secs(config.gateway.audit_head_interval_secs);
            let signer = popbase_gateway::audit::head::HeadSigner::load_or_create(&config.audit_head_key_path())
                .context("loading the audit head key")?;
            ledger.set_published(&config.audit_head_sinks(), signer.public_hex());
            tokio::spawn(popbase_gateway::audit::head::publish(
                ledger.audit.clone(),
                config.audit_head_sinks(),
                signer,
                interval,
                shutdown.clone(),
            ));
            let services = popbase_gateway::role::ledger_services(&ledger, config);
            local.ledger = Some(ledger);
            services
        }
        Role::Gateway => {
            let sources = local
                .exports
                .iter()
                .cloned()
                .fold(
                    popbase_gateway::sources::Sources::over(
                        local.upstream(Role::Household, &config.upstream.household)?,
                        local.upstream(Role::Residence, &config.upstream.residence)?,
                        local.upstream(Role::Feeds, &config.upstream.feeds)?,
                    ),
                    popbase_gateway::sources::Sources::with_local_export,
                )
                .with_handlers(local.handlers.clone(), metrics)
                // The health page's figures of the ledger's store too.
                .with_ledger_ops(local.upstream(Role::Ledger, &config.upstream.ledger)?);
            // In-process when this process runs the ledger; else the `ledger` role's address.
            let ledger: std::sync::Arc<dyn popbase_gateway::ledger::Ledger> = match &local.ledger {
                Some(ledger) => std::sync::Arc::new(ledger.clone()),
                None => std::sync::Arc::new(
                    popbase_gateway::ledger::RemoteLedger::connect_lazy(&config.upstream.ledger, &local.dialer)
                        .map_err(anyhow::Error::msg)?,
                ),
            };
            let (gate, services) = popbase_gateway::role::build(config, ledger, sources).context("setting up the gateway")?;
            tokio::spawn(gate.clone().summarise_refusals(shutdown.clone()));
            metrics.add_renderer(std::sync::Arc::new(move |out: &mut String| gate.render_metrics(out)));
            services
        }
        Role::All => anyhow::bail!("'all' is expanded before serving"),
        Role::Console => anyhow::bail!("the console serves HTTPS, not gRPC (console_role)"),
    })
}

/// Serves `role` (every single role for `all`) until SIGTERM/SIGINT.
pub async fn run(config: Config, role: Role) -> anyhow::Result<()> {
    run_with(config, role, Box::new(|_| {})).await
}

/// Where this process answers once every listener is bound.
pub struct Bound {
    pub roles: Vec<(Role, std::net::SocketAddr)>,
    pub metrics: std::net::SocketAddr,
    /// The console's HTTPS port, when this process serves it.
    pub console: Option<std::net::SocketAddr>,
}

impl Bound {
    pub fn of(&self, role: Role) -> Option<std::net::SocketAddr> {
        self.roles.iter().find(|(r, _)| *r == role).map(|(_, a)| *a)
    }
}

/// Called once every port is bound, just before `popbase ready` (the demo
/// prints its banner there, with the real addresses).
pub type OnReady = Box<dyn FnOnce(&Bound) + Send>;

/// [`run`], calling `ready` once every port is bound.
pub async fn run_with(config: Config, role: Role, ready: OnReady) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals().context("installing signal handlers")?;
    run_until(config, role, shutdown, ready).await
}

/// Where this process reaches its own listener: a wildcard bind
/// (`0.0.0.0`, `::`) is dialled on loopback, which the demo's certificates
/// name and which never leaves the pod.
fn dialable(bound: std::net::SocketAddr) -> std::net::SocketAddr {
    match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => (std::net::Ipv4Addr::LOCALHOST, bound.port()).into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => (std::net::Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

/// This process's mesh certificate, checked against the role it serves. A
/// split role serves an internal port or calls one, so it refuses to start
/// without a certificate unless `mesh.plaintext` says this is a throw-away
/// development cluster; all-in-one without one keeps its internal ports on
/// loopback.
fn load_mesh(config: &Config, role: Role) -> anyhow::Result<Option<Mesh>> {
    // The console calls only the gateway's department port: no mesh.
    let Some(identity) = MeshIdentity::of_role(role) else {
        return Ok(None);
    };
    let mesh = Mesh::load(&config.mesh).context("loading the mesh certificate")?;
    match &mesh {
        Some(mesh) if mesh.identity() != identity => anyhow::bail!(
            "the mesh certificate names '{}', but this process serves the {} role: give it a certificate with subject CN {}",
            mesh.identity().name(),
            role.name(),
            identity.common_name()
        ),
        Some(_) => {}
        None if config.mesh.plaintext => {
            tracing::warn!(
                role = role.name(),
                "mesh.plaintext: internal calls are unauthenticated and unencrypted (development only)"
            )
        }
        // All-in-one without a mesh: its internal ports answer anyone who
        // can reach them, so only on loopback.
        None if role == Role::All => {
            let internal = [Role::Household, Role::Residence, Role::Feeds, Role::Ledger];
            if let Some(open) = internal.into_iter().find(|r| !config.listen_addr(*r).ip().is_loopback()) {
                anyhow::bail!(
                    "the {} port listens on {} without a mesh certificate: bind internal ports to loopback, \
                     give the process an all-in-one mesh certificate (popbase demo makes one), or set mesh.plaintext = true \
                     on a throw-away development machine",
                    open.name(),
                    config.listen_addr(open)
                );
            }
        }
        None => anyhow::bail!(
            "the {} role needs a mesh certificate (mesh.ca, mesh.cert, mesh.key or POPBASE_MESH_CA/CERT/KEY; see docs/operations.md, \"Mesh certificates\"), \
             or mesh.plaintext = true on a throw-away development cluster",
            role.name()
        ),
    }
    Ok(mesh)
}

/// Serves until `shutdown` fires; `ready` is called once every port is bound.
async fn run_until(config: Config, role: Role, shutdown: Shutdown, ready: OnReady) -> anyhow::Result<()> {
    // One clock for the process: the city's days, before anything counts one.
    popbase_domain::clock::set_time_zone(&config.city_time_zone)?;
    let mesh = load_mesh(&config, role)?;
    let mut stores = Vec::new();
    let mut servers = JoinSet::new();
    let metrics = Metrics::new();
    let health = ProcessHealth::new();
    let mut local = Local {
        dialer: Dialer::for_mesh(mesh.as_ref()).with_request_timeout(config.limits.upstream_timeout()),
        ..Local::default()
    };
    // Bind every listener first, so each role knows where the others of this
    // process answer before it builds its clients.
    let mut bound_roles = Vec::new();
    let mut listeners = Vec::new();
    for single in role.expand() {
        let addr = config.listen_addr(single);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {} on {addr}", single.name()))?;
        let bound = listener.local_addr()?;
        let own = format!("http://{}", dialable(bound));
        match single {
            Role::Household => local.household = Some(own),
            Role::Residence => local.residence = Some(own),
            Role::Feeds => local.feeds = Some(own),
            _ => {}
        }
        listeners.push((single, listener, bound));
    }
    for (single, listener, bound) in listeners {
        let mut services = role_services(&config, single, &mut stores, &mut local, &shutdown, &metrics)?;
        // The gateway's port is the departments' (their CA, their credentials).
        if let Some(mesh) = mesh.as_ref().filter(|_| single != Role::Gateway) {
            services.in_mesh(mesh);
        }
        services.health = health.clone();
        services.limits = config.limits.clone();
        if matches!(single, Role::Household | Role::Residence | Role::Feeds | Role::Ledger) {
            let routes = services.routes.clone().routes();
            local
                .in_process
                .insert(single, upstream::in_process(single, routes, metrics.clone()));
        }
        tracing::info!(role = single.name(), addr = %bound, "serving gRPC");
        println!("{}", serving_line(single, bound));
        bound_roles.push((single, bound));
        let (shutdown, metrics) = (shutdown.clone(), metrics.clone());
        servers.spawn(async move {
            (
                single,
                server::serve(services, listener, metrics, shutdown)
                    .await
                    .map_err(anyhow::Error::from),
            )
        });
    }
    for store in &stores {
        metrics.watch_store(store.clone());
    }
    if !stores.is_empty() {
        metrics.watch_backups(config.backup_root());
    }
    if !config.mesh.cert.as_os_str().is_empty() {
        metrics.watch_certificate("mesh", config.mesh.cert.clone());
    }
    if !config.gateway.tls_cert.as_os_str().is_empty() && bound_roles.iter().any(|(r, _)| *r == Role::Gateway) {
        metrics.watch_certificate("gateway", config.gateway.tls_cert.clone());
    }
    // The residence role's permits lapse at the city's midnight (any that
    // lapsed while it was down, before it is ready), and end when their
    // holders settle, following the registry in this process or upstream.
    if let Some(store) = stores.iter().find(|s| s.name() == popbase_residence::tables::SCHEMA.name) {
        let permits = popbase_residence::Permits::new(store.clone());
        if let Err(e) = popbase_residence::expiry::expire_lapsed(&permits).await {
            tracing::warn!(error = %e, "expiring lapsed residence permits at start failed; the daily run retries");
        }
        tokio::spawn(popbase_residence::expiry::expire_daily(permits, shutdown.clone()));
        let upstream = local.household(&config);
        tokio::spawn(popbase_residence::follow::follow_settlements(
            popbase_residence::Permits::new(store.clone()),
            upstream,
            local.dialer.clone(),
            SETTLEMENT_POLL,
            shutdown.clone(),
        ));
    }
    let metrics_listener = TcpListener::bind(config.listen.metrics)
        .await
        .with_context(|| format!("binding metrics on {}", config.listen.metrics))?;
    let metrics_addr = metrics_listener.local_addr()?;
    println!("popbase metrics addr={metrics_addr}");
    if let Some(addr) = config.listen.health {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding health on {addr}"))?;
        println!("popbase health addr={}", listener.local_addr()?);
        let (health, shutdown) = (health.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(err) = server::serve_health(health, listener, shutdown).await {
                tracing::error!(error = %err, "health port failed");
            }
        });
    }
    tokio::spawn(metrics::serve_metrics(metrics_listener, metrics, shutdown.clone()));
    let own_gateway = bound_roles.iter().find(|(r, _)| *r == Role::Gateway).map(|(_, a)| dialable(*a));
    let mut console = None;
    if role == Role::Console || (own_gateway.is_some() && config.console.enabled()) {
        let (addr, serving) = crate::console_role::start(&config, own_gateway, shutdown.clone()).await?;
        println!("{}", serving_line(Role::Console, addr));
        console = Some(addr);
        servers.spawn(async move { (Role::Console, serving.await) });
    }
    ready(&Bound {
        roles: bound_roles,
        metrics: metrics_addr,
        console,
    });
    println!("popbase ready");
    let mut first_error = None;
    while let Some(joined) = servers.join_next().await {
        let (single, result) = joined.context("server task panicked")?;
        if let Err(err) = result {
            tracing::error!(role = single.name(), error = %err, "server failed; stopping the others");
            first_error.get_or_insert(anyhow::anyhow!("{} server: {err}", single.name()));
        }
        // One role ending (by error or signal) ends the process.
        shutdown.trigger();
    }
    for store in &stores {
        store.flush().with_context(|| format!("flushing the {} store", store.name()))?;
        tracing::info!(store = store.name(), last_seq = store.last_seq(), "store flushed");
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
