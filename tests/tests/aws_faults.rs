//! Faults at the AWS boundary (issue 27): the order API served as the
//! intake function runs it (its AWS budget, `adapters::https::AwsBudget`),
//! its DynamoDB calls going through the fault proxy (`infra/aws-faults`) to
//! DynamoDB Local. What the ERP sees when DynamoDB stalls, throttles, or
//! drops a connection after a write was done; what becomes of a callback or
//! a webhook delivery when its dispatcher's AWS calls fail.

use std::time::{Duration, Instant};

use adapters::https::AwsBudget;
use aws_faults::{Fault, Rule};
use integration_tests::faulty_aws::{FaultyService, Service};
use integration_tests::partner::Partner;
use integration_tests::webhook_receiver::{Receiver, Reply};
use integration_tests::webhooks::{Rig, new_order};
use integration_tests::{
    TestApp, issue_key, oauth_callback_settings, provision_stack, sample_order, scan,
    stored_labels, test_callback_settings,
};
use local_stack::Stack;
use serde_json::Value;
use shared::callback::retry::RetryPolicy;
use shared::domain::Scope;
use shared::webhook::{DeliveryStatus, POST_TIMEOUT, Reach, schedule};
use tokio::net::TcpListener;

/// The HTTP functions' Lambda timeout (the template's Globals): the intake
/// function's AWS budget is derived from it, and it must answer before it.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(10);

/// The sample order's number.
const ORDER_NUMBER: &str = "mabang-test002";

/// The order API on a free port, one service's calls through a fault proxy.
struct FaultyApp {
    base_url: String,
    /// The stack's clients straight to the emulators, to read what is stored.
    stack: Stack,
    key: String,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultyApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An answer: status, `Retry-After`, JSON body, and how long it took.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

impl FaultyApp {
    /// The order API within the intake function's budget, `service`'s calls
    /// through a fresh proxy; the proxy, and the API.
    async fn through(service: Service) -> (FaultyService, Self) {
        Self::through_within(service, AwsBudget::within(LAMBDA_TIMEOUT)).await
    }

    /// [`FaultyApp::through`] within `budget`.
    async fn through_within(service: Service, budget: AwsBudget) -> (FaultyService, Self) {
        let proxy = FaultyService::start(service).await;
        let stack = provision_stack().await;
        let key = issue_key(&stack, Scope::Client("20".into())).await;
        let aws = proxy.aws(budget).await;
        let mut faulty = stack.clone();
        match service {
            Service::DynamoDb => faulty.dynamodb = aws_sdk_dynamodb::Client::new(&aws),
            Service::S3 => faulty.s3 = adapters::s3::client(&aws),
            other => panic!("the order API's {other:?} calls are not proxied here"),
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base_url = format!("http://{}", listener.local_addr().expect("bound"));
        let server = tokio::spawn(async move {
            faulty.serve(listener).await.expect("serving");
        });
        let app = Self {
            base_url,
            stack,
            key,
            http: adapters::https::reqwest_builder()
                .and_then(|builder| Ok(builder.build()?))
                .expect("an HTTP client"),
            server,
        };
        (proxy, app)
    }

    /// Posts the sample order as the ERP does; fails the test when no answer
    /// comes before the function's Lambda timeout (API Gateway would answer
    /// its own 5xx then).
    async fn post_sample(&self) -> Answer {
        self.post(&sample_order()).await
    }

    async fn post(&self, order: &Value) -> Answer {
        self.send(reqwest::Method::POST, "/apicenter/api/order", Some(order))
            .await
    }

    /// A request to `path` with the ERP's key, as [`FaultyApp::post`].
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let started = Instant::now();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = request.send();
        let response = tokio::time::timeout(LAMBDA_TIMEOUT, sent)
            .await
            .unwrap_or_else(|_| {
                panic!("no answer within the function's Lambda timeout ({LAMBDA_TIMEOUT:?})")
            })
            .expect("the API answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            retry_after,
            body,
            took: started.elapsed(),
        }
    }

    /// The order numbers stored in the orders table, read past the proxy.
    async fn stored_orders(&self) -> Vec<String> {
        scan(
            &self.stack,
            self.stack.orders_table().expect("orders table"),
        )
        .await
        .iter()
        .filter_map(|item| item.get("order_number")?.as_s().ok().cloned())
        .collect()
    }

    /// The keys of the objects in the labels bucket, read past the proxy.
    async fn stored_labels(&self) -> Vec<String> {
        stored_labels(&self.stack).await
    }
}

/// The sample order with a small inline label.
fn sample_with_label() -> Value {
    let mut order = sample_order();
    order["logistics_provider"]["label_base64"] = Value::from("JVBERi0xLjcKJSDi48/TCg==");
    order
}

#[tokio::test]
async fn an_order_is_answered_503_with_retry_after_within_its_budget_while_dynamodb_stalls() {
    let (proxy, app) = FaultyApp::through(Service::DynamoDb).await;
    proxy.inject(Rule::on_every_operation(Fault::Stall));

    let stalled = app.post_sample().await;

    assert_eq!(stalled.status, 503, "{stalled:?}");
    assert!(stalled.retry_after.is_some(), "{stalled:?}");
    assert!(stalled.took < LAMBDA_TIMEOUT, "{stalled:?}");
    // The ERP's retry, once DynamoDB answers again, creates the order.
    proxy.heal();
    let retried = app.post_sample().await;
    assert!(matches!(retried.status, 200 | 201), "{retried:?}");
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
}

#[tokio::test]
async fn a_throttled_write_is_retried_and_the_order_lands_once() {
    let (proxy, app) = FaultyApp::through(Service::DynamoDb).await;
    proxy.inject(
        Rule::on(
            "PutItem",
            Fault::dynamodb("ProvisionedThroughputExceededException"),
        )
        .times(2),
    );

    let created = app.post_sample().await;

    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["data"]["order_number"], ORDER_NUMBER);
    assert_eq!(proxy.faulted("PutItem"), 2);
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
}

#[tokio::test]
async fn a_write_answered_500_is_retried_and_the_order_lands_once() {
    let (proxy, app) = FaultyApp::through(Service::DynamoDb).await;
    proxy.inject(Rule::on("PutItem", Fault::dynamodb("InternalServerError")).times(1));
    proxy.inject(Rule::on("PutItem", Fault::http_500()).times(1));

    let created = app.post_sample().await;

    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(proxy.faulted("PutItem"), 2);
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
}

#[tokio::test]
async fn a_reset_after_the_write_was_forwarded_neither_duplicates_nor_loses_the_order() {
    let (proxy, app) = FaultyApp::through(Service::DynamoDb).await;
    // Both writes of an intake (the request line, then the order's item)
    // are done by DynamoDB and their answers lost.
    proxy.inject(Rule::on("PutItem", Fault::ResetAfterForward).times(2));

    let first = app.post_sample().await;

    // The SDK retries; the retried conditional write finds the order it wrote
    // and answers with it: never a 500, never a second order.
    assert!(matches!(first.status, 200 | 201), "{first:?}");
    assert_eq!(first.body["data"]["order_number"], ORDER_NUMBER);
    assert_eq!(proxy.faulted("PutItem"), 2);
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
    // The ERP's retry gets the stored result.
    let retried = app.post_sample().await;
    assert_eq!(retried.status, 200, "{retried:?}");
    assert_eq!(retried.body["data"]["order_number"], ORDER_NUMBER);
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
}

/// A callback replay is a route a repeat would act on again, so a signed
/// one spends its signature first (the replay guard).
#[tokio::test]
async fn a_signed_replay_whose_signature_record_lost_its_answer_is_judged_not_refused_as_its_own_repeat()
 {
    let (proxy, app) = FaultyApp::through(Service::DynamoDb).await;
    assert_eq!(app.post_sample().await.status, 201);
    let signing = app
        .stack
        .issue_key(Scope::Client("20".into()), None, true)
        .await
        .expect("a signing key");
    let secret = signing.record.signing_secret.clone().expect("a secret");
    // The record that spends the request's signature is done by DynamoDB
    // and its answer lost: the SDK sends it again.
    proxy.inject(
        Rule::on("PutItem", Fault::ResetAfterForward)
            .containing("spent#")
            .times(1),
    );
    let path = format!("/apicenter/api/order/{ORDER_NUMBER}/callback/retry");
    let timestamp = chrono::Utc::now().timestamp();

    let answer = app
        .http
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(&signing.key)
        .header("x-signature-timestamp", timestamp.to_string())
        .header(
            "x-signature",
            shared::auth::signature::sign(&secret, timestamp, "POST", &path, b""),
        )
        .send()
        .await
        .expect("the API answers");

    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!(proxy.faulted("PutItem"), 1, "{status} {body}");
    // Answered on the order's merits: its callback is not due yet.
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("awaiting_shipment"), "{message}");
}

#[tokio::test]
async fn throttling_past_the_retries_is_503_with_retry_after_and_stores_nothing() {
    let (proxy, app) = FaultyApp::through(Service::DynamoDb).await;
    proxy.inject(Rule::on("PutItem", Fault::dynamodb("ThrottlingException")));

    let throttled = app.post_sample().await;

    assert_eq!(throttled.status, 503, "{throttled:?}");
    assert!(throttled.retry_after.is_some(), "{throttled:?}");
    assert_eq!(
        proxy.faulted("PutItem"),
        u64::from(AwsBudget::within(LAMBDA_TIMEOUT).max_attempts)
    );
    assert!(app.stored_orders().await.is_empty());
}

/// The callback dispatcher's Lambda timeout (CallbackDispatchFunction).
const DISPATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// `app`'s stack with its Secrets Manager calls through a fresh proxy,
/// within the callback dispatcher's budget; the proxy, and the stack to run
/// the dispatcher on.
async fn secrets_through_a_proxy(app: &TestApp) -> (FaultyService, Stack) {
    let proxy = FaultyService::start(Service::SecretsManager).await;
    let mut faulty = app.stack.clone();
    faulty.aws = proxy.aws(AwsBudget::within(DISPATCH_TIMEOUT)).await;
    (proxy, faulty)
}

#[tokio::test]
async fn a_throttled_secret_read_is_retried_and_the_callback_is_posted_once() {
    let mut app = TestApp::spawn().await;
    let (proxy, faulty) = secrets_through_a_proxy(&app).await;
    proxy.inject(Rule::on("GetSecretValue", Fault::secrets_manager_throttling()).times(2));
    let partner = Partner::start(Vec::new()).await;
    let settings = test_callback_settings(&partner.url);
    let dispatcher = tokio::spawn(async move { faulty.run_dispatcher(&settings).await });
    app.partner = Some(partner);

    let numbers = app.ship_sample_orders("throttled-secret", 1).await;
    app.wait_until_delivered(&numbers, Duration::from_secs(30))
        .await;

    assert_eq!(proxy.faulted("GetSecretValue"), 2);
    assert_eq!(proxy.seen("GetSecretValue"), 3);
    assert_eq!(app.partner_requests().len(), 1);
    dispatcher.abort();
}

#[tokio::test]
async fn a_callback_answer_whose_record_lost_its_answer_is_recorded_once() {
    let mut app = TestApp::spawn().await;
    let proxy = FaultyService::start(Service::DynamoDb).await;
    let mut faulty = app.stack.clone();
    faulty.dynamodb =
        aws_sdk_dynamodb::Client::new(&proxy.aws(AwsBudget::within(DISPATCH_TIMEOUT)).await);
    // The dispatcher's record of the partner's answer (its save of the
    // order: the one UpdateItem that sets `progress`; a claim does not) is
    // done by DynamoDB and its answer lost: the SDK sends it again.
    proxy.inject(
        Rule::on("UpdateItem", Fault::ResetAfterForward)
            .containing(":progress")
            .times(1),
    );
    let partner = Partner::start(Vec::new()).await;
    let settings = test_callback_settings(&partner.url);
    let dispatcher = tokio::spawn(async move { faulty.run_dispatcher(&settings).await });
    app.partner = Some(partner);

    let numbers = app.ship_sample_orders("settle-reset", 1).await;
    app.wait_until_delivered(&numbers, Duration::from_secs(30))
        .await;
    // Delivered shows as soon as the first try is done: the SDK's retry
    // (the claim, the reset write, the retry) comes after, and then what
    // the dispatcher makes of its answer.
    let retried = tokio::time::Instant::now() + Duration::from_secs(10);
    while proxy.seen("UpdateItem") < 3 {
        assert!(
            tokio::time::Instant::now() < retried,
            "the SDK did not send the write again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(proxy.faulted("UpdateItem"), 1);
    assert_eq!(app.partner_requests().len(), 1);
    let callback = stored_callback(&app, &numbers[0]).await;
    assert_eq!(
        (
            callback.attempt_count,
            callback.attempts.len(),
            callback.posts
        ),
        (1, 1, 1),
        "one post, one attempt recorded: {:?}",
        callback.attempts
    );
    dispatcher.abort();
}

#[tokio::test]
async fn a_dispatcher_whose_secret_stays_throttled_does_not_start_and_posts_nothing() {
    let app = TestApp::spawn().await;
    let (proxy, faulty) = secrets_through_a_proxy(&app).await;
    proxy.inject(Rule::on(
        "GetSecretValue",
        Fault::secrets_manager_throttling(),
    ));
    let partner = Partner::start(Vec::new()).await;
    let settings = test_callback_settings(&partner.url);
    app.ship_sample_orders("throttled-secret", 1).await;

    // The cold start fails (Lambda retries it; SQS keeps the message).
    let started = tokio::time::timeout(DISPATCH_TIMEOUT, faulty.run_dispatcher(&settings))
        .await
        .expect("the cold start gives up within the function's timeout");

    assert!(started.is_err());
    assert_eq!(
        proxy.faulted("GetSecretValue"),
        u64::from(AwsBudget::within(DISPATCH_TIMEOUT).max_attempts)
    );
    assert!(partner.received().is_empty());
}

#[tokio::test]
async fn a_label_upload_slowed_down_is_retried_and_the_order_and_its_label_land_once() {
    let (proxy, app) = FaultyApp::through(Service::S3).await;
    proxy.inject(Rule::on("PUT", Fault::s3("SlowDown")).times(2));

    let created = app.post(&sample_with_label()).await;

    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(proxy.faulted("PUT"), 2);
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
    assert_eq!(app.stored_labels().await.len(), 1);
}

#[tokio::test]
async fn s3_slowing_down_past_the_retries_is_503_and_stores_no_order_without_its_label() {
    let (proxy, app) = FaultyApp::through(Service::S3).await;
    proxy.inject(Rule::on("PUT", Fault::s3("SlowDown")));

    let refused = app.post(&sample_with_label()).await;

    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.retry_after.is_some(), "{refused:?}");
    assert!(app.stored_orders().await.is_empty());
    assert!(app.stored_labels().await.is_empty());
    // The ERP's retry once S3 answers stores both.
    proxy.heal();
    let retried = app.post(&sample_with_label()).await;
    assert_eq!(retried.status, 201, "{retried:?}");
    assert_eq!(app.stored_orders().await, [ORDER_NUMBER]);
    assert_eq!(app.stored_labels().await.len(), 1);
}

/// The webhook deliverer's Lambda timeout (WebhookDispatchFunction).
const WEBHOOK_DISPATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A webhook rig whose deliverer's DynamoDB calls go through a fresh proxy,
/// within the webhook dispatcher's budget; the proxy, the deployed
/// schedule, and the rig.
async fn deliverer_through_a_proxy() -> (FaultyService, RetryPolicy, Rig) {
    let proxy = FaultyService::start(Service::DynamoDb).await;
    let policy = schedule(POST_TIMEOUT);
    let aws = proxy.aws(AwsBudget::within(WEBHOOK_DISPATCH_TIMEOUT)).await;
    let rig = Rig::with_deliverer_dynamodb(
        Reach::LocalNetwork,
        policy.clone(),
        Some(aws_sdk_dynamodb::Client::new(&aws)),
    )
    .await;
    (proxy, policy, rig)
}

#[tokio::test]
async fn a_webhook_claim_whose_answer_was_lost_is_posted_once_without_waiting_for_its_lease() {
    let (proxy, policy, rig) = deliverer_through_a_proxy().await;
    let erp = Receiver::start(Vec::new(), Reply::Status(204)).await;
    let endpoint = rig.subscribe(&erp.url).await;
    let order = new_order("mabang-claim-reset");
    rig.publish(None, &order).await;
    // The claim (the deliverer's first UpdateItem) is done by DynamoDB and
    // its answer lost: the SDK sends it again.
    proxy.inject(Rule::on("UpdateItem", Fault::ResetAfterForward).times(1));
    let started = Instant::now();

    rig.dispatch_until(policy.lease, || !erp.received().is_empty())
        .await;

    let took = started.elapsed();
    assert_eq!(proxy.faulted("UpdateItem"), 1);
    assert!(
        took < policy.lease,
        "posted after {took:?}, the lease is {:?}",
        policy.lease
    );
    rig.drain(Duration::from_secs(10)).await;
    assert_eq!(erp.received().len(), 1);
    let deliveries = rig.deliveries(&endpoint).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].status, DeliveryStatus::Delivered);
    assert_eq!(deliveries[0].posts, 1, "one post counted: {deliveries:?}");
}

#[tokio::test]
async fn a_failed_webhook_whose_record_lost_its_answer_stays_queued_for_its_retry() {
    let (proxy, policy, rig) = deliverer_through_a_proxy().await;
    let erp = Receiver::start(Vec::new(), Reply::Status(503)).await;
    let endpoint = rig.subscribe(&erp.url).await;
    rig.publish(None, &new_order("mabang-settle-reset")).await;
    // The post fails; the record of it (the deliverer's first PutItem) is
    // done by DynamoDB and its answer lost: the SDK sends it again, and
    // the retry's condition (the lease) meets the first try's write.
    proxy.inject(Rule::on("PutItem", Fault::ResetAfterForward).times(1));

    rig.dispatch_until(policy.lease, || !erp.received().is_empty())
        .await;

    assert_eq!(proxy.faulted("PutItem"), 1);
    let deliveries = rig.deliveries(&endpoint).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].status, DeliveryStatus::Pending);
    assert_eq!(deliveries[0].posts, 1, "{deliveries:?}");
    assert_ne!(
        rig.queued().await,
        (0, 0),
        "the failed delivery's message was deleted: nothing would ever try it again"
    );
}

#[tokio::test]
async fn a_webhook_route_is_answered_503_with_retry_after_within_its_budget_while_dynamodb_stalls()
{
    // Each DynamoDB call may take 15 s here, longer than the function's own
    // budget gives it (3 s): the route's answer deadline alone keeps the
    // answer inside the Lambda timeout, whatever its calls are doing.
    let (proxy, app) = FaultyApp::through_within(
        Service::DynamoDb,
        AwsBudget::within(Duration::from_secs(60)),
    )
    .await;
    proxy.inject(Rule::on_every_operation(Fault::Stall));

    let stalled = app
        .send(reqwest::Method::GET, "/apicenter/api/webhooks", None)
        .await;

    assert_eq!(stalled.status, 503, "{stalled:?}");
    assert!(stalled.retry_after.is_some(), "{stalled:?}");
    assert!(stalled.took < LAMBDA_TIMEOUT, "{stalled:?}");
    // The ERP's retry, once DynamoDB answers again, is served.
    proxy.heal();
    let retried = app
        .send(reqwest::Method::GET, "/apicenter/api/webhooks", None)
        .await;
    assert_eq!(retried.status, 200, "{retried:?}");
}

/// The order's callback as stored, read past any proxy.
async fn stored_callback(app: &TestApp, number: &str) -> shared::record::callback::Callback {
    let number = shared::domain::OrderNumber::parse(number).expect("an order number");
    let store = app.stack.store().expect("the orders table");
    match shared::ports::OrderStore::get(&store, &number, shared::ports::Access::Service)
        .await
        .expect("the store answers")
    {
        shared::ports::Lookup::Found(record) => record.callback,
        other => panic!("order {number} is {other:?}"),
    }
}

#[tokio::test]
async fn a_secret_throttled_during_the_token_refresh_backs_off_without_posting_or_spending_a_try() {
    let mut app = TestApp::spawn().await;
    let (proxy, faulty) = secrets_through_a_proxy(&app).await;
    let partner = Partner::start_oauth(Vec::new(), Duration::from_secs(600)).await;
    let settings = oauth_callback_settings(&partner);
    let dispatcher = tokio::spawn(async move { faulty.run_dispatcher(&settings).await });
    app.partner = Some(partner.clone());
    // The cold start reads the secret; from then on every read is throttled,
    // past the SDK's retries: the first callback's token refresh meets it.
    let started = tokio::time::Instant::now() + Duration::from_secs(20);
    while proxy.seen("GetSecretValue") == 0 {
        assert!(
            tokio::time::Instant::now() < started,
            "the dispatcher never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.inject(Rule::on(
        "GetSecretValue",
        Fault::secrets_manager_throttling(),
    ));

    let [number] = <[String; 1]>::try_from(app.ship_sample_orders("throttled-refresh", 1).await)
        .expect("one order");
    let retrying = app
        .wait_for_order(&number, Duration::from_secs(30), |data| {
            data["callback"]["status"] == "retrying"
        })
        .await;

    assert!(
        proxy.faulted("GetSecretValue") >= 3,
        "past the SDK's retries"
    );
    assert!(partner.received().is_empty(), "nothing posted");
    let reason = retrying["callback"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("not posted"), "{reason}");
    assert_eq!(
        stored_callback(&app, &number).await.posts,
        0,
        "no try spent"
    );
    // Once Secrets Manager answers, the next receive refreshes and posts.
    proxy.heal();
    app.wait_until_delivered(std::slice::from_ref(&number), Duration::from_secs(30))
        .await;
    assert_eq!(partner.received().len(), 1);
    assert_eq!(stored_callback(&app, &number).await.posts, 1);
    dispatcher.abort();
}

/// A refresh spends the stored refresh token (the test partner, like CK1,
/// rotates it and refuses a spent one): a new pair Secrets Manager will not
/// take is kept by the dispatcher, used for its posts and its next refresh,
/// and stored once Secrets Manager takes writes again.
#[tokio::test]
async fn a_refreshed_pair_secrets_manager_refuses_is_kept_used_and_stored_once_it_answers() {
    let mut app = TestApp::spawn().await;
    let (proxy, faulty) = secrets_through_a_proxy(&app).await;
    let partner = Partner::start_oauth(Vec::new(), Duration::from_secs(600)).await;
    let settings = oauth_callback_settings(&partner);
    proxy.inject(Rule::on(
        "PutSecretValue",
        Fault::secrets_manager_throttling(),
    ));
    let running = settings.clone();
    let dispatcher = tokio::spawn(async move { faulty.run_dispatcher(&running).await });
    app.partner = Some(partner.clone());

    let first = app.ship_sample_orders("refused-pair", 1).await;
    app.wait_until_delivered(&first, Duration::from_secs(30))
        .await;
    assert_eq!(partner.refreshes(), 1);
    assert!(
        proxy.faulted("PutSecretValue") >= 3,
        "the pair was refused past the SDK's retries"
    );
    // Its access token rejected, the dispatcher refreshes with the pair it
    // kept: the stored refresh token is spent.
    partner.expire_tokens();
    let second = app.ship_sample_orders("kept-pair", 1).await;
    app.wait_until_delivered(&second, Duration::from_secs(30))
        .await;
    assert_eq!(partner.refreshes(), 2);
    assert_eq!(
        partner.spent_refresh_tokens(),
        0,
        "no spent refresh token presented"
    );

    // Secrets Manager takes writes again: the kept pair is stored at a call
    // a few seconds on, so a dispatcher starting from the secret would
    // present the partner's last refresh token.
    proxy.heal();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let third = app.ship_sample_orders("stored-pair", 1).await;
    app.wait_until_delivered(&third, Duration::from_secs(30))
        .await;
    let secret = aws_sdk_secretsmanager::Client::new(&app.stack.aws)
        .get_secret_value()
        .secret_id(
            app.stack
                .partner_secret(&settings)
                .await
                .expect("the secret"),
        )
        .send()
        .await
        .expect("the secret reads");
    let stored: serde_json::Value =
        serde_json::from_str(secret.secret_string().unwrap_or_default()).expect("JSON");
    assert_eq!(stored["refresh_token"], "refresh-2", "the partner's last");
    assert_eq!(partner.refreshes(), 2);
    dispatcher.abort();
}

#[tokio::test]
async fn an_enqueue_failing_past_its_retries_is_sent_by_the_outbox_later_and_posted_once() {
    let proxy = FaultyService::start(Service::Sqs).await;
    // The outbox (the pipe from the orders table's stream to the callback
    // queue) sends through the proxy; SQS answers it 500, then throttles it.
    let mut app = TestApp::spawn_with_outbox_aws(Some(proxy.aws(AwsBudget::TOOLS).await)).await;
    let partner = Partner::start(Vec::new()).await;
    app.start_dispatcher(&test_callback_settings(&partner.url));
    app.partner = Some(partner.clone());
    proxy.inject(Rule::on("SendMessageBatch", Fault::sqs("InternalFailure")).times(3));
    proxy.inject(Rule::on("SendMessageBatch", Fault::sqs("RequestThrottled")));

    // The ERP's order and the warehouse's hand-over are answered as usual:
    // neither waits for the queue.
    let created = app.post_order(&sample_order()).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    app.hand_over(ORDER_NUMBER).await;
    let past_retries = tokio::time::Instant::now() + Duration::from_secs(20);
    while proxy.faulted("SendMessageBatch") < 6 {
        assert!(
            tokio::time::Instant::now() < past_retries,
            "the outbox stopped trying"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(partner.received().is_empty(), "no message, no post yet");
    let waiting = app.get_order(ORDER_NUMBER).await.body;
    assert_eq!(
        waiting["data"]["callback"]["status"], "pending",
        "{waiting:#}"
    );

    // Once SQS takes messages again, the outbox sends the one it kept.
    proxy.heal();
    app.wait_until_delivered(&[ORDER_NUMBER.to_owned()], Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(partner.received().len(), 1, "posted once");
    assert_eq!(
        proxy.seen("SendMessageBatch") - proxy.faulted("SendMessageBatch"),
        1
    );
}
