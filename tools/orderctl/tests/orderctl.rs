//! `orderctl` against a test stack on the emulators: list the failed
//! callbacks, replay them with one command, and the exit codes scripts read.

use std::process::Output;
use std::time::Duration;

use integration_tests::partner::{Answer, Partner};
use integration_tests::{TestApp, sample_order, test_callback_settings};
use serde_json::{Value, json};

fn orderctl(app: &TestApp, args: &[&str]) -> Output {
    orderctl_on(&app.stack, args)
}

fn orderctl_on(stack: &local_stack::Stack, args: &[&str]) -> Output {
    // What the deployed stack's outputs give an operator's shell.
    let environment = [
        ("ORDERS_TABLE", stack.orders_table().expect("table")),
        (
            "ORDER_HISTORY_TABLE",
            stack.order_history_table().expect("history table"),
        ),
        (
            "API_KEYS_TABLE",
            stack.resources.table("ApiKeysTable").expect("keys"),
        ),
        ("LABELS_BUCKET", stack.labels_bucket().expect("bucket")),
        (
            "CALLBACK_QUEUE_URL",
            stack.callback_queue_url().expect("queue"),
        ),
        (
            "CALLBACK_DEAD_LETTER_QUEUE_URL",
            stack.dead_letter_queue_url().expect("dlq"),
        ),
        (
            "WEBHOOKS_TABLE",
            stack.resources.table("WebhooksTable").expect("webhooks"),
        ),
        (
            "WEBHOOK_DELIVERY_QUEUE_URL",
            stack
                .resources
                .queue_url("WebhookDeliveryQueue")
                .expect("delivery queue"),
        ),
    ];
    std::process::Command::new(env!("CARGO_BIN_EXE_orderctl"))
        .args(args)
        .envs(environment)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("orderctl runs")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

async fn ship_now(app: &TestApp, number: &str) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut order = sample_order();
    order["package"]["order_number"] = json!(number);
    order["package"]["platform_order_number"] = json!(format!("p-{number}"));
    assert_eq!(app.post_order(&order).await.status, 201);
    for event in [
        json!({"event_id": "e-1", "type": "shipped", "occurred_at": now, "tracking_number": "YT1",
               "logistic_provider_code": "jito", "shipping_fee": "12.50", "currency": "USD",
               "shipping_provider_product": "Standard"}),
        json!({"event_id": "e-2", "type": "handed_over", "occurred_at": now}),
    ] {
        let reply = app.post_event(number, &event).await;
        assert_eq!(reply.status, 200, "{:#}", reply.body);
    }
}

/// Waits until the order's callback is in `status`.
async fn wait_for_callback(app: &TestApp, number: &str, status: &str) {
    app.wait_for_order(number, Duration::from_secs(20), |o| {
        o["callback"]["status"] == status
    })
    .await;
}

/// A stack whose partner refused the callbacks of the two orders shipped.
async fn with_failed_callbacks(numbers: [&str; 2]) -> TestApp {
    let refused = || Answer::status(200, json!({"Success": false, "Message": "bad shipment"}));
    let app = TestApp::spawn_with_partner(vec![refused(), refused()]).await;
    for number in numbers {
        ship_now(&app, number).await;
        wait_for_callback(&app, number, "failed").await;
    }
    app
}

/// `orderctl --json callbacks replay --status failed`, with `options`.
fn replay_failed(app: &TestApp, options: &[&str]) -> Output {
    let args = [
        &["--json", "callbacks", "replay", "--status", "failed"],
        options,
    ]
    .concat();
    orderctl(app, &args)
}

/// Fails, showing what orderctl wrote to stderr, unless it exited 0.
fn assert_succeeded(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn failed_callbacks_are_listed_and_replayed_with_one_command_each() {
    let app = with_failed_callbacks(["ctl-1", "ctl-2"]).await;

    let listed = orderctl(&app, &["--json", "callbacks", "list", "--status", "failed"]);
    assert_eq!(listed.status.code(), Some(0));
    let numbers: Vec<Value> = json_of(&listed)["callbacks"]
        .as_array()
        .expect("callbacks")
        .iter()
        .map(|c| c["order_number"].clone())
        .collect();
    assert_eq!(numbers.len(), 2);
    assert!(numbers.contains(&json!("ctl-1")) && numbers.contains(&json!("ctl-2")));

    let dry = replay_failed(&app, &["--dry-run"]);
    assert_eq!(json_of(&dry)["queued"], 2);
    assert_eq!(
        app.get_order("ctl-1").await.body["data"]["callback"]["status"],
        "failed"
    );

    let replayed = replay_failed(&app, &["--rate", "50"]);
    assert_succeeded(&replayed);
    assert_eq!(json_of(&replayed)["queued"], 2);
    for number in ["ctl-1", "ctl-2"] {
        wait_for_callback(&app, number, "delivered").await;
    }

    let again = orderctl(
        &app,
        &["--json", "callbacks", "replay", "ctl-1", "nobody-1"],
    );
    assert_eq!(
        again.status.code(),
        Some(3),
        "refused and not found: exit 3"
    );
    let again = json_of(&again);
    assert_eq!(
        (again["refused"].clone(), again["not_found"].clone()),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn order_show_says_where_the_callback_message_is() {
    let app = TestApp::spawn_with_partner(vec![]).await;
    ship_now(&app, "show-1").await;
    wait_for_callback(&app, "show-1", "delivered").await;

    let shown = orderctl(&app, &["--json", "order", "show", "show-1"]);

    assert_eq!(shown.status.code(), Some(0));
    let shown = json_of(&shown);
    assert_eq!(shown["callback_message"], "none");
    assert_eq!(
        shown["order"]["callback"]["attempts"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        orderctl(&app, &["order", "show", "nobody-1"]).status.code(),
        Some(3)
    );
}

#[tokio::test]
async fn keys_are_created_and_listed_with_their_order_prefixes() {
    let app = TestApp::spawn().await;

    let created = orderctl(
        &app,
        &[
            "--json",
            "keys",
            "create",
            "--client",
            "77",
            "--order-prefix",
            "acme-,acme2-",
        ],
    );
    assert_succeeded(&created);
    let key_id = json_of(&created)["key_id"]
        .as_str()
        .expect("key id")
        .to_owned();

    let listed = json_of(&orderctl(&app, &["--json", "keys", "list"]));
    let key = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key_id"] == key_id.as_str())
        .expect("the new key is listed")
        .clone();
    assert_eq!(key["order_prefixes"], json!(["acme-", "acme2-"]));
    assert_eq!(
        orderctl(&app, &["keys", "create"]).status.code(),
        Some(2),
        "usage error"
    );
}

/// A grace period no clock can reach is a usage error before anything is
/// stored: no new key that was never printed, the old one untouched.
#[tokio::test]
async fn a_rotation_with_an_impossible_grace_period_changes_no_key() {
    let app = TestApp::spawn().await;
    let created = json_of(&orderctl(
        &app,
        &["--json", "keys", "create", "--client", "77"],
    ));
    let key_id = created["key_id"].as_str().expect("key id").to_owned();
    let before = json_of(&orderctl(&app, &["--json", "keys", "list"]));

    let rotated = orderctl(
        &app,
        &[
            "keys",
            "rotate",
            &key_id,
            "--grace-hours",
            "9223372036854775807",
        ],
    );

    assert_eq!(
        rotated.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert_eq!(
        json_of(&orderctl(&app, &["--json", "keys", "list"])),
        before
    );
}

#[tokio::test]
async fn an_interrupted_replay_resumes_without_replaying_twice() {
    let app = with_failed_callbacks(["res-1", "res-2"]).await;
    // An earlier run replayed res-1, then was interrupted.
    let progress =
        std::env::temp_dir().join(format!("orderctl-resume-{}.progress", std::process::id()));
    std::fs::write(&progress, "res-1\tqueued\n").expect("progress file");

    let resumed = orderctl(
        &app,
        &[
            "--json",
            "callbacks",
            "replay",
            "res-1",
            "res-2",
            "--progress-file",
            progress.to_str().expect("path"),
        ],
    );

    assert_eq!(resumed.status.code(), Some(0));
    let resumed = json_of(&resumed);
    assert_eq!(
        (resumed["queued"].clone(), resumed["skipped"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        app.get_order("res-1").await.body["data"]["callback"]["status"],
        "failed"
    );
    assert!(
        !progress.exists(),
        "a completed replay removes its progress file"
    );
}

#[tokio::test]
async fn a_dead_lettered_callback_is_redriven_from_the_dlq_and_delivered() {
    let mut app = TestApp::spawn().await;
    let partner = Partner::start(vec![Answer::status(503, json!({"Message": "down"}))]).await;
    let mut settings = test_callback_settings(&partner.url);
    settings.max_posts = Some(1);
    app.start_dispatcher(&settings);
    ship_now(&app, "dlq-1").await;
    wait_for_callback(&app, "dlq-1", "dead_lettered").await;
    let stats = json_of(&orderctl(&app, &["--json", "dlq", "stats"]));
    assert_eq!(stats["dead_letter_queue"]["visible"], 1);

    let redriven = orderctl(&app, &["--json", "dlq", "redrive"]);

    assert_succeeded(&redriven);
    assert_eq!(json_of(&redriven)["redriven"], 1);
    wait_for_callback(&app, "dlq-1", "delivered").await;
    assert_eq!(partner.received().len(), 2);
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["order", "show", "--help"],
        &["callbacks", "list", "--help"],
        &["callbacks", "replay", "--help"],
        &["dlq", "stats", "--help"],
        &["dlq", "redrive", "--help"],
        &["keys", "create", "--help"],
        &["keys", "rotate", "--help"],
        &["keys", "revoke", "--help"],
        &["keys", "list", "--help"],
        &["webhooks", "list", "--help"],
        &["webhooks", "show", "--help"],
        &["webhooks", "create", "--help"],
        &["webhooks", "disable", "--help"],
        &["webhooks", "enable", "--help"],
        &["webhooks", "rotate-secret", "--help"],
        &["webhooks", "delete", "--help"],
        &["webhooks", "replay", "--help"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderctl"))
            .args(args)
            .output()
            .expect("orderctl runs");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn an_operator_erases_an_orders_personal_data_with_one_command() {
    let app = TestApp::spawn().await;
    for number in ["ctl-erase", "ctl-packing"] {
        let mut order = sample_order();
        order["package"]["order_number"] = json!(number);
        assert_eq!(app.post_order(&order).await.status, 201);
    }
    let cancel = "/apicenter/api/order/ctl-erase/cancel";
    assert_eq!(app.post_json(cancel, &json!({})).await.status, 200);

    let erased = orderctl(&app, &["--json", "order", "erase", "ctl-erase"]);
    let in_warehouse = orderctl(&app, &["order", "erase", "ctl-packing"]);
    let missing = orderctl(&app, &["order", "erase", "ctl-nosuch"]);

    assert_succeeded(&erased);
    assert_eq!(json_of(&erased)["message"], "personal data erased");
    assert!(json_of(&erased)["order"]["personal_data_redacted_at"].is_string());
    assert_eq!(in_warehouse.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&in_warehouse.stderr).contains("handed over"));
    assert_eq!(missing.status.code(), Some(3));
    let shown = orderctl(&app, &["order", "show", "ctl-erase"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("redacted 20"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let history = format!("{:?}", app.stored_history().await);
    assert_eq!(
        history.matches("Juan Carlos García").count(),
        1,
        "only ctl-packing keeps it"
    );
}

/// An event of client 20 in the stack's event log and its delivery to
/// `endpoint`, failed after its whole schedule (the last answer a 503).
async fn failed_delivery(
    stack: &local_stack::Stack,
    endpoint: &str,
) -> shared::webhook::DeliveryTicket {
    use shared::ports::{DeliveryStore, EventLog};
    use shared::webhook::{Attempt, Delivery, DeliveryStatus, EndpointId, EventType, WebhookEvent};
    let store = adapters::dynamodb_webhooks::DynamoWebhooks::new(
        stack.dynamodb.clone(),
        stack.resources.table("WebhooksTable").expect("webhooks"),
        shared::webhook::Reach::Internet,
    );
    let event = WebhookEvent {
        id: "evt_ctl1".into(),
        kind: EventType::OrderShipped,
        client_code: "20".into(),
        order_number: "ctl-hook-1".into(),
        sequence: 4,
        at: chrono::Utc::now() - chrono::Duration::hours(1),
        body: r#"{"type":"order.shipped"}"#.into(),
    };
    store.append(&event).await.expect("logged");
    let id = EndpointId::parse(endpoint).expect("an endpoint id");
    let ticket = shared::webhook::DeliveryTicket::new(&id, &event);
    let failed = Delivery {
        status: DeliveryStatus::Failed,
        posts: 9,
        last_attempt: Some(Attempt {
            at: chrono::Utc::now(),
            http_status: Some(503),
            latency_ms: 420,
            excerpt: "upstream ERP is down".into(),
        }),
        ..Delivery::of(&event)
    };
    assert!(store.add(&ticket, &failed).await.expect("stored"));
    ticket
}

#[tokio::test]
async fn an_operator_manages_an_erps_webhook_endpoint_and_replays_its_failed_delivery() {
    let stack = integration_tests::provision_stack().await;
    let ctl = |args: &[&str]| {
        let output = orderctl_on(&stack, &[&["--json", "webhooks"][..], args].concat());
        assert_succeeded(&output);
        json_of(&output)
    };
    let created = ctl(&[
        "create",
        "--client",
        "20",
        "--url",
        "https://erp.example.com/hooks",
        "--type",
        "order.shipped,order.cancelled",
    ]);
    let id = created["id"].as_str().expect("an id").to_owned();
    let secret = created["secret"].as_str().expect("the secret, once");
    assert!(secret.starts_with("whsec_"), "{created}");
    let listed = ctl(&["list", "--client", "20"]);
    assert_eq!(listed["endpoints"][0]["id"], id.as_str());
    assert_eq!(
        listed["endpoints"][0]["event_types"],
        json!(["order.shipped", "order.cancelled"])
    );
    assert!(
        !listed.to_string().contains(secret),
        "a listing shows no secret"
    );
    assert_eq!(ctl(&["list", "--client", "21"])["endpoints"], json!([]));

    assert_eq!(ctl(&["disable", &id])["enabled"], false);
    assert_eq!(ctl(&["enable", &id])["enabled"], true);
    let rotated = ctl(&["rotate-secret", &id, "--client", "20"]);
    assert!(
        rotated["secret"]
            .as_str()
            .is_some_and(|new| new.starts_with("whsec_") && new != secret)
    );
    assert!(rotated["rotation_overlap_until"].is_string(), "{rotated}");

    let ticket = failed_delivery(&stack, &id).await;
    let shown = ctl(&["show", &id]);
    assert_eq!(shown["client"], "20");
    let attempt = &shown["recent_deliveries"][0];
    assert_eq!(attempt["status"], "failed", "{shown:#}");
    assert_eq!(attempt["last_attempt"]["http_status"], 503);
    assert_eq!(attempt["last_attempt"]["latency_ms"], 420);
    assert_eq!(attempt["last_attempt"]["answer"], "upstream ERP is down");
    let table = orderctl_on(&stack, &["webhooks", "show", &id]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("upstream ERP is down"));

    let since = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    ctl(&["disable", &id]);
    let warned = orderctl_on(
        &stack,
        &["webhooks", "replay", &id, "--since", "2030-01-01T00:00:00Z"],
    );
    assert!(
        String::from_utf8_lossy(&warned.stderr).contains("is disabled"),
        "{warned:?}"
    );
    ctl(&["enable", &id]);
    let replayed = ctl(&["replay", &id, "--since", &since]);
    assert_eq!(
        (replayed["queued"].clone(), replayed["reopened"].clone()),
        (json!(1), json!(1))
    );
    let queue = stack
        .resources
        .queue_url("WebhookDeliveryQueue")
        .expect("queue");
    let message = stack
        .sqs
        .receive_message()
        .queue_url(queue)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("received");
    let sent: Vec<shared::webhook::DeliveryTicket> = message
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("a ticket"))
        .collect();
    assert_eq!(sent, [ticket]);
    assert_eq!(
        ctl(&["show", &id])["recent_deliveries"][0]["status"],
        "pending"
    );
    let again = ctl(&["replay", &id, "--since", &since]);
    assert_eq!(
        (
            again["queued"].clone(),
            again["already_delivered_or_due"].clone()
        ),
        (json!(0), json!(1))
    );

    assert_eq!(ctl(&["delete", &id])["deleted"], id.as_str());
    let gone = orderctl_on(&stack, &["webhooks", "show", &id]);
    assert_eq!(
        gone.status.code(),
        Some(3),
        "a missing endpoint exits 3: {}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[tokio::test]
async fn a_webhook_url_the_rules_refuse_is_named_and_nothing_is_created() {
    let stack = integration_tests::provision_stack().await;
    let refused = orderctl_on(
        &stack,
        &[
            "webhooks",
            "create",
            "--client",
            "20",
            "--url",
            "http://169.254.169.254/latest",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("url"),
        "{refused:?}"
    );
    let listed = json_of(&orderctl_on(
        &stack,
        &["--json", "webhooks", "list", "--client", "20"],
    ));
    assert_eq!(listed["endpoints"], json!([]));
}
