//! The scheduled redaction (docs/personal-data.md): every hour, the final
//! orders whose `PERSONAL_DATA_RETENTION_DAYS` have passed lose their
//! personal data and their label (`shared::lifecycle::personal_data::sweep`).
//! Due orders are read from a sparse index, never a scan.
//!
//! `main.rs` only wires it up; the local stack runs [`PersonalDataSweep::run`]
//! on its own timer, as EventBridge's schedule does in AWS.

use adapters::{DynamoOrderStore, S3LabelStore};
use shared::config::{ConfigError, required_env};
use shared::lifecycle::LifecycleError;
use shared::lifecycle::personal_data::{DEFAULT_RETENTION_DAYS, Sweep, sweep};
use shared::ports::{Clock, DueRedactions, LabelStore, OrderStore, SystemClock};

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub order_history_table: String,
    pub labels_bucket: String,
    /// `PERSONAL_DATA_RETENTION_DAYS` (default 30): how long a final order
    /// keeps its personal data.
    pub retention: chrono::Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required_env("ORDERS_TABLE")?,
            order_history_table: required_env("ORDER_HISTORY_TABLE")?,
            labels_bucket: required_env("LABELS_BUCKET")?,
            retention: retention_days(std::env::var("PERSONAL_DATA_RETENTION_DAYS").ok())?,
        })
    }
}

/// The retention from its variable: whole days, at least 1.
pub fn retention_days(value: Option<String>) -> Result<chrono::Duration, ConfigError> {
    let days = match value {
        None => DEFAULT_RETENTION_DAYS,
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|days| (1..=3650).contains(days))
            .ok_or_else(|| ConfigError::Invalid {
                name: "PERSONAL_DATA_RETENTION_DAYS",
                reason: format!("{text:?} is not a number of days from 1 to 3650"),
            })?,
    };
    Ok(chrono::Duration::days(i64::from(days)))
}

/// One sweep over the due orders.
#[derive(Debug)]
pub struct PersonalDataSweep<S, L, C> {
    store: S,
    labels: L,
    clock: C,
    retention: chrono::Duration,
}

impl PersonalDataSweep<DynamoOrderStore, S3LabelStore, SystemClock> {
    /// The production wiring: DynamoDB, S3 and the system clock.
    pub fn new(config: Config, dynamodb: aws_sdk_dynamodb::Client, s3: aws_sdk_s3::Client) -> Self {
        Self::with_ports(
            DynamoOrderStore::new(dynamodb, config.orders_table, config.order_history_table),
            S3LabelStore::new(s3, config.labels_bucket),
            SystemClock,
            config.retention,
        )
    }
}

impl<S, L, C> PersonalDataSweep<S, L, C>
where
    S: OrderStore + DueRedactions,
    L: LabelStore,
    C: Clock,
{
    pub fn with_ports(store: S, labels: L, clock: C, retention: chrono::Duration) -> Self {
        Self {
            store,
            labels,
            clock,
            retention,
        }
    }

    /// Redacts what is due now. An order that fails stays listed for the
    /// next run; a run where any failed returns an error, so the function's
    /// error alarm tells an operator.
    pub async fn run(&self) -> Result<Sweep, LifecycleError> {
        let done = sweep(&self.store, &self.labels, &self.clock, self.retention).await?;
        if done.failed > 0 {
            return Err(LifecycleError::Store(
                shared::error::StoreError::Unavailable(
                    format!(
                        "{} order(s) could not be redacted; the next run tries again",
                        done.failed
                    )
                    .into(),
                ),
            ));
        }
        Ok(done)
    }
}
