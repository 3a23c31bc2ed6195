//! The callback dispatcher Lambda: an SQS batch in, one spec-001 callback per
//! message out, and a `SqsBatchResponse` naming only the messages to retry.
//!
//! Each message is handled on its own task: one failing (or, in a build that
//! unwinds, panicking) message never fails the others. A message to retry is
//! hidden for the delay of the retry schedule (`ChangeMessageVisibility`)
//! before it is reported; a poison message (unreadable, or for an unknown
//! order) is made visible again at once, so it reaches the dead-letter queue
//! after `maxReceiveCount` quick deliveries without holding up anything.

pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::adapters::CallbackMessage;
use shared::callback::{DispatchError, Dispatcher, Disposition, Report};
use shared::config::{ConfigError, Warehouses, required_env};
use shared::ports::{Clock, OrderStore, PartnerClient};

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub callback_queue_url: String,
    pub callback_url: String,
    pub warehouses: Warehouses,
    pub policy: shared::callback::RetryPolicy,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Config {
    /// `ORDERS_TABLE`, `CALLBACK_QUEUE_URL`, `CALLBACK_URL`, `WAREHOUSES`;
    /// optional `CALLBACK_MAX_RECEIVE_COUNT` (the queue's, default 8),
    /// `CALLBACK_RETRY_DELAYS` (seconds, comma-separated),
    /// `CALLBACK_TIMEOUT_SECONDS` (default 10).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut policy = shared::callback::RetryPolicy::default();
        if let Ok(count) = std::env::var("CALLBACK_MAX_RECEIVE_COUNT") {
            policy.max_receive_count = count.parse().map_err(|_| ConfigError::Invalid {
                name: "CALLBACK_MAX_RECEIVE_COUNT",
                reason: format!("{count:?} is not a number"),
            })?;
        }
        if let Ok(delays) = std::env::var("CALLBACK_RETRY_DELAYS") {
            policy.delays =
                shared::callback::RetryPolicy::parse_delays(&delays).map_err(|reason| {
                    ConfigError::Invalid {
                        name: "CALLBACK_RETRY_DELAYS",
                        reason,
                    }
                })?;
        }
        let timeout = match std::env::var("CALLBACK_TIMEOUT_SECONDS") {
            Ok(seconds) => {
                Duration::from_secs(seconds.parse().map_err(|_| ConfigError::Invalid {
                    name: "CALLBACK_TIMEOUT_SECONDS",
                    reason: format!("{seconds:?} is not a number"),
                })?)
            }
            Err(_) => Duration::from_secs(10),
        };
        // The lease outlives any one request.
        policy.lease = timeout * 3;
        Ok(Self {
            orders_table: required_env("ORDERS_TABLE")?,
            callback_queue_url: required_env("CALLBACK_QUEUE_URL")?,
            callback_url: required_env("CALLBACK_URL")?,
            warehouses: Warehouses::from_json(&required_env("WAREHOUSES")?)?,
            policy,
            connect_timeout: Duration::from_secs(3).min(timeout),
            timeout,
        })
    }
}

/// The batch handler, shared by every invocation of the process.
#[derive(Debug)]
pub struct DispatchHandler<S, P, C> {
    dispatcher: Dispatcher<S, P, C>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl<S, P, C> DispatchHandler<S, P, C>
where
    S: OrderStore + 'static,
    P: PartnerClient + 'static,
    C: Clock + 'static,
{
    pub fn new(
        dispatcher: Dispatcher<S, P, C>,
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
    ) -> Self {
        Self {
            dispatcher,
            sqs,
            queue_url,
        }
    }

    /// Handles a batch; the response lists the messages SQS must keep.
    pub async fn handle(self: Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        let tasks: Vec<_> = event
            .records
            .into_iter()
            .map(|message| {
                let handler = Arc::clone(&self);
                let id = message.message_id.clone().unwrap_or_default();
                (
                    id,
                    tokio::spawn(async move { handler.process(&message).await }),
                )
            })
            .collect();
        let mut response = SqsBatchResponse::default();
        for (id, task) in tasks {
            let keep = match task.await {
                Ok(keep) => keep,
                Err(err) => {
                    tracing::error!(message_id = %id, error = %err, "message handler panicked");
                    true
                }
            };
            // An empty id would fail the whole batch; SQS always sends one.
            if keep && !id.is_empty() {
                response.add_failure(id);
            }
        }
        response
    }

    /// Handles one message; `true` when SQS must keep it.
    async fn process(&self, message: &SqsMessage) -> bool {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let receive_count = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1);
        let body = message.body.as_deref().unwrap_or_default();
        let Ok(CallbackMessage { order_number }) = serde_json::from_str(body) else {
            tracing::error!(message_id, receive_count, "unreadable callback message");
            self.retry_in(message, Duration::ZERO).await;
            return true;
        };
        let span = tracing::info_span!("callback", order_number = %order_number, message_id, receive_count);
        match self
            .dispatcher
            .dispatch(&order_number, receive_count)
            .instrument(span.clone())
            .await
        {
            Ok((disposition, report)) => {
                span.in_scope(|| log_report(&report));
                match disposition {
                    Disposition::Delete => false,
                    Disposition::RetryIn(delay) => {
                        self.retry_in(message, delay).await;
                        true
                    }
                }
            }
            Err(DispatchError::UnknownOrder(_)) => {
                tracing::error!("callback message for an unknown order");
                self.retry_in(message, Duration::ZERO).await;
                true
            }
            Err(DispatchError::Store(err)) => {
                // The queue's visibility timeout spaces the next try.
                tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "order store failure");
                true
            }
        }
    }

    async fn retry_in(&self, message: &SqsMessage, delay: Duration) {
        let Some(receipt) = message.receipt_handle.as_deref() else {
            return;
        };
        let seconds = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
        if let Err(err) = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            // The queue's own visibility timeout applies instead.
            tracing::warn!(error = %err, "could not set the retry delay");
        }
    }
}

fn log_report(report: &Report) {
    let (outcome, latency) = match report {
        Report::Delivered { latency } => {
            tracing::info!(latency_ms = latency.as_millis(), "callback delivered");
            ("Delivered", Some(*latency))
        }
        Report::Failed { reason, latency } => {
            tracing::warn!(reason, "callback failed");
            ("Failed", *latency)
        }
        Report::Retrying { reason, latency } => {
            tracing::warn!(reason, "callback will be retried");
            ("Retried", *latency)
        }
        Report::Skipped(why) => {
            tracing::info!(why, "nothing to send");
            ("Skipped", None)
        }
    };
    println!("{}", metrics::line(outcome, latency));
}
