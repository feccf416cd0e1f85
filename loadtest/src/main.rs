//! `popbase-loadtest`: drives a running popbase gateway the way departments
//! do (gRPC and Arrow Flight, token authentication) and reports throughput
//! and HDR latency percentiles as JSON and Markdown.
//!
//! ```text
//! popbase-loadtest run --gateway http://127.0.0.1:50060 --household http://127.0.0.1:50061 \
//!     --token hrss=… --token service_platform=… --scenario person --concurrency 32 --duration 30
//! popbase-loadtest run … --scenario person --rate 2000          # open loop
//! popbase-loadtest run … --token public_security=… --scenario events --subjects 300000
//! popbase-loadtest compare baseline.json popbase.json > table.md
//! ```
//!
//! `scripts/bench.sh` runs every scenario beside the PostgreSQL and DuckDB
//! baselines on the same generated city and writes the comparison.

mod engine;
mod life_events;
mod lists;
mod report;
mod scenarios;
mod setup;
mod subscribers;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::engine::{Plan, Scenario};
use crate::report::Report;
use crate::scenarios::Gateway;
use crate::target::Target;

#[derive(Parser)]
#[command(name = "popbase-loadtest", about = "Load tester for the popbase gateway")]
struct Cli {
    /// Threads driving the calls. The load tester shares the machine with
    /// the system under test; on one thread it hands no answer between
    /// threads and took a third less CPU per call than on two (2 cores).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario and write its report.
    Run(Box<RunArgs>),
    /// Change notifications: subscribers of a city's life events (backlog,
    /// then live deaths), with delivery rate, lag and audit cost.
    Subscribers(Box<subscribers::SubscribersArgs>),
    /// Whole-division lists: the uninsured list of each division given,
    /// asked at once, timed to the first resident and to the end.
    Lists(Box<lists::ListsArgs>),
    /// Print a Markdown comparison of reports (ratios to the first).
    Compare { reports: Vec<PathBuf> },
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Person,
    Intake,
    Uninsured,
    Export,
    /// Births and deaths at a police counter (writes; run it last, it changes the city).
    Events,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, value_enum)]
    scenario: Which,
    /// Closed loop: workers; open loop: most calls in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: u32,
    /// Open loop at this many calls per second (closed loop without it).
    #[arg(long)]
    rate: Option<f64>,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: u32,
    /// Seconds of warm-up (not recorded).
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Division the subjects come from.
    #[arg(long, default_value = "3703")]
    division: String,
    /// Distinct subjects of the person scenario (each granted consent
    /// first); for `events`, the persons listed (mothers and the dying).
    #[arg(long, default_value_t = 5000)]
    subjects: usize,
    /// Children per intake stream.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[arg(long, default_value = "persons")]
    dataset: String,
    /// Where the JSON report goes (Markdown beside it, `.md`).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "")]
    notes: String,
}

async fn run(args: RunArgs) -> anyhow::Result<Report> {
    let token = |dept: &str| args.target.token(dept);
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(target::connect(&args.target.gateway).await?);
    }
    let household = args.target.household().await?;
    let city = setup::city(household, &args.division, args.subjects).await?;
    eprintln!(
        "popbase-loadtest: {} persons, {} families, {} streets",
        city.ids.len(),
        city.families.len(),
        city.streets.len()
    );
    let gateway = |dept: &str| -> anyhow::Result<Gateway> {
        Ok(Gateway {
            channels: channels.clone(),
            token: token(dept)?,
        })
    };
    let scenario: Arc<dyn Scenario> = match args.scenario {
        Which::Person => {
            let ids: Vec<String> = city.self_consenting.iter().take(args.subjects).cloned().collect();
            setup::grant_consents(channels[0].clone(), &token("service_platform")?, &ids).await?;
            eprintln!("popbase-loadtest: consents granted for {} subjects", ids.len());
            Arc::new(scenarios::Person {
                gateway: gateway("hrss")?,
                ids: Arc::new(ids),
            })
        }
        Which::Intake => {
            anyhow::ensure!(!city.families.is_empty(), "no school-age children with a parent on record");
            Arc::new(scenarios::Intake {
                gateway: gateway("education")?,
                families: Arc::new(city.families),
                batch: args.batch.max(1),
            })
        }
        Which::Uninsured => Arc::new(scenarios::Uninsured {
            gateway: gateway("medical_insurance")?,
            divisions: Arc::new(city.streets),
        }),
        Which::Export => Arc::new(scenarios::Export {
            gateway: gateway("big_data")?,
            dataset: args.dataset.clone(),
        }),
        Which::Events => {
            anyhow::ensure!(
                !city.mothers.is_empty() && !city.others_active.is_empty(),
                "no active women of 22 to 40 in a household, or no one else, among those listed"
            );
            Arc::new(life_events::LifeEvents {
                gateway: gateway("public_security")?,
                mothers: Arc::new(city.mothers),
                dying: Arc::new(city.others_active),
                today: setup::city_today(),
            })
        }
    };
    let plan = Plan {
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration.max(1)),
        concurrency: args.concurrency.max(1),
        rate: args.rate,
        connections: args.connections.max(1),
    };
    let mut report = engine::run(scenario, &plan).await;
    report.notes = args.notes.clone();
    Ok(report)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = match cli.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    match cli.command {
        Command::Run(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(run(*args))?;
            target::emit(&report, &report.markdown(), out.as_deref())
        }
        Command::Subscribers(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(subscribers::from_args(*args))?;
            target::emit(&report, &report.markdown(), out.as_deref())
        }
        Command::Lists(args) => {
            let out = args.out.clone();
            let report = runtime.block_on(lists::from_args(*args))?;
            target::emit(&report, &report.markdown(), out.as_deref())
        }
        Command::Compare { reports } => {
            let mut runs = Vec::new();
            for path in reports {
                let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
                runs.push(serde_json::from_str::<Report>(&text).with_context(|| format!("{}", path.display()))?);
            }
            print!("{}", report::compare(&runs));
            Ok(())
        }
    }
}
