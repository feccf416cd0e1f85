//! Command-line surface.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use popbase_common::{Config, Role, telemetry};

#[derive(Parser, Debug)]
#[command(name = "popbase", version, about = "Population base-information data-sharing platform")]
pub struct Cli {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding one store per role (overrides config and POPBASE_DATA_DIR).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve one role, or every role in one process.
    Serve(ServeArgs),
    /// Generate a deterministic synthetic city into the data directory.
    Gen(GenArgs),
    /// Generate a small city if the data directory is empty, then serve everything.
    Demo(DemoArgs),
    /// Back up running roles' stores to their backup volumes as one set
    /// (RocksDB BackupEngine: incremental, checksummed, pruned), the
    /// backup CronJob's step.
    Backup(BackupArgs),
    /// Ask a running role for an online checkpoint of its stores on its data
    /// volume (hard links: a copy for an auditor, not a backup).
    Checkpoint(CheckpointArgs),
    /// Rebuild a data directory from a backup set and verify it (stores
    /// open at the recorded sequences, audit chain against the saved head).
    Restore(RestoreArgs),
    /// Print the store figures of a running role.
    Stats(TargetArgs),
    /// Stream a generated city's department feeds into a running feeds role and report the ingest rate.
    FeedLoad(FeedLoadArgs),
    /// The gateway's audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a signed gateway token for a department (token mode), using the
    /// gateway's token key from the config or the data directory.
    Token(TokenArgs),
    /// Export a dataset through the gateway (Arrow Flight) into a Parquet or Arrow file.
    Export(crate::export_cli::ExportArgs),
    /// Watch a change-notification subscription through the gateway (creating
    /// one first when asked); prints each change as a JSON line, ID numbers masked.
    Subscribe(crate::subscribe_cli::SubscribeArgs),
    /// Issue a mesh certificate (and the internal CA, when the folder has none)
    /// for development and tests; production uses cert-manager.
    Pki(crate::pki_cli::PkiArgs),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the hash chain of a copied ledger store (a backup or
    /// checkpoint, never the live one) and report the first broken record.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Directory of the ledger store copy (it must exist: nothing is created).
    #[arg(long)]
    pub store: PathBuf,
    /// A chain-head file kept outside the ledger (`seq hash millis [signature]`
    /// lines: the head file, its mirror, collected log lines). Every line
    /// must name a record the trail holds, with its hash. Repeatable.
    #[arg(long, required_unless_present = "no_head")]
    pub head: Vec<PathBuf>,
    /// Verify without any kept head: a cut tail with a rewritten store head
    /// then goes unnoticed. Say so explicitly.
    #[arg(long, conflicts_with = "head")]
    pub no_head: bool,
    /// The ledger's head-signing public key (hex, as logged at start); each
    /// head line must then carry a valid signature by it.
    #[arg(long)]
    pub head_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The department the token names (its id in the catalogue, e.g. education).
    #[arg(long, required_unless_present = "resident", conflicts_with = "resident")]
    pub department: Option<String>,
    /// Instead of a token: the service platform's assertion that a resident
    /// with this ID number signed in (the console's resident page; 1 hour).
    #[arg(long)]
    pub resident: Option<String>,
    /// Validity in hours.
    #[arg(long, default_value_t = 24)]
    pub hours: i64,
}

#[derive(Args, Debug)]
pub struct FeedLoadArgs {
    /// gRPC address of the feeds role, e.g. http://127.0.0.1:50063 (over the
    /// mesh with the config's certificate, which must be the gateway's).
    #[arg(long, conflicts_with = "gateway", required_unless_present_any = ["gateway", "save", "csv"])]
    pub target: Option<String>,
    /// Or the gateway, e.g. http://127.0.0.1:50051: each department submits
    /// its own kinds (DepartmentFeeds), with tokens minted from the data
    /// directory's gateway key.
    #[arg(long)]
    pub gateway: Option<String>,
    #[command(flatten)]
    pub city: GenArgs,
    /// Shift every record's as-of time by this much (a newer version of a city already loaded).
    #[arg(long, default_value_t = 0)]
    pub newer_by_ms: i64,
    /// Write the generated city's feed records to this file and send nothing.
    #[arg(long, conflicts_with_all = ["target", "gateway", "from"])]
    pub save: Option<std::path::PathBuf>,
    /// Write the records (shifted by --newer-by-ms) as CSV for a database
    /// baseline (scripts/bench/feeds.sh) and send nothing.
    #[arg(long, conflicts_with_all = ["target", "gateway", "save"])]
    pub csv: Option<std::path::PathBuf>,
    /// Send the records of a file `--save` wrote instead of generating them.
    #[arg(long)]
    pub from: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct TargetArgs {
    /// gRPC address of a storage-owning role, e.g. http://household:50061.
    #[arg(long)]
    pub target: String,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// gRPC address of a storage-owning role, e.g. http://residence-0.residence:50062.
    /// Repeatable; backed up in the order given: name followers before what
    /// they follow (residence before household), the ledger last.
    #[arg(long, required = true)]
    pub target: Vec<String>,
    /// The set's name, the same on every role: 1-64 of [a-z0-9-].
    #[arg(long)]
    pub label: String,
    /// Daily backups each store keeps (1-366).
    #[arg(long, default_value_t = 7)]
    pub keep_daily: u32,
    /// Weekly backups each store keeps (1-260): a backup is also kept as a
    /// weekly one when the newest weekly one is a week old.
    #[arg(long, default_value_t = 4)]
    pub keep_weekly: u32,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Folder name under `<data_dir>/checkpoints`: 1-64 of [a-z0-9-].
    #[arg(long)]
    pub label: String,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup directory the roles wrote to (their `backup_dir`).
    #[arg(long)]
    pub backup_dir: PathBuf,
    /// The set to restore (its label); the newest set when not given.
    #[arg(long)]
    pub set: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// The household registry's gRPC address (internal; port 0: any free).
    #[arg(long)]
    pub household_addr: Option<SocketAddr>,
    /// The residence permits service's gRPC address (internal).
    #[arg(long)]
    pub residence_addr: Option<SocketAddr>,
    /// The department feeds service's gRPC address (internal).
    #[arg(long)]
    pub feeds_addr: Option<SocketAddr>,
    /// The gateway's address: departments' gRPC and Arrow Flight.
    #[arg(long)]
    pub gateway_addr: Option<SocketAddr>,
    /// The ledger (consents and audit trail; Ops for backups). Internal.
    #[arg(long)]
    pub ledger_addr: Option<SocketAddr>,
    /// Prometheus metrics endpoint (GET /metrics).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Plaintext gRPC health for the kubelet's probes (health only); unset: none.
    #[arg(long)]
    pub health_addr: Option<SocketAddr>,
    /// The console's HTTPS address (served when console.tls_cert is set).
    #[arg(long)]
    pub console_addr: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// all (default), household, residence, feeds, ledger, gateway or console.
    #[arg(long, default_value = "all")]
    pub role: String,
    #[command(flatten)]
    pub listen: ListenArgs,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// 4-digit prefecture city code (Shandong cities have committee-level data).
    #[arg(long, default_value = "3703")]
    pub city: String,
    /// 2-digit province code instead of a city: every city of it with
    /// committee-level data (Shandong, 37: 16 cities), persons shared out
    /// by population weight, into the one data directory.
    #[arg(long, conflicts_with = "city")]
    pub province: Option<String>,
    /// Residents in all, registered and non-registered.
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Load only: skip the year of life events that follows (the
    /// statistics' history; about as long again as the load).
    #[arg(long)]
    pub skip_events_year: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Residents of the demo city generated on first start.
    #[arg(long, default_value_t = 20_000)]
    pub persons: u64,
    #[command(flatten)]
    pub listen: ListenArgs,
}

impl ListenArgs {
    fn apply(&self, config: &mut Config) {
        let pairs = [
            (Role::Household, self.household_addr),
            (Role::Residence, self.residence_addr),
            (Role::Feeds, self.feeds_addr),
            (Role::Ledger, self.ledger_addr),
            (Role::Gateway, self.gateway_addr),
            (Role::Console, self.console_addr),
        ];
        for (role, addr) in pairs {
            if let Some(addr) = addr {
                config.set_listen_addr(role, addr);
            }
        }
        if let Some(addr) = self.metrics_addr {
            config.listen.metrics = addr;
        }
        if let Some(addr) = self.health_addr {
            config.listen.health = Some(addr);
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(data) = &cli.data {
        config.data_dir = data.clone();
    }
    if let Some(format) = &cli.log_format {
        config.telemetry.log_format = format.clone();
    }
    crate::say::use_json(config.telemetry.log_format == "json");
    config.validate()?;
    Ok(config)
}

/// How an operator command reaches a role: as the configured mesh identity
/// (the backup job's certificate), else plaintext.
fn mesh_dialer(config: &Config) -> anyhow::Result<popbase_common::upstream::Dialer> {
    popbase_common::upstream::Dialer::from_config(&config.mesh).context("loading the mesh certificate")
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Serve(args) => {
            let role: Role = args.role.parse()?;
            args.listen.apply(&mut config);
            let _telemetry = telemetry::init(&format!("popbase-{}", role.name()), &config.telemetry).map_err(anyhow::Error::msg)?;
            crate::serve::run(config, role).await
        }
        Command::Gen(args) => {
            let _telemetry = telemetry::init("popbase-gen", &config.telemetry).map_err(anyhow::Error::msg)?;
            let data = config.data_dir.clone();
            let year = if args.skip_events_year {
                crate::generate::EventsYear::Skip
            } else {
                crate::generate::EventsYear::Run
            };
            tokio::task::spawn_blocking(move || match &args.province {
                Some(province) => crate::generate::run_province(&config, province, args.persons, args.seed, year).map(|_| ()),
                None => crate::generate::run(&config, &args.city, args.persons, args.seed, year).map(|_| ()),
            })
            .await
            .context("generator task")??;
            crate::say::info(&format!("popbase: city written to {}", data.display()));
            Ok(())
        }
        Command::Backup(args) => {
            let keep = crate::ops_client::Keep {
                daily: args.keep_daily,
                weekly: args.keep_weekly,
            };
            crate::ops_client::backup(&args.target, &args.label, keep, &mesh_dialer(&config)?).await
        }
        Command::Checkpoint(args) => crate::ops_client::checkpoint(&args.target.target, &args.label, &mesh_dialer(&config)?).await,
        Command::Restore(args) => crate::restore_cli::restore(&config, &args.backup_dir, args.set.as_deref()),
        Command::Stats(args) => crate::ops_client::stats(&args.target, &mesh_dialer(&config)?).await,
        Command::Audit(AuditCommand::Verify(args)) => crate::audit_cli::verify(&args.store, &args.head, args.head_key.as_deref()),
        Command::Token(args) => match (&args.department, &args.resident) {
            (Some(department), _) => crate::audit_cli::token(&config, department, args.hours),
            (None, Some(resident)) => crate::audit_cli::resident_assertion(&config, resident),
            (None, None) => anyhow::bail!("name --department or --resident"),
        },
        Command::Export(args) => crate::export_cli::run(args).await,
        Command::Subscribe(args) => crate::subscribe_cli::run(args).await,
        Command::Pki(args) => crate::pki_cli::run(&args),
        Command::FeedLoad(args) => {
            let records = match &args.from {
                Some(path) => crate::feed_file::Records::Saved(path.clone()),
                None => crate::feed_load::generated(&args.city.city, args.city.persons, args.city.seed)?,
            };
            if let Some(path) = &args.csv {
                let count = crate::feed_file::save_csv(records, path, args.newer_by_ms)?;
                // On stderr: the CSV may be standard output.
                eprintln!("feed-load: wrote {count} records to {}", path.display());
                return Ok(());
            }
            if let Some(path) = &args.save {
                let count = crate::feed_file::save(records, path)?;
                println!("feed-load: saved {count} records to {}", path.display());
                return Ok(());
            }
            let target = match (args.target, args.gateway) {
                (Some(feeds), _) => crate::feed_load::Target::Feeds(feeds),
                (None, Some(gateway)) => crate::feed_load::Target::Gateway(gateway),
                (None, None) => anyhow::bail!("name --target (the feeds role) or --gateway"),
            };
            let load = crate::feed_load::Load {
                records,
                newer_by_ms: args.newer_by_ms,
            };
            crate::feed_load::run(&config, target, load).await
        }
        Command::Demo(args) => {
            args.listen.apply(&mut config);
            let _telemetry = telemetry::init("popbase-demo", &config.telemetry).map_err(anyhow::Error::msg)?;
            crate::demo::run(config, args.persons).await
        }
    }
}
