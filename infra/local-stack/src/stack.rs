//! A running set of functions over freshly provisioned tables and queues,
//! wired the way the template wires them in AWS.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use adapters::webhook_http::HttpWebhookPoster;
use adapters::{
    DynamoBreakerStore, DynamoKeyStore, DynamoOrderStore, HttpPartner, PartnerTokens, S3LabelStore,
    SqsCallbackQueue, TokenConfig,
};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use callback_dispatch::DispatchHandler;
use chrono::Utc;
use order_intake::OrderApi;
use personal_data_sweep::PersonalDataSweep;
use shared::auth::IssuedKey;
use shared::callback::RetryPolicy;
use shared::config::Warehouses;
use shared::dispatch::Dispatcher;
use shared::dispatch::breaker_cache::{CachedBreakerStore, FRESH_FOR};
use shared::domain::Scope;
use shared::notify::{Deliverer, FanOut, Replay, Subscriptions};
use shared::ports::{Clock, SystemClock};
use shared::webhook::{POST_TIMEOUT, Reach, schedule};
use warehouse_events::EventsApi;
use webhook_api::WebhooksApi;
use webhook_fanout::FanOutHandler;

use crate::Error;
use crate::gateway::{self, Function};
use crate::outbox_pipe::{OutboxPipe, PipeConfig};
use crate::provision::{Provisioned, provision, provision_buckets};
use crate::sqs_poller::{self, PollerConfig, SqsFunction};
use crate::stream_mapping::{MappingConfig, StreamMapping};
use crate::template::{MappingSource, Template};

/// The template's mapping from the webhook delivery queue to the dispatcher.
const WEBHOOK_DELIVERIES: &str = "WebhookDeliveries";

/// The endpoints the emulators script exports; without them the SDK would
/// reach for real AWS.
const EMULATOR_ENDPOINTS: [&str; 4] = [
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
];

/// How the callback dispatcher reaches the partner locally. Its `Debug`
/// leaves the token out.
#[derive(Clone)]
pub struct CallbackSettings {
    pub url: String,
    /// The static bearer token, used when `oauth` is `None`.
    pub token: String,
    /// OAuth2 credentials: the dispatcher refreshes its tokens at their
    /// endpoint, as deployed.
    pub oauth: Option<OAuthClient>,
    /// The circuit breaker (on the partner-state table, as deployed); `None`
    /// runs without one.
    pub breaker: Option<shared::callback::breaker::BreakerPolicy>,
    pub timeout: Duration,
    /// Retry delays; `None` keeps the production schedule.
    pub retry_delays: Option<Vec<Duration>>,
    /// Posts in a schedule; `None` keeps the production 8.
    pub max_posts: Option<u32>,
}

impl std::fmt::Debug for CallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSettings")
            .field("url", &self.url)
            .field("oauth", &self.oauth)
            .field("breaker", &self.breaker)
            .field("timeout", &self.timeout)
            .field("retry_delays", &self.retry_delays)
            .field("max_posts", &self.max_posts)
            .finish_non_exhaustive()
    }
}

/// OAuth2 client credentials and the first refresh token (what an operator
/// puts into the secret).
#[derive(Clone)]
pub struct OAuthClient {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// `CALLBACK_TOKEN_MAX_LIFETIME_SECONDS`.
    pub max_lifetime: Option<Duration>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Clients for the emulators and the resources provisioned on them.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The SDK configuration the clients were built from.
    pub aws: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub resources: Provisioned,
    pub warehouses: Warehouses,
    /// How long the API functions trust a key they have read: zero (the
    /// tests: revocations act at once) unless set, as `make run` does.
    pub key_cache: Duration,
    /// How far behind now a page of `GET /apicenter/api/orders` stops: one
    /// second (the tests; DynamoDB Local updates its indexes with the write)
    /// unless set, as `make run` does from `POLL_SETTLE_SECONDS`.
    pub poll_settle: Duration,
    /// Where webhook endpoints may be: `Reach::Internet` (HTTPS, public
    /// addresses) as deployed, unless `WEBHOOKS_LOCAL_NETWORK=1` (`make run`)
    /// or a test allows plain HTTP on this machine.
    pub webhook_reach: Reach,
}

impl Stack {
    /// Provisions the template's resources under `prefix` on the emulators
    /// named by `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`.
    pub async fn provision(prefix: &str, warehouses: Warehouses) -> Result<Self, Error> {
        if let Some(missing) = EMULATOR_ENDPOINTS
            .iter()
            .find(|name| std::env::var_os(name).is_none())
        {
            return Err(Error::Template(format!(
                "{missing} is not set: the local stack needs the emulators; \
                 start it through `make run` / `make test` (infra/local/emulators.sh exec -- …)"
            )));
        }
        let aws = adapters::https::aws_config().await.map_err(Error::aws)?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let s3 = adapters::s3::client(&aws);
        let template = Template::project()?;
        let mut resources = provision(&template, &dynamodb, &sqs, prefix).await?;
        provision_buckets(&template, &s3, prefix, &mut resources).await?;
        Ok(Self {
            aws,
            dynamodb,
            sqs,
            s3,
            resources,
            warehouses,
            key_cache: Duration::ZERO,
            poll_settle: Duration::from_secs(1),
            webhook_reach: Reach::Internet,
        })
    }

    /// The orders table's physical name.
    pub fn orders_table(&self) -> Result<&str, Error> {
        self.resources.table("OrdersTable")
    }

    /// The order history table's physical name.
    pub fn order_history_table(&self) -> Result<&str, Error> {
        self.resources.table("OrderHistoryTable")
    }

    /// The labels bucket's physical name.
    pub fn labels_bucket(&self) -> Result<&str, Error> {
        self.resources.bucket("LabelsBucket")
    }

    pub fn callback_queue_url(&self) -> Result<&str, Error> {
        self.resources.queue_url("CallbackQueue")
    }

    pub fn dead_letter_queue_url(&self) -> Result<&str, Error> {
        self.resources.queue_url("CallbackDeadLetterQueue")
    }

    /// The API keys table's store.
    pub fn keys(&self) -> Result<DynamoKeyStore, Error> {
        Ok(DynamoKeyStore::new(
            self.dynamodb.clone(),
            self.resources.table("ApiKeysTable")?,
        ))
    }

    /// Stores a key for `scope`: `key` when given (fixed demo keys), else a new
    /// random one. The plain key is in the result and nowhere else.
    pub async fn issue_key(
        &self,
        scope: Scope,
        key: Option<String>,
        signed: bool,
    ) -> Result<IssuedKey, Error> {
        self.issue_key_with_prefixes(scope, key, signed, &[]).await
    }

    /// [`Stack::issue_key`] for a client key limited to order numbers under
    /// `order_prefixes` (`orderctl keys create --order-prefix`).
    pub async fn issue_key_with_prefixes(
        &self,
        scope: Scope,
        key: Option<String>,
        signed: bool,
        order_prefixes: &[&str],
    ) -> Result<IssuedKey, Error> {
        let now = chrono::Utc::now();
        // A fixed key that `make run` stored on an earlier start is still there.
        if let Some(fixed) = &key {
            let hash = shared::auth::key::hash_key(fixed);
            let stored = self
                .keys()?
                .list()
                .await
                .map_err(|err| Error::Aws(Box::new(err)))?
                .into_iter()
                .find(|record| record.key_hash == hash);
            if let Some(record) = stored {
                return Ok(IssuedKey {
                    key: fixed.clone(),
                    record,
                });
            }
        }
        let mut issued = match key {
            Some(key) => shared::auth::issue_with(key, scope, signed, now),
            None => shared::auth::issue(scope, signed, now),
        }
        .map_err(|err| Error::Aws(Box::new(err)))?;
        issued.record.order_prefixes = order_prefixes.iter().map(|p| (*p).to_owned()).collect();
        self.keys()?
            .put(&issued.record)
            .await
            .map_err(|err| Error::Aws(Box::new(err)))?;
        Ok(issued)
    }

    /// The labels bucket's store.
    pub fn labels(&self) -> Result<S3LabelStore, Error> {
        Ok(S3LabelStore::new(self.s3.clone(), self.labels_bucket()?))
    }

    /// The orders table's store.
    pub fn store(&self) -> Result<DynamoOrderStore, Error> {
        Ok(DynamoOrderStore::new(
            self.dynamodb.clone(),
            self.orders_table()?,
            self.order_history_table()?,
        ))
    }

    /// The webhooks table's store (endpoints, deliveries, the event log).
    pub fn webhooks(&self) -> Result<DynamoWebhooks, Error> {
        Ok(DynamoWebhooks::new(
            self.dynamodb.clone(),
            self.resources.table("WebhooksTable")?,
            self.webhook_reach,
        ))
    }

    /// The webhook delivery queue.
    pub fn webhook_queue(&self) -> Result<SqsDeliveryQueue, Error> {
        Ok(SqsDeliveryQueue::new(
            self.sqs.clone(),
            self.resources.queue_url("WebhookDeliveryQueue")?,
        ))
    }

    /// The HTTP API: the routes the template gives the warehouse-events
    /// function and the webhook-api function go there, everything else to
    /// the order API.
    pub fn api(&self) -> Result<Function, Error> {
        let orders = Arc::new(
            OrderApi::with_ports(
                self.store()?,
                self.labels()?,
                self.keys()?,
                self.warehouses.clone(),
                SystemClock,
            )
            .with_key_cache(self.key_cache)
            .with_poll_settle(self.poll_settle),
        );
        let events = Arc::new(
            EventsApi::with_ports(self.store()?, self.labels()?, self.keys()?, SystemClock)
                .with_key_cache(self.key_cache),
        );
        let webhooks = self.webhooks()?;
        let hooks = Arc::new(WebhooksApi::new(
            Subscriptions::new(webhooks.clone(), webhooks.clone(), self.webhook_reach),
            Replay::new(
                webhooks.clone(),
                webhooks.clone(),
                webhooks,
                self.webhook_queue()?,
            ),
            self.keys()?,
            SystemClock,
        ));
        Ok(Arc::new(move |request| {
            let orders = Arc::clone(&orders);
            let events = Arc::clone(&events);
            let hooks = Arc::clone(&hooks);
            Box::pin(async move {
                let path = request.uri().path();
                let Ok(response) = if warehouse_events::serves(path) {
                    events.handle(request).await
                } else if webhook_api::serves(path) {
                    hooks.handle(request).await
                } else {
                    orders.handle(request).await
                };
                response
            })
        }))
    }

    /// Serves the API on `listener` (API Gateway's part) until dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> Result<(), Error> {
        gateway::serve(listener, self.api()?).await;
        Ok(())
    }

    /// The partner credentials' secret on the emulator (the template's
    /// `CallbackTokenSecretName`): created from `settings` unless it exists,
    /// so dispatchers started on one stack share it as a fleet does.
    pub async fn partner_secret(&self, settings: &CallbackSettings) -> Result<String, Error> {
        let secret_id = format!("{}-credentials", self.resources.table("PartnerStateTable")?);
        let value = match &settings.oauth {
            Some(oauth) => serde_json::json!({
                "client_id": oauth.client_id,
                "client_secret": oauth.client_secret,
                "refresh_token": oauth.refresh_token,
            })
            .to_string(),
            None => settings.token.clone(),
        };
        let created = aws_sdk_secretsmanager::Client::new(&self.aws)
            .create_secret()
            .name(&secret_id)
            .secret_string(value)
            .send()
            .await;
        // A secret left by an earlier run is as good as a new one.
        adapters::sdk::applied(created, CreateSecretError::is_resource_exists_exception)
            .map_err(Error::aws)?;
        Ok(secret_id)
    }

    /// The callback dispatcher, as the SQS event source mapping invokes it:
    /// its token comes from the secret, as deployed.
    pub async fn dispatcher(&self, settings: &CallbackSettings) -> Result<SqsFunction, Error> {
        // The lease from the timeout by the deployed rule (callback-dispatch's too).
        let mut policy = RetryPolicy::for_partner_timeout(settings.timeout);
        if let Some(delays) = &settings.retry_delays {
            policy.delays.clone_from(delays);
        }
        if let Some(max_posts) = settings.max_posts {
            policy.max_posts = max_posts;
        }
        let partner = HttpPartner::new(
            &settings.url,
            settings.timeout.min(Duration::from_secs(3)),
            settings.timeout,
        )
        .map_err(|err| Error::Template(format!("callback settings: {err}")))?;
        let tokens = PartnerTokens::from_secret(
            &self.aws,
            &TokenConfig {
                secret_id: self.partner_secret(settings).await?,
                token_url: settings.oauth.as_ref().map(|o| o.token_url.clone()),
                state_table: Some(self.resources.table("PartnerStateTable")?.to_owned()),
                max_lifetime: settings.oauth.as_ref().and_then(|o| o.max_lifetime),
                timeout: settings.timeout,
            },
        )
        .await
        .map_err(|err| Error::Template(format!("partner credentials: {err}")))?;
        let mut dispatcher = Dispatcher::new(
            self.store()?,
            partner,
            tokens,
            SystemClock,
            self.warehouses.clone(),
            policy,
        );
        if let Some(breaker) = &settings.breaker {
            dispatcher = dispatcher.with_breaker(
                Arc::new(CachedBreakerStore::new(
                    Arc::new(DynamoBreakerStore::new(
                        self.dynamodb.clone(),
                        self.resources.table("PartnerStateTable")?,
                    )),
                    FRESH_FOR,
                )),
                breaker.clone(),
                callback_dispatch::metrics::breaker,
            );
        }
        let handler = Arc::new(DispatchHandler::new(
            dispatcher,
            SqsCallbackQueue::new(
                self.sqs.clone(),
                self.callback_queue_url()?,
                self.dead_letter_queue_url()?,
            ),
        ));
        let timeout = function_timeout("CallbackDispatchFunction")?;
        Ok(Arc::new(move |event| {
            let handler = Arc::clone(&handler);
            let deadline = Utc::now() + timeout;
            Box::pin(handler.handle_until(event, Some(deadline)))
        }))
    }

    /// The outbox pipe (the template's `CallbackOutboxPipe`): the orders
    /// table's stream to the callback queue, as EventBridge Pipes plays it in AWS.
    pub fn outbox_pipe(&self, checkpoint: Option<&Path>) -> Result<OutboxPipe, Error> {
        let mut config = PipeConfig::callback_outbox(&self.resources)?;
        if let Some(path) = checkpoint {
            config = config.with_checkpoint(path);
        }
        OutboxPipe::new(&self.aws, config)
    }

    /// The webhook fan-out (the template's `WebhookFanOutFunction`) fed by a
    /// second reader of the orders table's stream, as the mapping
    /// `WebhookOrderChanges` feeds it in AWS. Call `run` on it.
    pub fn webhook_fanout(&self, checkpoint: Option<&Path>) -> Result<StreamMapping, Error> {
        let mut config = MappingConfig::webhook_order_changes(&self.resources)?;
        if let Some(path) = checkpoint {
            config = config.with_checkpoint(path);
        }
        let webhooks = self.webhooks()?;
        let handler = Arc::new(FanOutHandler::new(FanOut::new(
            webhooks.clone(),
            webhooks.clone(),
            webhooks,
            self.webhook_queue()?,
        )));
        StreamMapping::new(
            &self.aws,
            config,
            Arc::new(move |event| {
                let handler = Arc::clone(&handler);
                Box::pin(async move { handler.handle(event).await })
            }),
        )
    }

    /// The webhook dispatcher (the template's `WebhookDispatchFunction`), as
    /// its SQS mapping invokes it: it posts with the production schedule and
    /// hides a message for its next try itself (ChangeMessageVisibility).
    pub fn webhook_dispatcher(&self) -> Result<SqsFunction, Error> {
        let webhooks = self.webhooks()?;
        let poster = HttpWebhookPoster::new(self.webhook_reach)
            .map_err(|err| Error::Template(format!("webhook poster: {err}")))?;
        let handler = Arc::new(webhook_dispatch::DispatchHandler::new(
            Deliverer::new(
                webhooks.clone(),
                webhooks,
                poster,
                SystemClock,
                schedule(POST_TIMEOUT),
            ),
            self.webhook_queue()?,
        ));
        let timeout = function_timeout("WebhookDispatchFunction")?;
        Ok(Arc::new(move |event| {
            let handler = Arc::clone(&handler);
            let deadline = Utc::now() + timeout;
            Box::pin(async move { handler.handle_until(event, Some(deadline)).await })
        }))
    }

    /// Polls the webhook delivery queue and runs the webhook dispatcher until
    /// dropped, with the template's batch size and `WebhookConcurrency`.
    pub async fn run_webhook_dispatcher(&self) -> Result<(), Error> {
        let template = Template::project()?;
        let mapping = template.mapping(WEBHOOK_DELIVERIES)?;
        let MappingSource::Queue { queue } = &mapping.source else {
            return Err(Error::Template(format!(
                "{WEBHOOK_DELIVERIES}: not a queue mapping"
            )));
        };
        let concurrency = match &mapping.maximum_concurrency {
            Some(value) => template.resolve_number(value)?,
            None => 1,
        };
        let mut config = PollerConfig::new(
            self.resources.queue_url(queue)?,
            self.resources.queue_arn(queue)?,
            self.region(),
        )
        .with_concurrency(usize::try_from(concurrency).unwrap_or(1));
        if let Some(size) = mapping.batch_size {
            config.batch_size = i32::try_from(size.min(10)).unwrap_or(10);
        }
        // A SIGKILLed dispatcher's messages come back after this, not the
        // queue's 180 s, as the callback poller's do.
        config.visibility_timeout = visibility_from_env()?;
        sqs_poller::run(self.sqs.clone(), config, self.webhook_dispatcher()?).await;
        Ok(())
    }

    /// The region the stack's clients talk to (an SQS event source names it).
    pub fn region(&self) -> String {
        self.sqs
            .config()
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string)
    }

    /// Polls the callback queue and runs the dispatcher until dropped.
    pub async fn run_dispatcher(&self, settings: &CallbackSettings) -> Result<(), Error> {
        let concurrency = Template::project()?.number_parameter("DispatchConcurrency")?;
        let config = PollerConfig::new(
            self.callback_queue_url()?,
            self.resources.queue_arn("CallbackQueue")?,
            self.region(),
        )
        .with_concurrency(usize::try_from(concurrency).unwrap_or(1));
        let config = PollerConfig {
            visibility_timeout: visibility_from_env()?,
            ..config
        };
        sqs_poller::run(self.sqs.clone(), config, self.dispatcher(settings).await?).await;
        Ok(())
    }

    /// The scheduled redaction (the template's `PersonalDataSweepFunction`)
    /// over this stack, reading the time from `clock` (a test moves it past
    /// the retention), with the template's `PersonalDataRetentionDays`.
    pub fn personal_data_sweep<C: Clock>(
        &self,
        clock: C,
    ) -> Result<PersonalDataSweep<DynamoOrderStore, S3LabelStore, C>, Error> {
        let days = Template::project()?.number_parameter("PersonalDataRetentionDays")?;
        let retention = personal_data_sweep::retention_days(Some(days.to_string()))
            .map_err(|err| Error::Template(err.to_string()))?;
        Ok(PersonalDataSweep::with_ports(
            self.store()?,
            self.labels()?,
            clock,
            retention,
        ))
    }

    /// Runs the sweep every `every` (the template's schedule: hourly) until
    /// dropped, as EventBridge Scheduler invokes the function in AWS.
    pub async fn run_personal_data_sweep(&self, every: Duration) -> Result<(), Error> {
        let sweep = self.personal_data_sweep(SystemClock)?;
        loop {
            if let Err(err) = sweep.run().await {
                tracing::error!(%err, "the personal-data sweep failed; the next run tries again");
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// `LOCAL_VISIBILITY_TIMEOUT_SECONDS`: the visibility timeout of received
/// callback and webhook messages (default: each queue's, 360 s and 180 s).
fn visibility_from_env() -> Result<Option<i32>, Error> {
    std::env::var("LOCAL_VISIBILITY_TIMEOUT_SECONDS")
        .ok()
        .map(|seconds| {
            seconds.parse::<i32>().map_err(|_| {
                Error::Template(format!(
                    "LOCAL_VISIBILITY_TIMEOUT_SECONDS={seconds:?} is not a number of seconds"
                ))
            })
        })
        .transpose()
}

/// The warehouses of the local configuration, `infra/local/warehouses.json`.
pub fn local_warehouses() -> Result<Warehouses, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../local/warehouses.json");
    let json = std::fs::read_to_string(&path)
        .map_err(|err| Error::Template(format!("{}: {err}", path.display())))?;
    Ok(Warehouses::from_json(&json)?)
}

/// A function's timeout from the template: each batch a local poller hands
/// it ends by then, as a Lambda invocation does, so the dispatchers' "no
/// post without time to record it" runs locally and in the soak too.
fn function_timeout(logical_id: &str) -> Result<chrono::Duration, Error> {
    let timeout = Template::project()?.function(logical_id)?.timeout;
    chrono::Duration::from_std(timeout)
        .map_err(|err| Error::Template(format!("{logical_id}'s timeout: {err}")))
}
