//! `popbase subscribe`: watch a change-notification subscription as an
//! operator would, through the gateway like any department (so the same
//! authorisation and audit apply). Creates one first when asked (a division
//! or a roster file), then prints each change as a JSON line with the ID
//! number masked, whatever the subscription carries.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use popbase_proto::gateway::create_subscription_request::Scope;
use popbase_proto::gateway::subscriptions_client::SubscriptionsClient;
use popbase_proto::gateway::{AcknowledgeRequest, Change, ChangeKind, CreateSubscriptionRequest, SubscribeRequest, UpdateRosterRequest};
use tonic::transport::Channel;

use crate::gateway_client::GatewayArgs;

/// ID numbers per UpdateRoster call (the gateway's bound).
const ROSTER_CHUNK: usize = 10_000;

#[derive(Args, Debug)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Follow this subscription (an id CreateSubscription answered).
    #[arg(long, conflicts_with_all = ["purpose", "division", "roster_file"])]
    pub subscription: Option<String>,
    /// Create a subscription under this catalogue purpose first.
    #[arg(long, requires = "kinds")]
    pub purpose: Option<String>,
    /// Change kinds of the new subscription: birth, death, settlement,
    /// move_out, city_transfer, household_change, marriage, divorce,
    /// permit_granted, permit_expired, permit_cancelled, insurance_status.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Scope of the new subscription: a division code of the city.
    #[arg(long, conflicts_with = "roster_file")]
    pub division: Option<String>,
    /// Scope of the new subscription: the persons in this file, one ID number per line.
    #[arg(long)]
    pub roster_file: Option<PathBuf>,
    /// Fields each change carries (id_number, relation, occurred_on,
    /// committee_code, from_code, household_id, detail); each must be approved.
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Start the new subscription after these sequences (an export's
    /// `popbase.snapshot_seq` per log) instead of at the newest change.
    #[arg(long)]
    pub start_household: Option<u64>,
    #[arg(long)]
    pub start_residence: Option<u64>,
    #[arg(long)]
    pub start_feeds: Option<u64>,
    /// Acknowledge each notification once its changes are printed.
    #[arg(long)]
    pub ack: bool,
    /// Stop after this many changes (0: until interrupted).
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
    /// Changes per notification (0: the gateway's default, 500).
    #[arg(long, default_value_t = 0)]
    pub max_batch: u32,
}

fn kind(name: &str) -> anyhow::Result<i32> {
    let proto = format!("CHANGE_KIND_{}", name.trim().to_ascii_uppercase());
    match ChangeKind::from_str_name(&proto) {
        Some(kind) if kind != ChangeKind::Unspecified => Ok(kind as i32),
        _ => bail!("--kinds: '{name}' is not a change kind"),
    }
}

/// Creates the subscription the arguments describe; its id.
async fn create(client: &mut SubscriptionsClient<Channel>, args: &SubscribeArgs, purpose: &str) -> anyhow::Result<String> {
    let scope = match (&args.division, &args.roster_file) {
        (Some(code), None) => Scope::DivisionCode(code.clone()),
        (None, Some(_)) => Scope::Roster(true),
        _ => bail!("name the new subscription's scope: --division or --roster-file"),
    };
    let request = CreateSubscriptionRequest {
        purpose: purpose.to_string(),
        kinds: args.kinds.iter().map(|k| kind(k)).collect::<anyhow::Result<_>>()?,
        scope: Some(scope),
        fields: args.fields.clone(),
        start_household: args.start_household,
        start_residence: args.start_residence,
        start_feeds: args.start_feeds,
    };
    let created = client
        .create_subscription(args.gateway.request(request)?)
        .await
        .context("CreateSubscription")?;
    let id = created.into_inner().subscription_id;
    if let Some(file) = &args.roster_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
        let ids: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        for chunk in ids.chunks(ROSTER_CHUNK) {
            let update = UpdateRosterRequest {
                subscription_id: id.clone(),
                add_id_numbers: chunk.to_vec(),
                remove_id_numbers: vec![],
            };
            client.update_roster(args.gateway.request(update)?).await.context("UpdateRoster")?;
        }
        eprintln!("roster: {} persons", ids.len());
    }
    Ok(id)
}

/// One change as a JSON line: the masked ID number only.
fn line(change: &Change, now_millis: i64) -> String {
    let kind = change.kind().as_str_name().trim_start_matches("CHANGE_KIND_").to_ascii_lowercase();
    let source = change
        .source()
        .as_str_name()
        .trim_start_matches("CHANGE_SOURCE_")
        .to_ascii_lowercase();
    serde_json::json!({
        "source": source,
        "sequence": change.sequence,
        "kind": kind,
        "masked_id_number": change.masked_id_number,
        "relation": change.relation,
        "occurred_on": change.occurred_on.map(|d| d.to_string()).unwrap_or_default(),
        "committee_code": change.committee_code,
        "from_code": change.from_code,
        "detail": change.detail,
        "lag_ms": now_millis - change.committed_unix_millis,
    })
    .to_string()
}

pub async fn run(args: SubscribeArgs) -> anyhow::Result<()> {
    let mut client = SubscriptionsClient::new(args.gateway.channel().await?);
    let id = match (&args.subscription, &args.purpose) {
        (Some(id), _) => id.clone(),
        (None, Some(purpose)) => {
            let id = create(&mut client, &args, purpose).await?;
            eprintln!("created subscription {id}");
            id
        }
        (None, None) => bail!("name --subscription, or --purpose and --kinds to create one"),
    };
    let request = SubscribeRequest {
        subscription_id: id.clone(),
        max_batch: args.max_batch,
    };
    let mut stream = client
        .subscribe(args.gateway.request(request)?)
        .await
        .context("Subscribe")?
        .into_inner();
    let (mut printed, mut out) = (0u64, std::io::stdout().lock());
    while let Some(notification) = stream.message().await.context("the stream")? {
        let now = chrono::Utc::now().timestamp_millis();
        let mut whole = true;
        for change in &notification.changes {
            if args.limit != 0 && printed >= args.limit {
                whole = false;
                break;
            }
            writeln!(out, "{}", line(change, now))?;
            printed += 1;
        }
        out.flush()?;
        // A notification printed only in part is not acknowledged: its rest comes again.
        if args.ack && whole {
            let ack = AcknowledgeRequest {
                subscription_id: id.clone(),
                position: notification.position,
            };
            client.acknowledge(args.gateway.request(ack)?).await.context("Acknowledge")?;
        }
        if args.limit != 0 && printed >= args.limit {
            break;
        }
    }
    Ok(())
}
