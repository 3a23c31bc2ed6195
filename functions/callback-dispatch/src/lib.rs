//! The callback dispatcher Lambda: an SQS batch in, one spec-001 callback per
//! message out, and a `SqsBatchResponse` naming only the messages to retry.
//!
//! Each message is handled on its own task: one failing (or, in a build that
//! unwinds, panicking) message never fails the others. A message to retry is
//! hidden for the delay of the retry schedule (`ChangeMessageVisibility`)
//! before it is reported. When the schedule is spent (the order already says
//! `dead_lettered`), and for a poison message (unreadable, or for an unknown
//! order), the handler moves the message to the dead-letter queue itself and
//! lets SQS delete the original: the order's status and the message's place
//! agree, whatever the queue's receive count. The queue's own `maxReceiveCount`
//! is only a safety net far above the schedule.

pub mod metrics;

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use adapters::CallbackMessage;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageAttributeValue;
use shared::callback::breaker::BreakerPolicy;
use shared::callback::retry::store_backoff;
use shared::config::{ConfigError, Warehouses, required_env};
use shared::dispatch::{Delivery, DeliveryOutcome, DispatchError, Dispatcher, QueueAction};
use shared::ports::{Clock, OrderStore, PartnerClient, TokenSource};

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    /// `ORDER_HISTORY_TABLE`: the orders' requests and callback ledgers.
    pub order_history_table: String,
    pub callback_queue_url: String,
    pub dead_letter_queue_url: String,
    pub callback_url: String,
    pub warehouses: Warehouses,
    pub policy: shared::callback::RetryPolicy,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Where the partner's credentials are: `CALLBACK_TOKEN_SECRET_ID` (with
    /// `CALLBACK_TOKEN_URL` and `PARTNER_STATE_TABLE` for OAuth2), or `None`
    /// for the static `CALLBACK_TOKEN`.
    pub tokens: Option<adapters::TokenConfig>,
    /// The partner-state table (`PARTNER_STATE_TABLE`): the circuit
    /// breaker's item; no breaker without it.
    pub state_table: Option<String>,
    /// `None`: `CALLBACK_BREAKER=off`.
    pub breaker: Option<BreakerPolicy>,
}

impl Config {
    /// `ORDERS_TABLE`, `ORDER_HISTORY_TABLE`, `CALLBACK_QUEUE_URL`,
    /// `CALLBACK_DEAD_LETTER_QUEUE_URL`, `CALLBACK_URL`, `WAREHOUSES`; optional `CALLBACK_MAX_POSTS` (posts in a
    /// schedule, default 8), `CALLBACK_RETRY_DELAYS` (seconds,
    /// comma-separated), `CALLBACK_TIMEOUT_SECONDS` (default 10).
    pub fn from_env() -> Result<Self, ConfigError> {
        let (policy, timeout) = schedule_from_env()?;
        Ok(Self {
            orders_table: required_env("ORDERS_TABLE")?,
            order_history_table: required_env("ORDER_HISTORY_TABLE")?,
            callback_queue_url: required_env("CALLBACK_QUEUE_URL")?,
            dead_letter_queue_url: required_env("CALLBACK_DEAD_LETTER_QUEUE_URL")?,
            callback_url: required_env("CALLBACK_URL")?,
            warehouses: Warehouses::from_json(&required_env("WAREHOUSES")?)?,
            policy,
            connect_timeout: Duration::from_secs(3).min(timeout),
            timeout,
            tokens: token_config(timeout)?,
            state_table: std::env::var("PARTNER_STATE_TABLE").ok(),
            breaker: breaker_policy()?,
        })
    }
}

/// The retry schedule and the partner timeout: `CALLBACK_MAX_POSTS` (posts in
/// a schedule, default 8), `CALLBACK_RETRY_DELAYS` (seconds, comma-separated),
/// `CALLBACK_TIMEOUT_SECONDS` (default 10). The local stack reads the same
/// variables through this, so a compressed schedule behaves as deployed.
pub fn schedule_from_env() -> Result<(shared::callback::RetryPolicy, Duration), ConfigError> {
    let mut policy = shared::callback::RetryPolicy::default();
    if let Ok(count) = std::env::var("CALLBACK_MAX_POSTS") {
        policy.max_posts = count
            .parse()
            .ok()
            .filter(|posts| *posts > 0)
            .ok_or_else(|| ConfigError::Invalid {
                name: "CALLBACK_MAX_POSTS",
                reason: format!("{count:?} is not a positive number"),
            })?;
    }
    if let Ok(delays) = std::env::var("CALLBACK_RETRY_DELAYS") {
        policy.delays = shared::callback::RetryPolicy::parse_delays(&delays).map_err(|reason| {
            ConfigError::Invalid {
                name: "CALLBACK_RETRY_DELAYS",
                reason,
            }
        })?;
    }
    let timeout = match std::env::var("CALLBACK_TIMEOUT_SECONDS") {
        Ok(seconds) => Duration::from_secs(seconds.parse().map_err(|_| ConfigError::Invalid {
            name: "CALLBACK_TIMEOUT_SECONDS",
            reason: format!("{seconds:?} is not a number"),
        })?),
        Err(_) => Duration::from_secs(10),
    };
    // The lease and the post timeout from the one rule (RetryPolicy::for_partner_timeout).
    let timed = shared::callback::RetryPolicy::for_partner_timeout(timeout);
    (policy.lease, policy.post_timeout) = (timed.lease, timed.post_timeout);
    Ok((policy, timeout))
}

/// The circuit breaker's tunables (defaults in brackets): it opens when a
/// dispatcher saw at least `CALLBACK_BREAKER_MIN_POSTS` (20) posts end within
/// `CALLBACK_BREAKER_WINDOW_SECONDS` (30) and `CALLBACK_BREAKER_FAILURE_PCT`
/// (90) % of them failed as if the partner were down; it holds for
/// `CALLBACK_BREAKER_COOL_DOWN_SECONDS` (30), doubled after each round of
/// `CALLBACK_BREAKER_PROBES` (3) failed probes up to
/// `CALLBACK_BREAKER_MAX_COOL_DOWN_SECONDS` (1800); traffic comes back over
/// `CALLBACK_BREAKER_RAMP_SECONDS` (30). `CALLBACK_BREAKER=off` runs without
/// a breaker (and without the 429 throttle it carries): `None`.
pub fn breaker_policy() -> Result<Option<BreakerPolicy>, ConfigError> {
    if std::env::var("CALLBACK_BREAKER").is_ok_and(|value| value == "off") {
        return Ok(None);
    }
    let mut policy = BreakerPolicy::default();
    let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
        std::env::var(name)
            .ok()
            .map(|value| {
                value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::Invalid {
                        name,
                        reason: format!("{value:?} is not a positive number"),
                    })
            })
            .transpose()
    };
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    if let Some(s) = number("CALLBACK_BREAKER_WINDOW_SECONDS")? {
        policy.window = Duration::from_secs(s);
    }
    if let Some(n) = number("CALLBACK_BREAKER_MIN_POSTS")? {
        policy.min_posts = count(n);
    }
    if let Some(pct) = number("CALLBACK_BREAKER_FAILURE_PCT")? {
        if pct > 100 {
            return Err(ConfigError::Invalid {
                name: "CALLBACK_BREAKER_FAILURE_PCT",
                reason: format!("{pct} is more than 100"),
            });
        }
        policy.failure_pct = count(pct);
    }
    if let Some(s) = number("CALLBACK_BREAKER_COOL_DOWN_SECONDS")? {
        policy.cool_down = Duration::from_secs(s);
    }
    if let Some(s) = number("CALLBACK_BREAKER_MAX_COOL_DOWN_SECONDS")? {
        policy.max_cool_down = Duration::from_secs(s);
    }
    if let Some(n) = number("CALLBACK_BREAKER_PROBES")? {
        policy.probes = count(n);
    }
    if let Some(s) = number("CALLBACK_BREAKER_RAMP_SECONDS")? {
        policy.ramp = Duration::from_secs(s);
    }
    Ok(Some(policy))
}

/// `CALLBACK_TOKEN_SECRET_ID`, `CALLBACK_TOKEN_URL`, `PARTNER_STATE_TABLE`,
/// `CALLBACK_TOKEN_MAX_LIFETIME_SECONDS` (the longest an access token is used,
/// default 12 h).
fn token_config(timeout: Duration) -> Result<Option<adapters::TokenConfig>, ConfigError> {
    let Ok(secret_id) = std::env::var("CALLBACK_TOKEN_SECRET_ID") else {
        return Ok(None);
    };
    let max_lifetime = match std::env::var("CALLBACK_TOKEN_MAX_LIFETIME_SECONDS") {
        Ok(seconds) => Some(Duration::from_secs(
            seconds
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "CALLBACK_TOKEN_MAX_LIFETIME_SECONDS",
                    reason: format!("{seconds:?} is not a positive number"),
                })?,
        )),
        Err(_) => None,
    };
    Ok(Some(adapters::TokenConfig {
        secret_id,
        token_url: std::env::var("CALLBACK_TOKEN_URL").ok(),
        state_table: std::env::var("PARTNER_STATE_TABLE").ok(),
        max_lifetime,
        timeout,
    }))
}

/// The partner's tokens: from the secret (OAuth2 credentials or a plain
/// token), or the static `CALLBACK_TOKEN`. The secret is read once per cold
/// start; OAuth2 tokens are refreshed as they expire.
///
/// # Errors
/// The secret cannot be read, or nothing is configured.
pub async fn partner_tokens(
    aws: &aws_config::SdkConfig,
    config: &Config,
) -> Result<adapters::PartnerTokens, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(tokens) = &config.tokens {
        return Ok(adapters::PartnerTokens::from_secret(aws, tokens).await?);
    }
    let token = std::env::var("CALLBACK_TOKEN")
        .map_err(|_| "set CALLBACK_TOKEN_SECRET_ID (Secrets Manager) or CALLBACK_TOKEN")?;
    Ok(adapters::PartnerTokens::Static(
        shared::ports::StaticToken::new(token),
    ))
}

/// The batch handler, shared by every invocation of the process.
#[derive(Debug)]
pub struct DispatchHandler<S, P, C, T> {
    dispatcher: Dispatcher<S, P, C, T>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    dead_letter_queue_url: String,
}

/// The message attribute the handler puts on what it moves to the dead-letter
/// queue: a message that carries it and arrives on the callback queue again
/// was redriven by an operator.
pub const DEAD_LETTERED_ATTRIBUTE: &str = "dead_lettered_by";

impl<S, P, C, T> DispatchHandler<S, P, C, T>
where
    S: OrderStore + 'static,
    P: PartnerClient + 'static,
    C: Clock + 'static,
    T: TokenSource + 'static,
{
    pub fn new(
        dispatcher: Dispatcher<S, P, C, T>,
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        dead_letter_queue_url: String,
    ) -> Self {
        Self {
            dispatcher,
            sqs,
            queue_url,
            dead_letter_queue_url,
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
        let Ok(CallbackMessage {
            order_number,
            generation,
        }) = serde_json::from_str(body)
        else {
            tracing::error!(message_id, receive_count, "unreadable callback message");
            return !self.dead_letter(message).await;
        };
        let delivery = Delivery {
            order_number,
            generation,
            message_id: message_id.to_owned(),
            receive_count,
            receipt: message.receipt_handle.clone().unwrap_or_default(),
            redriven: message
                .message_attributes
                .contains_key(DEAD_LETTERED_ATTRIBUTE),
            sent_at: message
                .attributes
                .get("SentTimestamp")
                .and_then(|millis| millis.parse::<i64>().ok())
                .and_then(chrono::DateTime::from_timestamp_millis),
        };
        let span = tracing::info_span!("callback", order_number = %delivery.order_number,
            generation = ?delivery.generation, message_id, receive_count);
        match self
            .dispatcher
            .dispatch(&delivery)
            .instrument(span.clone())
            .await
        {
            Ok((disposition, report)) => {
                span.in_scope(|| log_report(&report));
                match disposition {
                    QueueAction::Delete => false,
                    QueueAction::RetryIn(delay) => {
                        self.retry_in(message, delay).await;
                        true
                    }
                    QueueAction::DeadLetter => !self.dead_letter(message).instrument(span).await,
                    QueueAction::Leave => true,
                }
            }
            Err(DispatchError::UnknownOrder(_)) => {
                span.in_scope(|| tracing::error!("callback message for an unknown order"));
                !self.dead_letter(message).instrument(span).await
            }
            Err(DispatchError::Store(err)) => {
                span.in_scope(|| {
                    tracing::error!(error = %err, cause = ?std::error::Error::source(&err),
                    "order store failure; the message will be delivered again")
                });
                self.retry_in(message, store_backoff(receive_count)).await;
                true
            }
        }
    }

    /// Moves the message to the dead-letter queue: sends a copy there (marked,
    /// so a redrive is recognised); `true` when the original may be deleted.
    /// If the send fails the original stays and comes back: its order already
    /// says `dead_lettered`, so that delivery finishes the move.
    async fn dead_letter(&self, message: &SqsMessage) -> bool {
        let Ok(marker) = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("callback-dispatch")
            .build()
        else {
            return false;
        };
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(message.body.as_deref().unwrap_or_default())
            .message_attributes(DEAD_LETTERED_ATTRIBUTE, marker)
            .send()
            .await;
        match sent {
            Ok(_) => {
                tracing::warn!("callback message moved to the dead-letter queue");
                println!("{}", metrics::line("DeadLettered", None));
                true
            }
            Err(err) => {
                tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(&err),
                    "could not move the message to the dead-letter queue; it will come back");
                self.retry_in(message, Duration::from_secs(5)).await;
                false
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

fn log_report(report: &DeliveryOutcome) {
    let (outcome, latency) = match report {
        DeliveryOutcome::Delivered { latency } => {
            tracing::info!(latency_ms = latency.as_millis(), "callback delivered");
            ("Delivered", Some(*latency))
        }
        DeliveryOutcome::Failed { reason, latency } => {
            tracing::warn!(reason, "callback failed");
            ("Failed", *latency)
        }
        DeliveryOutcome::Retrying {
            reason,
            latency,
            credentials_rejected,
        } => {
            if *credentials_rejected {
                tracing::error!(
                    reason,
                    "the partner rejected our credentials; the callback will be retried"
                );
                println!("{}", metrics::line("PartnerAuthFailed", None));
            } else {
                tracing::warn!(reason, "callback will be retried");
            }
            ("Retried", *latency)
        }
        DeliveryOutcome::DeadLettered { reason } => {
            tracing::error!(reason, "callback retries exhausted");
            // The move to the dead-letter queue counts `DeadLettered`.
            return;
        }
        DeliveryOutcome::Held(why) => {
            tracing::info!(why, "callback held");
            ("Held", None)
        }
        DeliveryOutcome::Skipped(why) => {
            tracing::info!(why, "nothing to send");
            ("Skipped", None)
        }
    };
    println!("{}", metrics::line(outcome, latency));
}
