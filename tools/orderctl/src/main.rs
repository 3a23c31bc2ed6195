//! `orderctl`: the operator's command line. It reads the same variables the
//! functions read (`ORDERS_TABLE`, `ORDER_HISTORY_TABLE`, `API_KEYS_TABLE`,
//! `CALLBACK_QUEUE_URL`, `CALLBACK_DEAD_LETTER_QUEUE_URL`, `LABELS_BUCKET`,
//! `WEBHOOKS_TABLE`, `WEBHOOK_DELIVERY_QUEUE_URL`) and uses the AWS credentials and region of
//! the environment; `source .local/run/env` points it at `make run`.
//!
//! Exit codes (scripts can rely on them):
//! - 0: done, everything as asked;
//! - 1: an error (AWS, configuration); a replay or redrive may have done part
//!   of its work: run the same command again to resume;
//! - 2: bad usage (clap's own code; also a webhook URL or type refused);
//! - 3: done, but some named orders were refused or not found (replay), or
//!   the order does not exist (`order show`, `order erase`), or its
//!   personal data cannot be erased yet (`order erase`), or the webhook
//!   endpoint does not exist (`webhooks …`).

mod callbacks;
mod dlq;
mod keys;
mod order;
mod output;
mod webhooks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code 3: done, with some orders refused or not found.
pub const PARTIAL: u8 = 3;

type Failure = Box<dyn std::error::Error>;

/// The operator's tool for the order service.
#[derive(Debug, Parser)]
#[command(name = "orderctl", version, about, long_about = None,
    after_help = "Exit codes: 0 done; 1 error (rerun to resume); 2 usage; 3 done, some orders refused or not found, or no such order or webhook endpoint.")]
struct Cli {
    /// Print JSON (one document) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One order: its state, event timeline, attempt ledger and where its callback message is.
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// Callbacks by status: list them, replay them.
    #[command(subcommand)]
    Callbacks(callbacks::CallbacksCommand),
    /// The callback dead-letter queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// API keys: create, rotate, revoke, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// ERP webhook endpoints: list, show, create, disable, enable, rotate-secret, delete, replay.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
}

/// What the command line needs from AWS, built once.
#[derive(Debug, Clone)]
pub struct Aws {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

/// A required resource name from the environment.
pub fn resource(name: &'static str) -> Result<String, Failure> {
    adapters::settings::Env::process()
        .optional(name)
        .ok_or_else(|| {
            format!(
                "{name} is not set: export the stack's resource names (README, \"orderctl\"), \
             or `source .local/run/env` for make run"
            )
            .into()
        })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let aws = match adapters::https::aws_config().await {
        Ok(config) => Aws {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            s3: adapters::s3::client(&config),
        },
        Err(err) => {
            eprintln!("orderctl: AWS configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Order(command) => order::run(&aws, command, cli.json).await,
        Command::Callbacks(command) => callbacks::run(&aws, command, cli.json).await,
        Command::Dlq(command) => dlq::run(&aws, command, cli.json).await,
        Command::Keys(command) => keys::run(&aws, command, cli.json).await,
        Command::Webhooks(command) => webhooks::run(&aws, command, cli.json).await,
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("orderctl: {err}");
            ExitCode::FAILURE
        }
    }
}
