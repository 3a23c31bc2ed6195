//! `make run` keeps its data across restarts: provisioning finds its tables
//! already there, and a callback that was due when the stack stopped (its
//! queue message lost with the SQS emulator) still goes out after the start.

use std::time::Duration;

use integration_tests::partner::{Answer, Partner};
use integration_tests::{TestApp, receive_all, sample_order, test_callback_settings};
use local_stack::Stack;
use local_stack::stack::local_warehouses;
use serde_json::json;

/// The sample order created, shipped and handed over, its callback due; no
/// dispatcher.
async fn app_with_a_due_callback() -> TestApp {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for event in [
        json!({"event_id": "e-1", "type": "shipped", "occurred_at": now, "tracking_number": "YT1",
               "logistic_provider_code": "jito", "shipping_fee": "12.50", "currency": "USD",
               "shipping_provider_product": "Standard"}),
        json!({"event_id": "e-2", "type": "handed_over", "occurred_at": now}),
    ] {
        assert_eq!(app.post_event("mabang-test002", &event).await.status, 200);
    }
    app
}

#[tokio::test]
async fn a_callback_due_at_the_stop_is_delivered_after_the_restart() {
    // Before the stop: an order handed over, its callback due, no dispatcher.
    let app = app_with_a_due_callback().await;
    let queue = app.stack.callback_queue_url().expect("queue").to_owned();
    // The stop: the emulator's queue forgets the message the outbox sent.
    assert_eq!(receive_all(&app, &queue).await.len(), 1);
    app.stack
        .sqs
        .purge_queue()
        .queue_url(&queue)
        .send()
        .await
        .expect("purged");

    // The restart: the same names provision again over the kept tables, and
    // what make run does on start re-arms the due callback.
    let prefix = app
        .stack
        .orders_table()
        .expect("table")
        .trim_end_matches("-OrdersTable")
        .to_owned();
    let restarted = Stack::provision(&prefix, local_warehouses().expect("warehouses"))
        .await
        .expect("provisioning finds its tables and carries on");
    let rearmed = local_stack::rearm::rearm_due_callbacks(
        &restarted.store().expect("store"),
        &local_stack::rearm::Pace::unpaced(),
    )
    .await
    .expect("re-armed");
    assert_eq!(rearmed, 1);
    let partner = Partner::start(vec![]).await;
    let settings = test_callback_settings(&partner.url);
    let dispatcher = restarted.clone();
    let task = tokio::spawn(async move { dispatcher.run_dispatcher(&settings).await });

    let order = app
        .wait_for_order("mabang-test002", Duration::from_secs(30), |o| {
            o["callback"]["status"] == "delivered"
        })
        .await;
    assert_eq!(order["callback"]["attempt_count"], 1);
    assert_eq!(partner.received().len(), 1);
    task.abort();
}

/// The re-arm lists the due callbacks first, then replays them paced (25 a
/// second, waiting while the queue has a backlog): a callback that failed
/// in between is replayable by an operator, but no longer due. The soak
/// once found a refused order's callback re-armed after it failed, its new
/// generation still pending when the run ended.
#[tokio::test]
async fn a_callback_that_failed_after_the_listing_is_not_re_armed() {
    let app = app_with_a_due_callback().await;
    let store = app.stack.store().expect("store");
    let listed = local_stack::rearm::due_orders(&store)
        .await
        .expect("listed");
    assert_eq!(listed.len(), 1);
    // Meanwhile the partner refuses the shipment: the callback fails.
    let partner = Partner::start(vec![Answer::status(
        200,
        json!({"Success": false, "Message": "refused"}),
    )])
    .await;
    let settings = test_callback_settings(&partner.url);
    let dispatcher = app.stack.clone();
    let task = tokio::spawn(async move { dispatcher.run_dispatcher(&settings).await });
    app.wait_for_order("mabang-test002", Duration::from_secs(30), |o| {
        o["callback"]["status"] == "failed"
    })
    .await;
    task.abort();

    let rearmed =
        local_stack::rearm::rearm_listed(&store, &local_stack::rearm::Pace::unpaced(), listed)
            .await
            .expect("re-arm ran");
    assert_eq!(rearmed, 0);
    let order = app
        .wait_for_order("mabang-test002", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(order["callback"]["status"], "failed");
    assert_eq!(partner.received().len(), 1);
}
