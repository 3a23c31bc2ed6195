//! The webhook delivery path on the emulators, for tests: the template's
//! `WebhooksTable` and `WebhookDeliveryQueue` on DynamoDB Local and moto,
//! endpoints made and read through the `webhook-api` handler with an ERP
//! key, as an ERP does, events published by
//! the `FanOut` use case onto the real queue, and the queue drained into
//! `webhook_dispatch::DispatchHandler` by the local stand-in for Lambda's
//! event source mapping, posting with the real `HttpWebhookPoster`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::DynamoKeyStore;
use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use adapters::webhook_http::HttpWebhookPoster;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use lambda_http::Body;
use lambda_http::http::Method;
use local_stack::Stack;
use local_stack::sqs_poller::{self, PollerConfig, SqsFunction};
use serde_json::{Value, json};
use shared::callback::retry::RetryPolicy;
use shared::domain::OrderStatus;
use shared::domain::Scope;
use shared::memory::MemoryMetrics;
use shared::notify::{Deliverer, ENDPOINTS_TTL, FanOut, Published, Replay, Subscriptions};
use shared::ports::Clock;
use shared::record::callback::CallbackStatus;
use shared::record::progress::Progress;
use shared::webhook::{Delivery, DeliveryTicket, OrderState, Reach};
use webhook_dispatch::DispatchHandler;

/// The client whose endpoints and orders the tests use.
pub const CLIENT: &str = "20";

/// The real clock moved by a test: `now` is the system's time plus an
/// offset the test sets, so real waits (queue visibility, timeouts) and
/// skipped days mix.
#[derive(Debug, Clone, Default)]
pub struct ShiftedClock(Arc<Mutex<chrono::Duration>>);

impl ShiftedClock {
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().expect("clock") += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().expect("clock")
    }
}

type Webhooks = DynamoWebhooks;
type Api = webhook_api::WebhooksApi<
    Webhooks,
    Webhooks,
    Webhooks,
    SqsDeliveryQueue,
    ShiftedClock,
    DynamoKeyStore,
>;

/// The routes' path.
const HOOKS: &str = "/apicenter/api/webhooks";

/// An endpoint as its ERP got it from `POST /apicenter/api/webhooks`. Its
/// `Debug` leaves the secret out.
pub struct Subscribed {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for Subscribed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribed")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One test's webhook resources and the functions over them.
pub struct Rig {
    pub stack: Stack,
    /// The use case under the routes, for what the API does not take (a
    /// rotation at another time).
    pub subscriptions: Subscriptions<Webhooks, Webhooks>,
    api: Api,
    /// Client [`CLIENT`]'s ERP key.
    erp_key: String,
    pub clock: ShiftedClock,
    /// What the dispatcher counted.
    pub metrics: Arc<MemoryMetrics>,
    fan_out: FanOut<Webhooks, Webhooks, Webhooks, SqsDeliveryQueue>,
    poller: PollerConfig,
    dispatch: SqsFunction,
    batches: Arc<Mutex<Vec<Batch>>>,
}

/// The dispatcher running in the background ([`Rig::run_dispatcher`]).
#[derive(Debug)]
pub struct Dispatcher {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Dispatcher {
    /// Stops polling after the receive in flight, and returns once its
    /// batches are handled: no message is left taken and unhandled.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the dispatcher stops");
    }
}

/// One batch the dispatcher was handed: when, and which deliveries.
#[derive(Debug, Clone)]
pub struct Batch {
    pub at: Instant,
    pub tickets: Vec<DeliveryTicket>,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("stack", &self.stack)
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl Rig {
    /// Fresh resources; endpoints and deliveries reach as far as `reach`
    /// allows (`LocalNetwork`: `make run`; `Internet`: deployed), and
    /// deliveries retry on `policy`.
    pub async fn new(reach: Reach, policy: RetryPolicy) -> Self {
        Self::with_deliverer_dynamodb(reach, policy, None).await
    }

    /// [`Rig::new`], the deliverer's DynamoDB calls made with `dynamodb`
    /// (through a fault proxy) when given.
    pub async fn with_deliverer_dynamodb(
        reach: Reach,
        policy: RetryPolicy,
        dynamodb: Option<aws_sdk_dynamodb::Client>,
    ) -> Self {
        let stack = crate::provision_stack().await;
        let table = stack
            .resources
            .table("WebhooksTable")
            .expect("the webhooks table");
        let queue_url = stack
            .resources
            .queue_url("WebhookDeliveryQueue")
            .expect("the delivery queue")
            .to_owned();
        let queue_arn = stack
            .resources
            .queue_arn("WebhookDeliveryQueue")
            .expect("the delivery queue")
            .to_owned();
        let webhooks = DynamoWebhooks::new(stack.dynamodb.clone(), table, reach);
        let queue = SqsDeliveryQueue::new(stack.sqs.clone(), &queue_url);
        let clock = ShiftedClock::default();
        let metrics = Arc::new(MemoryMetrics::default());
        let api = webhook_api::WebhooksApi::new(
            Subscriptions::new(webhooks.clone(), webhooks.clone(), reach),
            Replay::new(
                webhooks.clone(),
                webhooks.clone(),
                webhooks.clone(),
                queue.clone(),
            ),
            stack.keys().expect("the keys table"),
            clock.clone(),
        );
        let erp_key = crate::issue_key(&stack, Scope::Client(CLIENT.to_owned())).await;
        let delivered_through = dynamodb.map_or_else(
            || webhooks.clone(),
            |client| DynamoWebhooks::new(client, table, reach),
        );
        let deliverer = Deliverer::new(
            delivered_through.clone(),
            delivered_through,
            HttpWebhookPoster::new(reach).expect("an HTTP client"),
            clock.clone(),
            policy,
        );
        let handler =
            Arc::new(DispatchHandler::new(deliverer, queue.clone()).with_metrics(metrics.clone()));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let recording = Arc::clone(&batches);
        let dispatch: SqsFunction = Arc::new(move |event: SqsEvent| {
            let tickets = event
                .records
                .iter()
                .filter_map(|message| serde_json::from_str(message.body.as_deref()?).ok())
                .collect();
            recording.lock().expect("batches").push(Batch {
                at: Instant::now(),
                tickets,
            });
            let handler = Arc::clone(&handler);
            Box::pin(async move { handler.handle(event).await })
        });
        let region = stack.region();
        Self {
            subscriptions: Subscriptions::new(webhooks.clone(), webhooks.clone(), reach),
            // Endpoints kept as the Lambda keeps them, by the rig's clock.
            fan_out: FanOut::new(webhooks.clone(), webhooks.clone(), webhooks, queue)
                .with_endpoints_kept(ENDPOINTS_TTL, clock.clone()),
            poller: PollerConfig::new(queue_url, queue_arn, region),
            api,
            erp_key,
            stack,
            clock,
            metrics,
            dispatch,
            batches,
        }
    }

    /// The batches handed to the dispatcher so far.
    #[must_use]
    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().expect("batches").clone()
    }

    /// Messages per receive (10 as the template's mapping; 1 hands the
    /// dispatcher one delivery at a time).
    pub fn set_batch_size(&mut self, size: i32) {
        self.poller.batch_size = size;
    }

    /// The ERP's request to the webhook routes: the status and `data`.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.erp_key));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map_or(Body::Empty, |body| Body::from(body.to_string()));
        let response = self
            .api
            .handle(request.body(body).expect("a request"))
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let answer: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (status, answer["data"].clone())
    }

    /// `POST /apicenter/api/webhooks` for `url`, every event type.
    pub async fn subscribe(&self, url: &str) -> Subscribed {
        let (status, data) = self
            .request(Method::POST, HOOKS, Some(json!({ "url": url })))
            .await;
        assert_eq!(status, 201, "{data:#}");
        Subscribed {
            id: data["id"].as_str().expect("an id").to_owned(),
            secret: data["secret"].as_str().expect("a secret").to_owned(),
        }
    }

    /// `POST …/{id}/rotate-secret`: the new secret.
    pub async fn rotate(&self, endpoint: &Subscribed) -> String {
        let path = format!("{HOOKS}/{}/rotate-secret", endpoint.id);
        let (status, data) = self.request(Method::POST, &path, None).await;
        assert_eq!(status, 200, "{data:#}");
        data["secret"].as_str().expect("a secret").to_owned()
    }

    /// `GET …/{id}`: the endpoint and its recent deliveries as its ERP sees
    /// them.
    pub async fn status(&self, endpoint: &Subscribed) -> Value {
        let path = format!("{HOOKS}/{}", endpoint.id);
        let (status, data) = self.request(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{data:#}");
        data
    }

    /// The endpoint's stored deliveries, newest first, with what the API
    /// does not show (the next attempt).
    pub async fn deliveries(&self, endpoint: &Subscribed) -> Vec<Delivery> {
        self.deliveries_of(&endpoint.id).await
    }

    /// The stored deliveries of the endpoint `id`, newest first.
    pub async fn deliveries_of(&self, id: &str) -> Vec<Delivery> {
        self.subscriptions
            .get(CLIENT, id)
            .await
            .expect("the endpoint reads back")
            .1
    }

    /// What the stream's fan-out does with the write that turned `before`
    /// into `after`.
    pub async fn publish(&self, before: Option<&OrderState>, after: &OrderState) -> Published {
        self.fan_out
            .publish(before, after)
            .await
            .expect("the events are published")
    }

    /// One receive of the event source mapping: a batch (up to 10, waiting
    /// up to 1 s) handed to the dispatcher, its handled messages deleted.
    /// Returns how many messages the batch had.
    pub async fn dispatch_once(&self) -> usize {
        sqs_poller::poll_once(&self.stack.sqs, &self.poller, &self.dispatch)
            .await
            .expect("the queue answers")
    }

    /// Polls batch after batch until `done` holds; fails after `within`.
    pub async fn dispatch_until(&self, within: Duration, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not done within {within:?}"
            );
            self.dispatch_once().await;
        }
    }

    /// Polls batch after batch until the queue holds nothing, visible or
    /// hidden; fails after `within`.
    pub async fn drain(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.queued().await != (0, 0) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the delivery queue still holds {:?} (visible, hidden) after {within:?}",
                self.queued().await
            );
            self.dispatch_once().await;
        }
    }

    /// The event source mapping with one poller (the least concurrency
    /// Lambda would give), in the background until the task is aborted.
    #[must_use]
    pub fn run_dispatcher(&self) -> Dispatcher {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sqs_poller::run_until(
            self.stack.sqs.clone(),
            self.poller.clone(),
            Arc::clone(&self.dispatch),
            async move {
                let _ = stopped.await;
            },
        ));
        Dispatcher { stop, task }
    }

    /// Messages on the delivery queue: (visible, hidden).
    pub async fn queued(&self) -> (u64, u64) {
        let attributes = self
            .stack
            .sqs
            .get_queue_attributes()
            .queue_url(&self.poller.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("the queue answers")
            .attributes
            .unwrap_or_default();
        let count = |name: QueueAttributeName| {
            attributes
                .get(&name)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

/// An order of client [`CLIENT`] as intake stores it: pending, version 1,
/// its callback waiting for the shipment.
#[must_use]
pub fn new_order(order_number: &str) -> OrderState {
    let now = Utc::now();
    OrderState {
        order_number: order_number.to_owned(),
        client_code: CLIENT.to_owned(),
        status: OrderStatus::Pending,
        version: 1,
        created_at: now,
        updated_at: now,
        progress: Progress::default(),
        callback_status: CallbackStatus::AwaitingShipment,
        callback_reason: None,
        callback_attempts: 0,
        partner_message: None,
    }
}

/// `order` after one more write that `change` describes: its version one
/// higher and its time a millisecond later at least.
#[must_use]
pub fn write(order: &OrderState, change: impl FnOnce(&mut OrderState)) -> OrderState {
    let mut after = order.clone();
    change(&mut after);
    after.version += 1;
    after.updated_at = Utc::now().max(order.updated_at + chrono::Duration::milliseconds(1));
    after
}

/// Writes of one order that make every event type once, in this order:
/// accepted, allocated, short, picked, packed, shipped, handed over,
/// callback delivered, failed, dead-lettered, cancelled. Each pair is the
/// order before (`None`: created) and after the write.
#[must_use]
pub fn every_event_type(order_number: &str) -> Vec<(Option<OrderState>, OrderState)> {
    let created = new_order(order_number);
    let mut writes = vec![(None, created.clone())];
    let mut current = created;
    let steps: [fn(&mut OrderState); 10] = [
        |o| o.status = OrderStatus::Allocated,
        |o| {
            o.status = OrderStatus::Shortage;
            o.progress.shortage_message = Some("2 of SKU-1 missing".into());
        },
        |o| o.status = OrderStatus::Picked,
        |o| o.status = OrderStatus::Packed,
        |o| {
            o.status = OrderStatus::Shipped;
            o.progress.tracking_number = Some("YT4567890123CN".into());
            o.progress.logistic_provider_code = Some("jito".into());
        },
        |o| {
            o.status = OrderStatus::HandedOver;
            o.callback_status = CallbackStatus::Pending;
        },
        |o| o.callback_status = CallbackStatus::Delivered,
        |o| o.callback_status = CallbackStatus::Failed,
        |o| o.callback_status = CallbackStatus::DeadLettered,
        |o| o.status = OrderStatus::Cancelled,
    ];
    for step in steps {
        let next = write(&current, step);
        writes.push((Some(current), next.clone()));
        current = next;
    }
    writes
}

/// The webhook store over a freshly provisioned stack's `WebhooksTable`
/// (DynamoDB Local): what the contract and model tests run on.
pub async fn dynamo_webhooks() -> DynamoWebhooks {
    let stack = crate::provision_stack().await;
    let table = stack
        .resources
        .table("WebhooksTable")
        .expect("the webhooks table");
    DynamoWebhooks::new(stack.dynamodb.clone(), table, Reach::LocalNetwork)
}
