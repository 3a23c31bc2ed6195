//! The circuit breaker in front of the partner, end to end: its state is an
//! item in the partner-state table (DynamoDB Local) shared by the
//! dispatchers, and the partner is a real HTTP server. Both tests use the
//! deployed rule (20 posts in 30 s, 90 % of them failed); only the holds are
//! compressed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::partner::{Partner, flaky_script};
use integration_tests::{TestApp, test_callback_settings};
use local_stack::Stack;
use local_stack::stack::CallbackSettings;
use shared::callback::breaker::BreakerPolicy;

const WAIT: Duration = Duration::from_secs(60);

/// The breaker item's `state` ("open", "closed"), if it was ever written.
async fn breaker_state(stack: &Stack) -> Option<String> {
    let table = stack
        .resources
        .table("PartnerStateTable")
        .expect("the partner-state table");
    let item = stack
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

/// Sets `opened` as soon as the breaker item says "open", until dropped.
fn watch_breaker(app: &TestApp, opened: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let stack = app.stack.clone();
    tokio::spawn(async move {
        loop {
            if breaker_state(&stack).await.as_deref() == Some("open") {
                opened.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The deployed rule, with holds short enough for a test.
fn compressed() -> BreakerPolicy {
    BreakerPolicy {
        cool_down: Duration::from_secs(1),
        max_cool_down: Duration::from_secs(2),
        probe_lease: Duration::from_secs(5),
        ramp: Duration::from_secs(2),
        ..BreakerPolicy::default()
    }
}

/// Starts a dispatcher for `partner` with `settings` and the compressed
/// breaker; the flag is set once the breaker opens, until the handle is aborted.
fn start_watched(
    app: &mut TestApp,
    partner: &Partner,
    mut settings: CallbackSettings,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    settings.breaker = Some(compressed());
    app.start_dispatcher(&settings);
    app.partner = Some(partner.clone());
    let opened = Arc::new(AtomicBool::new(false));
    let watcher = watch_breaker(app, Arc::clone(&opened));
    (opened, watcher)
}

#[tokio::test]
async fn a_partner_failing_every_post_opens_the_breaker_within_seconds_and_every_callback_is_delivered_when_it_returns()
 {
    let mut app = TestApp::spawn().await;
    let partner = Partner::start(vec![]).await;
    partner.set_down(true);
    let mut settings = test_callback_settings(&partner.url);
    // 8 posts 2 s apart: 14 s of span, which the outage stays within.
    settings.retry_delays = Some(vec![Duration::from_secs(2)]);
    let (opened, watcher) = start_watched(&mut app, &partner, settings);

    let numbers = app.ship_sample_orders("outage", 24).await;
    let first_post = partner.received().first().map(|r| r.at);
    let deadline = first_post.expect("a post while down") + Duration::from_secs(5);
    while std::time::Instant::now() < deadline && !opened.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        opened.load(Ordering::SeqCst),
        "the breaker opened within 5 s of the first failed post"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let posts_while_down = partner.received().len();
    partner.set_down(false);

    for order in app.wait_until_delivered(&numbers, WAIT).await {
        assert_ne!(order["callback"]["status"], "dead_lettered");
    }
    watcher.abort();
    // Without the breaker the 24 callbacks would have posted every 2 s while
    // it was down (≈ 100 posts); with it: about the 20 that opened it, the
    // retries under way, and 3 probes a second.
    assert!(
        posts_while_down <= 60,
        "{posts_while_down} posts while the partner was down"
    );
    assert_eq!(breaker_state(&app.stack).await.as_deref(), Some("closed"));
}

#[tokio::test]
async fn a_partner_failing_thirty_percent_of_posts_at_random_never_opens_the_breaker() {
    let mut app = TestApp::spawn().await;
    // 5xx, 429 and answers after the 1 s timeout, 30 % of the first 80
    // posts; this seed has a run of 6 failures in a row among them (what
    // opened the breaker when it counted failures in a row).
    let script = flaky_script(36, 80, 30, Duration::from_millis(1500));
    let longest_run = script
        .iter()
        .scan(0, |run, answer| {
            *run = if answer.status == 200 && answer.delay.is_zero() {
                0
            } else {
                *run + 1
            };
            Some(*run)
        })
        .max();
    assert!(longest_run >= Some(6), "{longest_run:?}");
    let partner = Partner::start(script).await;
    let settings = test_callback_settings(&partner.url);
    let (opened, watcher) = start_watched(&mut app, &partner, settings);

    let numbers = app.ship_sample_orders("flaky", 60).await;
    app.wait_until_delivered(&numbers, WAIT).await;
    watcher.abort();
    assert!(
        !opened.load(Ordering::SeqCst),
        "the breaker opened on a partner that answers 70 % of posts"
    );
}
