//! The scheduled redaction (docs/personal-data.md): every hour, the final
//! orders whose `PERSONAL_DATA_RETENTION_DAYS` have passed lose their
//! personal data and their label (`shared::lifecycle::personal_data::sweep`).
//! Due orders are read from a sparse index, never a scan.
//!
//! `main.rs` only wires it up; the local stack runs [`PersonalDataSweep::run`]
//! on its own timer, as EventBridge's schedule does in AWS.

use adapters::startup::Started;
use adapters::{DynamoOrderStore, S3LabelStore};
use shared::lifecycle::LifecycleError;
use shared::lifecycle::personal_data::{Sweep, sweep};
use shared::ports::{Clock, DueRedactions, LabelStore, OrderStore, SystemClock};

pub mod settings;

pub use settings::Settings;

/// The retention from the text of `PERSONAL_DATA_RETENTION_DAYS` (the local
/// stack passes the template's parameter): whole days from 1 to 3650.
///
/// # Errors
/// The text is not such a number.
pub fn retention_days(
    value: Option<String>,
) -> Result<chrono::Duration, adapters::settings::SettingsError> {
    let mut env = adapters::settings::Env::from_lookup(move |_| value.clone());
    let retention = settings::retention(&mut env);
    env.finish(retention)
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
    pub fn new(started: Started<Settings>) -> Self {
        Self::with_ports(
            started.settings.tables.store(started.dynamodb),
            S3LabelStore::new(started.s3, started.settings.labels_bucket),
            SystemClock,
            started.settings.retention,
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

#[cfg(test)]
mod tests;
