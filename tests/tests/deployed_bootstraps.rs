//! The deployed artifacts on AWS's own event shapes: the `bootstrap` binaries
//! that `sam build` put in `$SAM_BUILD_DIR`, each started as Lambda starts it
//! (a clean environment: the template's variables for the function, the
//! runtime's own) against cargo-lambda's Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`), with the emulators behind them.
//! The events come from the SAM CLI (`sam local generate-event`), edited only
//! in method, path, headers and body (for SQS: body, message id and receipt
//! handle, those of the messages the outbox pipe queued where there is one).
//! What a user would notice: an ERP's order is created (201) and stored, the
//! warehouse's events are taken (also base64-encoded), the partner gets the
//! callback, and the batch answer lists exactly the messages SQS must keep
//! (none when the others were dead-lettered by the handler; the one the
//! partner refused with a 503); the personal-data sweep answers its schedule.
//! Webhooks: the deployed webhook API refuses a loopback endpoint (only
//! `make run` allows one) and issues a secret for an HTTPS one; the fan-out
//! takes the orders stream's real records in the SAM CLI's DynamoDB stream
//! event and queues one delivery per event; the dispatcher takes one of them,
//! cannot reach the endpoint (no network here) and keeps exactly that message
//! for its retry, which the endpoint's recent deliveries then show.
//!
//! Not part of the workspace's test run (feature `deployed`): it needs the
//! release build, so `infra/local/template-checks.sh` runs it right after
//! `sam build`. Missing prerequisites fail it, naming what is missing.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use integration_tests::partner::{Answer, Partner};
use integration_tests::{issue_key, sample_order, test_callback_settings};
use local_stack::stack::{Stack, local_warehouses};
use local_stack::stream_reader::{attribute_json, streams_client};
use serde_json::{Value, json};
use serde_norway::Value as Yaml;
use shared::domain::Scope;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tool(name: &str) -> PathBuf {
    let path = repo().join(".local/venv/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run infra/local/tools.sh python",
        path.display()
    );
    path
}

/// `sam local generate-event SERVICE EVENT ARGS…`, parsed.
fn sam_event(args: &[&str]) -> Value {
    let output = Command::new(tool("sam"))
        .args(["local", "generate-event"])
        .args(args)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("sam runs");
    assert!(
        output.status.success(),
        "sam local generate-event {args:?}: {output:?}"
    );
    serde_json::from_slice(&output.stdout).expect("sam generates JSON")
}

/// An HTTP API (payload 2.0) event as API Gateway sends it, with this
/// request's method, path, headers and body; base64-encoded when `base64`.
fn http_event(method: &str, path: &str, key: &str, body: Option<&Value>, base64: bool) -> Value {
    let mut event = sam_event(&["apigateway", "http-api-proxy"]);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["headers"] = json!({
        "authorization": format!("Bearer {key}"),
        "content-type": "application/json",
    });
    match body {
        Some(body) if base64 => {
            event["body"] =
                json!(base64::engine::general_purpose::STANDARD.encode(body.to_string()));
            event["isBase64Encoded"] = json!(true);
        }
        Some(body) => {
            event["body"] = json!(body.to_string());
            event["isBase64Encoded"] = json!(false);
        }
        None => {
            event.as_object_mut().expect("an object").remove("body");
            event["isBase64Encoded"] = json!(false);
        }
    }
    event
}

/// An SQS event of one record per message (id, receipt handle, body).
fn sqs_event(messages: &[(&str, &str, &str)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, receipt, body)| {
            // The SAM CLI pastes --body into its JSON unescaped.
            let escaped = body.replace('\\', "\\\\").replace('"', "\\\"");
            let mut event = sam_event(&["sqs", "receive-message", "--body", &escaped]);
            let mut record = event["Records"][0].take();
            assert_eq!(record["body"], json!(body), "the SAM CLI kept the body");
            record["messageId"] = json!(id);
            record["receiptHandle"] = json!(receipt);
            record
        })
        .collect();
    json!({ "Records": records })
}

/// At least `count` messages of the queue (waiting up to 30 s), received once.
async fn receive(stack: &Stack, queue_url: &str, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages.len() < count {
        assert!(
            Instant::now() < deadline,
            "{queue_url}: {} of {count} messages",
            messages.len()
        );
        let received = stack
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("the queue answers");
        messages.extend(received.messages().iter().cloned());
    }
    messages
}

/// An ERP creates order `number` (201; then it is stored and served) and the
/// warehouse reports it shipped and handed over.
async fn ship(
    lambda: &mut Lambda,
    stack: &Stack,
    number: &str,
    base64: bool,
    erp_key: &str,
    wms_key: &str,
) {
    let mut order = sample_order();
    order["package"]["order_number"] = json!(number);
    order["platform_order_number"] = json!(format!("p-{number}"));
    let created = lambda
        .invoke(
            "order-intake",
            &http_event(
                "POST",
                "/apicenter/api/order",
                erp_key,
                Some(&order),
                base64,
            ),
        )
        .await;
    let (status, body) = http_answer(&created);
    assert_eq!(status, 201, "{body:#}");
    let path = format!("/apicenter/api/order/{number}");
    let read = lambda
        .invoke(
            "order-intake",
            &http_event("GET", &path, erp_key, None, false),
        )
        .await;
    let (status, body) = http_answer(&read);
    assert_eq!(
        (status, body["data"]["order_number"].as_str()),
        (200, Some(number)),
        "{body:#}"
    );
    let stored = stack
        .dynamodb
        .get_item()
        .table_name(stack.orders_table().expect("table"))
        .key(
            "order_number",
            aws_sdk_dynamodb::types::AttributeValue::S(number.to_owned()),
        )
        .send()
        .await
        .expect("DynamoDB answers");
    assert!(stored.item().is_some(), "{number} is in the orders table");
    let now = shared::record::format_time(chrono::Utc::now());
    let events = format!("{path}/events");
    for (event, base64) in [
        (
            json!({"event_id": "e-1", "type": "shipped", "occurred_at": now,
                "tracking_number": "YT4567890123CN", "logistic_provider_code": "jito"}),
            true,
        ),
        (
            json!({"event_id": "e-2", "type": "handed_over", "occurred_at": now}),
            false,
        ),
    ] {
        let result = lambda
            .invoke(
                "warehouse-events",
                &http_event("POST", &events, wms_key, Some(&event), base64),
            )
            .await;
        let (status, body) = http_answer(&result);
        assert_eq!(status, 200, "{event}: {body:#}");
    }
}

/// The ERP subscribes through the deployed webhook API: a loopback URL is
/// refused (400 naming `url`: only `make run` allows one), an HTTPS one gets
/// its secret. Returns the endpoint's id.
async fn subscribe(lambda: &mut Lambda, erp_key: &str) -> String {
    let path = "/apicenter/api/webhooks";
    let local = json!({"url": "http://127.0.0.1:9/hooks"});
    let refused = lambda
        .invoke(
            "webhook-api",
            &http_event("POST", path, erp_key, Some(&local), false),
        )
        .await;
    let (status, body) = http_answer(&refused);
    assert_eq!(status, 400, "{body:#}");
    assert!(
        body.to_string().contains("url"),
        "names the field: {body:#}"
    );
    // `.invalid` never resolves: deliveries fail as to an endpoint that is down.
    let endpoint = json!({"url": "https://erp.example.invalid/hooks"});
    let created = lambda
        .invoke(
            "webhook-api",
            &http_event("POST", path, erp_key, Some(&endpoint), true),
        )
        .await;
    let (status, body) = http_answer(&created);
    assert_eq!(status, 201, "{body:#}");
    assert!(
        body["data"]["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{body:#}"
    );
    body["data"]["id"].as_str().expect("an id").to_owned()
}

/// Every record on the orders table's stream so far, each in the SAM CLI's
/// DynamoDB stream record with the real keys, images, name and sequence.
async fn orders_stream_event(stack: &Stack) -> Value {
    let streams = streams_client(&stack.aws);
    let arn = stack.resources.stream_arn("OrdersTable").expect("a stream");
    let template = sam_event(&["dynamodb", "update"])["Records"][1].clone();
    let shards = streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .expect("DescribeStream")
        .stream_description
        .map(|d| d.shards.unwrap_or_default())
        .unwrap_or_default();
    let mut records = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("GetRecords");
            let read = page.records();
            for record in read {
                let change = record.dynamodb().expect("a change");
                let image = |image: Option<
                    &std::collections::HashMap<
                        String,
                        aws_sdk_dynamodbstreams::types::AttributeValue,
                    >,
                >| {
                    image.map(|item| {
                        item.iter()
                            .map(|(k, v)| (k.clone(), attribute_json(v)))
                            .collect::<serde_json::Map<_, _>>()
                    })
                };
                let mut event = template.clone();
                event["eventID"] = json!(record.event_id());
                event["eventName"] = json!(record.event_name().map(|n| n.as_str()));
                event["eventSourceARN"] = json!(arn);
                let dynamodb = &mut event["dynamodb"];
                dynamodb["Keys"] = json!(image(change.keys()));
                dynamodb["NewImage"] = json!(image(change.new_image()));
                match image(change.old_image()) {
                    Some(old) => dynamodb["OldImage"] = json!(old),
                    None => {
                        dynamodb
                            .as_object_mut()
                            .expect("an object")
                            .remove("OldImage");
                    }
                }
                dynamodb["SequenceNumber"] = json!(change.sequence_number());
                records.push(event);
            }
            // DynamoDB Local keeps an open shard's iterator forever: stop at its end.
            iterator = if read.is_empty() {
                None
            } else {
                page.next_shard_iterator
            };
        }
    }
    json!({ "Records": records })
}

/// The fan-out publishes the two orders' events (accepted, shipped, handed
/// over: six deliveries to the one endpoint); the dispatcher takes one,
/// cannot reach the endpoint, keeps that message, and the endpoint's recent
/// deliveries show the failed try.
async fn fan_out_and_dispatch(lambda: &mut Lambda, stack: &Stack, erp_key: &str, endpoint: &str) {
    let stream = orders_stream_event(stack).await;
    let answer = lambda.invoke("webhook-fanout", &stream).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": []}),
        "{}",
        lambda.functions["webhook-fanout"].log()
    );
    let queue = stack
        .resources
        .queue_url("WebhookDeliveryQueue")
        .expect("the delivery queue");
    let deliveries = receive(stack, queue, 6).await;
    let mut kinds: Vec<String> = deliveries
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
        .filter_map(|body| Some(body["event_type"].as_str()?.to_owned()))
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "order.accepted",
            "order.accepted",
            "order.handed_over",
            "order.handed_over",
            "order.shipped",
            "order.shipped"
        ],
        "{deliveries:#?}"
    );
    let first = &deliveries[0];
    let id = first.message_id().unwrap_or_default();
    let batch = sqs_event(&[(
        id,
        first.receipt_handle().unwrap_or_default(),
        first.body().unwrap_or_default(),
    )]);
    let answer = lambda.invoke("webhook-dispatch", &batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": id}]}),
        "{}",
        lambda.functions["webhook-dispatch"].log()
    );
    let path = format!("/apicenter/api/webhooks/{endpoint}");
    let read = lambda
        .invoke(
            "webhook-api",
            &http_event("GET", &path, erp_key, None, false),
        )
        .await;
    let (status, body) = http_answer(&read);
    assert_eq!(status, 200, "{body:#}");
    let tried: Vec<&Value> = body["data"]["recent_deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["attempts"] == json!(1))
        .collect();
    assert_eq!(tried.len(), 1, "one delivery tried once: {body:#}");
    assert_eq!(tried[0]["status"], "pending", "to be retried: {body:#}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed with the test.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn spawn(mut command: Command, log: PathBuf) -> Running {
    let file = std::fs::File::create(&log).expect("a log file");
    let child = command
        .stdout(Stdio::from(file.try_clone().expect("a log file")))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    Running { child, log }
}

/// The function's variables as the template sets them (Globals and its
/// own), resolved against the local stack and `parameters`.
fn template_environment(
    logical_id: &str,
    stack: &Stack,
    parameters: &BTreeMap<&str, String>,
) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("infra/template.yaml")).expect("the template");
    let template: Yaml = serde_norway::from_str(&text).expect("the template is YAML");
    let variables = |node: Option<&Yaml>| -> Vec<(String, Yaml)> {
        node.and_then(|n| n.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Yaml::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
            .collect()
    };
    let function = template["Resources"]
        .get(logical_id)
        .unwrap_or_else(|| panic!("no {logical_id} in the template"));
    let mut merged: BTreeMap<String, Yaml> =
        variables(template.get("Globals").and_then(|g| g.get("Function")))
            .into_iter()
            .collect();
    merged.extend(variables(function.get("Properties")));
    merged
        .into_iter()
        .map(|(name, value)| {
            let resolved = match &value {
                Yaml::String(s) => s.clone(),
                Yaml::Tagged(tagged) if tagged.tag == "Ref" => {
                    let target = tagged.value.as_str().unwrap_or_default();
                    parameters
                        .get(target)
                        .cloned()
                        .or_else(|| stack.resources.table(target).ok().map(str::to_owned))
                        .or_else(|| stack.resources.queue_url(target).ok().map(str::to_owned))
                        .or_else(|| stack.resources.bucket(target).ok().map(str::to_owned))
                        .unwrap_or_else(|| {
                            panic!("{name}: !Ref {target} is nothing this test can play")
                        })
                }
                other => panic!("{name}: {other:?} is nothing this test can play"),
            };
            (name, resolved)
        })
        .collect()
}

/// cargo-lambda's Runtime API emulator and the bootstraps registered with it.
struct Lambda {
    port: u16,
    _emulator: Running,
    functions: BTreeMap<&'static str, Running>,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Lambda {
    async fn start(dir: PathBuf) -> Self {
        let port = free_port();
        let mut command = Command::new(tool("cargo-lambda"));
        command
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(repo())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    tool("cargo-lambda").parent().expect("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        let emulator = spawn(command, dir.join("runtime-emulator.log"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the runtime emulator did not start:\n{}",
                emulator.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            port,
            _emulator: emulator,
            functions: BTreeMap::new(),
            dir,
            http: adapters::https::reqwest_builder()
                .and_then(|builder| Ok(builder.build()?))
                .expect("an HTTP client"),
        }
    }

    /// Starts `$SAM_BUILD_DIR/<logical_id>/bootstrap` as function `name`
    /// (a binary of the workspace: the emulator routes by those names).
    fn start_function(
        &mut self,
        name: &'static str,
        logical_id: &str,
        environment: Vec<(String, String)>,
    ) {
        let build = std::env::var("SAM_BUILD_DIR").unwrap_or_else(|_| {
            panic!("SAM_BUILD_DIR is not set: run infra/local/template-checks.sh (it runs this test after sam build)")
        });
        let bootstrap = Path::new(&build).join(logical_id).join("bootstrap");
        assert!(
            bootstrap.is_file(),
            "{} is missing: sam build first",
            bootstrap.display()
        );
        let mut command = Command::new(&bootstrap);
        command.env_clear();
        // The emulators' endpoints, region and dummy credentials.
        command.envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")));
        command.envs(environment);
        command
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt/{name}", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO");
        let running = spawn(command, self.dir.join(format!("{name}.log")));
        self.functions.insert(name, running);
    }

    async fn invoke(&mut self, name: &str, event: &Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{name}/invocations",
            self.port
        );
        let answer = self
            .http
            .post(&url)
            .json(event)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
        let function = self.functions.get_mut(name).expect("started");
        let exited = function.child.try_wait().ok().flatten();
        let answer = answer.unwrap_or_else(|err| {
            panic!(
                "invoking {name}: {err}; exited: {exited:?}\n{}",
                function.log()
            )
        });
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "invoking {name}: {status} {body}\n{}",
            function.log()
        );
        body
    }

    /// Every JSON line the function printed.
    fn lines(&self, name: &str) -> Vec<Value> {
        self.functions[name]
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// The HTTP answer inside a function's API Gateway result.
fn http_answer(result: &Value) -> (u64, Value) {
    let status = result["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("no statusCode in {result}"));
    let raw = result["body"].as_str().unwrap_or_default();
    let body = if result["isBase64Encoded"] == json!(true) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .expect("base64");
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    } else {
        serde_json::from_str(raw).unwrap_or(Value::Null)
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_built_bootstraps_serve_api_gateway_and_sqs_events() {
    let prefix = format!("boot{}", std::process::id());
    let stack = Stack::provision(&prefix, local_warehouses().expect("warehouses"))
        .await
        .unwrap_or_else(|err| {
            panic!("the stack: {err} (run through infra/local/emulators.sh exec)")
        });
    let erp_key = issue_key(&stack, Scope::Client("20".into())).await;
    let wms_key = issue_key(&stack, Scope::Warehouse(["mabang".to_owned()].into())).await;
    let partner = Partner::start(vec![Answer::ok()]).await;
    let settings = test_callback_settings(&partner.url);
    let parameters = BTreeMap::from([
        (
            "WarehouseConfig",
            std::fs::read_to_string(repo().join("infra/local/warehouses.json"))
                .expect("warehouses"),
        ),
        ("LogLevel", "info".to_owned()),
        ("PersonalDataRetentionDays", "30".to_owned()),
        ("CallbackUrl", partner.url.clone()),
        ("CallbackTokenUrl", format!("{}/oauth2/token", partner.url)),
        (
            "CallbackTokenSecretName",
            stack.partner_secret(&settings).await.expect("the secret"),
        ),
    ]);
    let dir = std::env::temp_dir().join(format!("deployed-bootstraps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut lambda = Lambda::start(dir.clone()).await;
    for (name, logical_id) in [
        ("order-intake", "OrderIntakeFunction"),
        ("warehouse-events", "WarehouseEventsFunction"),
        ("callback-dispatch", "CallbackDispatchFunction"),
        ("personal-data-sweep", "PersonalDataSweepFunction"),
        ("webhook-api", "WebhookApiFunction"),
        ("webhook-fanout", "WebhookFanOutFunction"),
        ("webhook-dispatch", "WebhookDispatchFunction"),
    ] {
        let mut environment = template_environment(logical_id, &stack, &parameters);
        if name == "order-intake" {
            // Its metric lines are the DynamoDB capacity lines, printed only
            // when asked for (adapters::capacity): asked for here, so that
            // their level is checked below.
            environment.push(("DYNAMODB_CAPACITY_LINES".into(), "1".into()));
        }
        lambda.start_function(name, logical_id, environment);
    }
    // The outbox pipe plays its part: writes that make a callback due put its message on the queue.
    let pipe = tokio::spawn(stack.outbox_pipe(None).expect("the pipe").run());

    let endpoint = subscribe(&mut lambda, &erp_key).await;

    // Two orders, each created by an ERP (201, then stored: the second with a
    // base64-encoded body, as API Gateway sends some content types) and shipped
    // and handed over by the warehouse (the shipped event base64-encoded).
    let delivered = format!("mabang-{prefix}-a");
    let retried = format!("mabang-{prefix}-b");
    ship(&mut lambda, &stack, &delivered, false, &erp_key, &wms_key).await;
    ship(&mut lambda, &stack, &retried, true, &erp_key, &wms_key).await;
    fan_out_and_dispatch(&mut lambda, &stack, &erp_key, &endpoint).await;

    // The pipe queued one callback message per order.
    let messages = receive(&stack, stack.callback_queue_url().expect("queue"), 2).await;
    let message_of = |number: &str| {
        messages
            .iter()
            .find(|m| m.body().is_some_and(|b| b.contains(number)))
            .unwrap_or_else(|| panic!("no callback message for {number}: {messages:?}"))
    };

    // A batch of the first order's message, one for an unknown order and one
    // that is not JSON: the first is delivered, the other two are moved to the
    // DLQ by the handler itself, so SQS must keep none of them.
    let unknown = json!({"order_number": "mabang-nobody", "generation": "1"}).to_string();
    let first = message_of(&delivered);
    let batch = sqs_event(&[
        (
            first.message_id().unwrap_or_default(),
            first.receipt_handle().unwrap_or_default(),
            first.body().unwrap_or_default(),
        ),
        ("m-unknown", "r-unknown", &unknown),
        ("m-garbage", "r-garbage", "not json {"),
    ]);
    let answer = lambda.invoke("callback-dispatch", &batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": []}),
        "{}",
        lambda.functions["callback-dispatch"].log()
    );
    let received = partner.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert!(
        received[0]
            .body
            .to_string()
            .contains(&format!("p-{delivered}")),
        "{:#}",
        received[0].body
    );
    let mut dead: Vec<String> = receive(&stack, stack.dead_letter_queue_url().expect("dlq"), 2)
        .await
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect();
    dead.sort_unstable();
    let mut expected = vec![unknown.clone(), "not json {".to_owned()];
    expected.sort_unstable();
    assert_eq!(
        dead, expected,
        "the unknown order's and the unreadable message, each once"
    );

    // The partner is down (503): the second order's message must come back,
    // and only it.
    partner.set_down(true);
    let second = message_of(&retried);
    let second_id = second.message_id().unwrap_or_default();
    let batch = sqs_event(&[(
        second_id,
        second.receipt_handle().unwrap_or_default(),
        second.body().unwrap_or_default(),
    )]);
    let answer = lambda.invoke("callback-dispatch", &batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": second_id}]}),
        "{}",
        lambda.functions["callback-dispatch"].log()
    );

    let path = format!("/apicenter/api/order/{retried}");
    let read = lambda
        .invoke(
            "order-intake",
            &http_event("GET", &path, &erp_key, None, false),
        )
        .await;
    let (status, body) = http_answer(&read);
    assert_eq!(
        (status, body["data"]["callback"]["status"].as_str()),
        (200, Some("retrying")),
        "{body:#}"
    );

    // The hourly schedule's event: the sweep reads the index of final
    // orders and finds none past the retention (30 days) yet.
    let swept = lambda
        .invoke(
            "personal-data-sweep",
            &sam_event(&["cloudwatch", "scheduled-event"]),
        )
        .await;
    assert_eq!(
        swept,
        json!({"redacted": 0, "skipped": 0}),
        "{}",
        lambda.functions["personal-data-sweep"].log()
    );

    // Metric lines carry a level no ApplicationLogLevel drops.
    for name in ["order-intake", "callback-dispatch"] {
        let metrics: Vec<Value> = lambda
            .lines(name)
            .into_iter()
            .filter(|l| l.get("_aws").is_some())
            .collect();
        assert!(
            !metrics.is_empty(),
            "{name} printed no metric line:\n{}",
            lambda.functions[name].log()
        );
        for line in metrics {
            assert_eq!(line["level"], "FATAL", "{name}: {line}");
        }
    }
    pipe.abort();
    drop(lambda);
    let _ = std::fs::remove_dir_all(dir);
}
