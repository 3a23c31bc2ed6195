//! `orderctl callbacks list|replay`: callbacks by status (the sparse index
//! `by_callback_status`), and replays through the API's own rule
//! (`Lifecycle::retry_callback`: a new generation; refused while an attempt is
//! in flight or when the status does not allow it).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use adapters::DynamoOrderStore;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::auth::Principal;
use shared::domain::OrderNumber;
use shared::domain::Scope;
use shared::lifecycle::Lifecycle;
use shared::lifecycle::LifecycleError;
use shared::polling;
use shared::ports::{Access, OrderStore, SystemClock};
use shared::record::callback::CallbackStatus;
use shared::record::{OrderRecord, format_update_time};

use crate::{Aws, Failure, PARTIAL, output, resource};

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// Lists callbacks in one status, oldest change first.
    List(Selection),
    /// Replays callbacks: the named orders, or every one in a status. Resumable:
    /// run the same command again after an interruption.
    Replay(Replay),
}

/// The callback statuses an operator looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Status {
    Failed,
    DeadLettered,
    Retrying,
    Pending,
}

impl From<Status> for CallbackStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Failed => Self::Failed,
            Status::DeadLettered => Self::DeadLettered,
            Status::Retrying => Self::Retrying,
            Status::Pending => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// The callback status.
    #[arg(long, value_enum)]
    status: Status,
    /// Only callbacks whose order changed at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Only this client's orders.
    #[arg(long)]
    client: Option<String>,
}

#[derive(Debug, Args)]
pub struct Replay {
    /// Order numbers to replay (instead of --status).
    #[arg(required_unless_present = "status", conflicts_with_all = ["status", "since", "client"])]
    orders: Vec<String>,
    /// Replay every callback in this status.
    #[arg(long, value_enum)]
    status: Option<Status>,
    /// With --status: only orders changed at or after this time (RFC 3339).
    #[arg(long, requires = "status")]
    since: Option<DateTime<Utc>>,
    /// With --status: only this client's orders.
    #[arg(long, requires = "status")]
    client: Option<String>,
    /// Say what would be queued, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// At most this many replays per second (each sends one queue message).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Where progress is kept so a rerun resumes (default: under .orderctl/,
    /// named after the selection; removed once the replay completes).
    #[arg(long)]
    progress_file: Option<PathBuf>,
}

pub async fn run(aws: &Aws, command: CallbacksCommand, json: bool) -> Result<u8, Failure> {
    let store = DynamoOrderStore::new(
        aws.dynamodb.clone(),
        resource("ORDERS_TABLE")?,
        resource("ORDER_HISTORY_TABLE")?,
    );
    match command {
        CallbacksCommand::List(selection) => {
            let records = select(&store, &selection).await?;
            print_list(&records, json);
            Ok(0)
        }
        CallbacksCommand::Replay(replay) => run_replay(&store, replay, json).await,
    }
}

/// The orders whose callback is in `selection.status`, oldest change first.
async fn select(
    store: &DynamoOrderStore,
    selection: &Selection,
) -> Result<Vec<OrderRecord>, Failure> {
    let after = selection
        .since
        .map_or_else(|| "0".to_owned(), polling::key_from);
    let mut records =
        polling::orders_with_callback_status(store, CallbackStatus::from(selection.status), after)
            .await?;
    records.retain(|record| {
        selection
            .client
            .as_ref()
            .is_none_or(|client| &record.order.client_code == client)
    });
    Ok(records)
}

fn print_list(records: &[OrderRecord], json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = records.iter().map(summary).collect();
        output::json(&json!({ "callbacks": rows, "count": records.len() }));
        return;
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            let callback = &record.callback;
            vec![
                record.order.order_number.to_string(),
                record.order.client_code.clone(),
                callback.status.as_str().to_owned(),
                format_update_time(record.updated_at),
                callback.attempt_count.to_string(),
                callback.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "ORDER",
            "CLIENT",
            "CALLBACK",
            "UPDATED_AT",
            "ATTEMPTS",
            "REASON",
        ],
        &rows,
    );
    eprintln!("{} callback(s)", records.len());
}

fn summary(record: &OrderRecord) -> serde_json::Value {
    json!({
        "order_number": record.order.order_number.as_str(),
        "client_code": record.order.client_code,
        "callback_status": record.callback.status.as_str(),
        "updated_at": format_update_time(record.updated_at),
        "attempt_count": record.callback.attempt_count,
        "reason": record.callback.reason,
    })
}

/// What happened to one order of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Queued,
    /// Done by an earlier, interrupted run of the same command.
    Skipped,
    Refused,
    NotFound,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Skipped => "skipped",
            Self::Refused => "refused",
            Self::NotFound => "not_found",
        }
    }
}

async fn run_replay(store: &DynamoOrderStore, replay: Replay, json: bool) -> Result<u8, Failure> {
    let targets: Vec<String> = match replay.status {
        Some(status) => select(
            store,
            &Selection {
                status,
                since: replay.since,
                client: replay.client.clone(),
            },
        )
        .await?
        .into_iter()
        .map(|record| record.order.order_number.to_string())
        .collect(),
        None => replay.orders.clone(),
    };
    let progress_path = replay
        .progress_file
        .clone()
        .unwrap_or_else(|| default_progress_file(&replay));
    let done = if replay.dry_run {
        BTreeSet::new()
    } else {
        read_progress(&progress_path)?
    };
    let mut log = if replay.dry_run {
        None
    } else {
        if let Some(dir) = progress_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&progress_path)?,
        )
    };
    let lifecycle = Lifecycle::new(store.clone(), SystemClock);
    let pause = Duration::from_secs_f64(1.0 / replay.rate.max(0.01));
    let bar = output::progress(targets.len() as u64, "replaying");
    let mut results = Vec::with_capacity(targets.len());
    for number in &targets {
        let outcome = if done.contains(number) {
            (Outcome::Skipped, None)
        } else if replay.dry_run {
            dry_run(store, number).await?
        } else {
            let outcome = replay_one(store, &lifecycle, number).await?;
            tokio::time::sleep(pause).await;
            outcome
        };
        if let Some(log) = &mut log
            && outcome.0 != Outcome::Skipped
        {
            writeln!(log, "{number}\t{}", outcome.0.as_str())?;
        }
        results.push((number.clone(), outcome.0, outcome.1));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !replay.dry_run {
        // Complete: a later run of the same command starts afresh.
        let _ = std::fs::remove_file(&progress_path);
    }
    let count = |wanted: Outcome| results.iter().filter(|(_, o, _)| *o == wanted).count();
    let (queued, skipped, refused, missing) = (
        count(Outcome::Queued),
        count(Outcome::Skipped),
        count(Outcome::Refused),
        count(Outcome::NotFound),
    );
    let verb = if replay.dry_run {
        "would queue"
    } else {
        "queued"
    };
    if json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(number, outcome, why)| {
                json!({"order_number": number, "outcome": outcome.as_str(), "reason": why})
            })
            .collect();
        output::json(&json!({
            "dry_run": replay.dry_run, "queued": queued, "skipped": skipped,
            "refused": refused, "not_found": missing, "orders": rows,
        }));
    } else {
        for (number, outcome, why) in &results {
            if matches!(outcome, Outcome::Refused | Outcome::NotFound) {
                eprintln!(
                    "{number}: {} {}",
                    outcome.as_str(),
                    why.as_deref().unwrap_or("")
                );
            }
        }
        println!("{verb} {queued}, skipped {skipped}, refused {refused}, not found {missing}");
    }
    Ok(if refused + missing > 0 { PARTIAL } else { 0 })
}

/// The API's replay rule, as the order's own client would call it.
async fn replay_one(
    store: &DynamoOrderStore,
    lifecycle: &Lifecycle<DynamoOrderStore, SystemClock>,
    number: &str,
) -> Result<(Outcome, Option<String>), Failure> {
    let Some(record) = read(store, number).await? else {
        return Ok((Outcome::NotFound, None));
    };
    let operator = Principal {
        key_id: "orderctl".into(),
        scope: Scope::Client(record.order.client_code.clone()),
        order_prefixes: Vec::new(),
        signed: None,
    };
    match lifecycle.retry_callback(&operator, number).await {
        Ok(_) => Ok((Outcome::Queued, None)),
        Err(LifecycleError::NotFound(_)) => Ok((Outcome::NotFound, None)),
        Err(err @ (LifecycleError::NotReplayable(_) | LifecycleError::AttemptInFlight(_))) => {
            Ok((Outcome::Refused, Some(err.to_string())))
        }
        Err(err) => Err(Box::new(err)),
    }
}

async fn dry_run(
    store: &DynamoOrderStore,
    number: &str,
) -> Result<(Outcome, Option<String>), Failure> {
    let Some(record) = read(store, number).await? else {
        return Ok((Outcome::NotFound, None));
    };
    Ok(match record.callback.check_replay(Utc::now()) {
        Ok(()) => (Outcome::Queued, None),
        Err(why) => (Outcome::Refused, Some(format!("{why:?}"))),
    })
}

async fn read(store: &DynamoOrderStore, number: &str) -> Result<Option<OrderRecord>, Failure> {
    let Ok(number) = OrderNumber::parse(number) else {
        return Ok(None);
    };
    Ok(store.get(&number, Access::Service).await?.into_found())
}

/// `.orderctl/replay-<hash of the selection>.progress`: the same command
/// finds its own progress again.
fn default_progress_file(replay: &Replay) -> PathBuf {
    let selection = format!(
        "{:?}|{:?}|{:?}|{:?}",
        replay.orders, replay.status, replay.since, replay.client
    );
    let digest = Sha256::digest(selection.as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from(".orderctl").join(format!("replay-{name}.progress"))
}

fn read_progress(path: &PathBuf) -> Result<BTreeSet<String>, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|line| line.split('\t').next())
            .filter(|number| !number.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(err) => Err(Box::new(err)),
    }
}
