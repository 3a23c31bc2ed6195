//! The circuit breaker in front of the partner, end to end: its state is an
//! item in the partner-state table (DynamoDB Local) shared by the dispatchers.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::partner::Partner;
use integration_tests::{TestApp, callback_is, test_callback_settings};
use serde_json::{Value, json};
use shared::callback::breaker::BreakerPolicy;

const WAIT: Duration = Duration::from_secs(40);

/// The breaker item's `state` ("open", "closed"), if it was ever written.
async fn breaker_state(app: &TestApp) -> Option<String> {
    let table = app
        .stack
        .resources
        .table("PartnerStateTable")
        .expect("the partner-state table");
    let item = app
        .stack
        .dynamodb
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S("breaker".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("the breaker item reads")
        .item?;
    item.get("state")
        .and_then(|v| v.as_s().ok())
        .map(ToString::to_string)
}

fn delivered(data: &Value) -> bool {
    callback_is(data, "delivered")
}

#[tokio::test]
async fn an_outage_opens_the_breaker_holds_callbacks_and_a_probe_closes_it_when_the_partner_returns()
 {
    let mut app = TestApp::spawn().await;
    let partner = Partner::start(vec![]).await;
    partner.set_down(true);
    let mut settings = test_callback_settings(&partner.url);
    // A schedule of 4 posts, 3 s apart: 9 s of span; the outage lasts 5 s.
    settings.retry_delays = Some(vec![Duration::from_secs(3)]);
    settings.max_posts = Some(4);
    settings.breaker = Some(BreakerPolicy {
        threshold: 3,
        cool_down: Duration::from_secs(1),
        max_cool_down: Duration::from_secs(2),
        probe_lease: Duration::from_secs(5),
    });
    app.start_dispatcher(&settings);
    app.partner = Some(partner.clone());

    let numbers: Vec<String> = (0..6).map(|i| format!("outage-{i}")).collect();
    for number in &numbers {
        app.ship_sample_order(number).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen_open = false;
    while tokio::time::Instant::now() < deadline {
        seen_open |= breaker_state(&app).await.as_deref() == Some("open");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let posts_while_down = partner.received().len();
    partner.set_down(false);

    for number in &numbers {
        let order = app.wait_for_order(number, WAIT, delivered).await;
        assert_ne!(order["callback"]["status"], "dead_lettered");
    }
    assert!(seen_open, "the breaker opened during the outage");
    // Without the breaker each of the 6 callbacks would have posted twice in
    // 5 s (12); with it: the 3 that opened it, and about one probe a second.
    assert!(
        posts_while_down <= 3 + 6,
        "{posts_while_down} posts while the partner was down"
    );
    assert_eq!(breaker_state(&app).await.as_deref(), Some("closed"));
}

#[tokio::test]
async fn failures_below_the_threshold_leave_the_breaker_closed() {
    let mut app = TestApp::spawn().await;
    let partner = Partner::start(vec![integration_tests::partner::Answer::status(
        503,
        json!({"Message": "blip"}),
    )])
    .await;
    let mut settings = test_callback_settings(&partner.url);
    settings.breaker = Some(BreakerPolicy {
        threshold: 3,
        ..BreakerPolicy::default()
    });
    app.start_dispatcher(&settings);
    app.partner = Some(partner);

    app.ship_sample_order("blip-1").await;
    app.wait_for_order("blip-1", WAIT, delivered).await;

    assert_eq!(breaker_state(&app).await.as_deref(), Some("closed"));
}
