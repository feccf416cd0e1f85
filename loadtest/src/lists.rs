//! Whole-division lists: one `MedicalInsurance.InsuranceGap` call per
//! division asked, all at once (the medical-insurance bureau's daily
//! comparison of a city), timed from the call to its first resident and to
//! its end. Repeated `rounds` times; the report keeps every round. With
//! `--policy`, the residence role's 政策找人 (`Entitlements.FindUnused`)
//! instead, asked on its own port (all-in-one on loopback: plaintext).

use std::time::Instant;

use anyhow::Context;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use popbase_proto::popbase::gateway::v1::InsuranceGapRequest;
use popbase_proto::popbase::gateway::v1::medical_insurance_client::MedicalInsuranceClient;
use popbase_proto::popbase::residence::v1::entitlements_client::EntitlementsClient;
use popbase_proto::popbase::residence::v1::{FindUnusedRequest, Policy};
use serde::Serialize;
use tonic::Request;
use tonic::metadata::MetadataValue;

use crate::target::{self, Target};

#[derive(clap::Args)]
pub struct ListsArgs {
    #[command(flatten)]
    target: Target,
    /// A division code per call, asked at once (e.g. the city's eight
    /// counties, or the city's own 4-digit code).
    #[arg(long = "division", required = true)]
    divisions: Vec<String>,
    /// 政策找人 instead: `resident-medical-insurance` or
    /// `compulsory-education`, asked of `--residence`.
    #[arg(long, requires = "residence")]
    policy: Option<String>,
    /// The residence role's address (with `--policy`).
    #[arg(long)]
    residence: Option<String>,
    /// How many times the whole set of calls is made.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds to wait before each round after the first: more than the
    /// gateway's `limits.list_share_secs` makes every round read the
    /// feeds' insured itself instead of joining the read the round before
    /// left.
    #[arg(long, default_value_t = 0)]
    pause_secs: u64,
    /// Where the JSON report goes (Markdown beside it, `.md`).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// A list as it streams in: each item only counted.
type Listed = BoxStream<'static, Result<(), tonic::Status>>;
/// A list's call, answering its stream.
type Call = BoxFuture<'static, anyhow::Result<Listed>>;

/// One round: every division asked at once.
#[derive(Serialize)]
pub struct Round {
    /// Residents listed, over all divisions.
    pub rows: u64,
    /// From the calls to the first resident of any of them.
    pub first_ms: f64,
    /// From the calls to the end of the last.
    pub total_ms: f64,
}

#[derive(Serialize)]
pub struct ListsReport {
    pub divisions: Vec<String>,
    pub rounds: Vec<Round>,
}

impl ListsReport {
    pub fn markdown(&self) -> String {
        let mut text =
            "| round | divisions | residents | first resident | whole list | residents/s |\n|---:|---|---:|---:|---:|---:|\n".to_string();
        for (i, r) in self.rounds.iter().enumerate() {
            text += &format!(
                "| {} | {} | {} | {:.2} s | {:.2} s | {:.0} |\n",
                i + 1,
                self.divisions.join(" "),
                r.rows,
                r.first_ms / 1000.0,
                r.total_ms / 1000.0,
                r.rows as f64 / (r.total_ms / 1000.0).max(1e-9)
            );
        }
        text
    }
}

pub async fn from_args(args: ListsArgs) -> anyhow::Result<ListsReport> {
    let token = args.target.token("medical_insurance")?;
    let channel = target::connect(&args.target.gateway).await?;
    let residence = match &args.residence {
        Some(url) => Some(target::connect(url).await?),
        None => None,
    };
    let policy = match args.policy.as_deref() {
        None => None,
        Some("resident-medical-insurance") => Some(Policy::ResidentMedicalInsurance),
        Some("compulsory-education") => Some(Policy::CompulsoryEducation),
        Some(other) => anyhow::bail!("--policy {other}: resident-medical-insurance or compulsory-education"),
    };
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().context("token")?;
    let mut rounds = Vec::new();
    for round in 0..args.rounds.max(1) {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(args.pause_secs)).await;
        }
        let started = Instant::now();
        let calls = args.divisions.iter().map(|division| {
            let listed: Call = match (policy, &residence) {
                (Some(policy), Some(residence)) => {
                    let mut client = EntitlementsClient::new(residence.clone()).max_decoding_message_size(16 << 20);
                    let request = FindUnusedRequest {
                        policy: policy as i32,
                        division_code: division.clone(),
                        on: None,
                    };
                    async move {
                        Ok(client
                            .find_unused(request)
                            .await
                            .context("FindUnused")?
                            .into_inner()
                            .map(|r| r.map(drop))
                            .boxed())
                    }
                    .boxed()
                }
                _ => {
                    let mut client = MedicalInsuranceClient::new(channel.clone()).max_decoding_message_size(16 << 20);
                    let mut request = Request::new(InsuranceGapRequest {
                        purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
                        division_code: division.clone(),
                    });
                    request.metadata_mut().insert("authorization", bearer.clone());
                    async move {
                        Ok(client
                            .insurance_gap(request)
                            .await
                            .context("InsuranceGap")?
                            .into_inner()
                            .map(|r| r.map(drop))
                            .boxed())
                    }
                    .boxed()
                }
            };
            async move {
                let mut listed: Listed = listed.await?;
                let (mut rows, mut first) = (0u64, None);
                while let Some(item) = listed.next().await {
                    item.context("list stream")?;
                    first.get_or_insert_with(|| started.elapsed());
                    rows += 1;
                }
                anyhow::Ok((rows, first))
            }
        });
        let answers = futures::future::try_join_all(calls).await?;
        let total = started.elapsed();
        let rows = answers.iter().map(|(rows, _)| rows).sum();
        let first = answers.iter().filter_map(|(_, first)| *first).min().unwrap_or(total);
        let round = Round {
            rows,
            first_ms: first.as_secs_f64() * 1000.0,
            total_ms: total.as_secs_f64() * 1000.0,
        };
        eprintln!(
            "popbase-loadtest lists: {} residents, first after {:.2} s, all after {:.2} s",
            round.rows,
            round.first_ms / 1000.0,
            round.total_ms / 1000.0
        );
        rounds.push(round);
    }
    Ok(ListsReport {
        divisions: args.divisions,
        rounds,
    })
}
