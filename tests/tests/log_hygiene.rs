//! Logs never carry secrets or personal data: a full flow (create, ship,
//! callback, erasure, the scheduled redaction) runs with every log line
//! captured, then the capture is searched for each sensitive value; so does
//! the webhook path (an endpoint created, its secret rotated, events
//! delivered and signed with it).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::webhook_receiver::{Receiver, Reply};
use integration_tests::webhooks::{Rig, every_event_type};
use integration_tests::{PARTNER_TOKEN, TestApp, sample_order};
use reqwest::Method;
use serde_json::json;
use shared::auth::signature::sign;
use shared::domain::Scope;
use shared::webhook::{POST_TIMEOUT, Reach, schedule};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_full_flow_logs_no_keys_signatures_tokens_or_personal_data() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Production level for the SDKs, everything for our own crates.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            "info,shared=trace,order_intake=trace,warehouse_events=trace,callback_dispatch=trace,personal_data_sweep=trace,local_stack=trace",
        )
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::spawn_with_partner(vec![]).await;
    let signed = app
        .stack
        .issue_key(Scope::Client("20".into()), None, true)
        .await
        .unwrap();
    let secret = signed.record.signing_secret.clone().unwrap();
    let body = serde_json::to_vec(&sample_order()).unwrap();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(&secret, timestamp, "POST", "/apicenter/api/order", &body);
    let auth = format!("Bearer {}", signed.key);
    let ts = timestamp.to_string();

    let created = app
        .send(
            Method::POST,
            "/apicenter/api/order",
            &[
                ("authorization", &auth),
                ("x-signature-timestamp", &ts),
                ("x-signature", &signature),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    app.backdate("mabang-test002", "2026-11-20T00:00:00Z").await;
    let mut bad = sample_order();
    bad["items"] = json!([]);
    assert_eq!(app.post_order(&bad).await.status, 400);
    assert_eq!(
        app.send(
            Method::GET,
            "/apicenter/api/order/x",
            &[("authorization", "Bearer wk_wrong")],
            None
        )
        .await
        .status,
        401
    );
    for (id, kind, extra) in [
        (
            "e-1",
            "shipped",
            json!({"tracking_number": "YT4567890123CN"}),
        ),
        ("e-2", "handed_over", json!({})),
    ] {
        let mut event =
            json!({"event_id": id, "type": kind, "occurred_at": "2026-11-20T10:00:00+08:00"});
        event
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(app.post_event("mabang-test002", &event).await.status, 200);
    }
    app.wait_for_order("mabang-test002", Duration::from_secs(20), |d| {
        d["callback"]["status"] == "delivered"
    })
    .await;

    // The personal data's end: an ERP's erasure, a refused one, and the
    // scheduled sweep over a cancelled order (with a bad e-mail: a finding).
    let erase = |number: &'static str| {
        let auth = format!("Bearer {}", app.erp_key);
        let path = format!("/apicenter/api/order/{number}/personal-data/erase");
        let app = &app;
        async move {
            app.send(Method::POST, &path, &[("authorization", &auth)], None)
                .await
        }
    };
    assert_eq!(erase("mabang-test002").await.status, 200);
    let mut other = sample_order();
    other["package"]["order_number"] = json!("mabang-log2");
    other["receiver"]["email"] = json!("Juan Carlos García at home");
    assert_eq!(app.post_order(&other).await.status, 201);
    assert_eq!(erase("mabang-log2").await.status, 409);
    assert_eq!(app.cancel_order("mabang-log2").await.status, 200);
    let swept = app.sweep_personal_data_after(31).await;
    assert_eq!(swept.redacted, 1);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("mabang-test002") && logs.contains("personal-data sweep"),
        "the capture caught nothing:\n{logs}"
    );
    for secret_value in [
        signed.key.as_str(),
        secret.as_str(),
        signature.as_str(),
        app.erp_key.as_str(),
        app.wms_key.as_str(),
        PARTNER_TOKEN,
        "+34 655549503",
        "mabang@qq.com",
        "Calle vía de Dublín",
        "Juan Carlos García",
    ] {
        assert!(
            !logs.contains(secret_value),
            "the logs contain {secret_value:?}"
        );
    }
}

#[tokio::test]
async fn a_line_break_in_a_client_value_cannot_forge_a_local_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    // The text format `make run` writes, on this test's thread only.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let forged = "e-1\nERROR FORGED key leaked";
    let now = chrono::Utc::now().to_rfc3339();

    let reply = app
        .post_event(
            "mabang-test002",
            &json!({"event_id": forged, "type": "allocated", "occurred_at": now}),
        )
        .await;

    assert_eq!(reply.status, 400, "{}", reply.body);
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("mabang-test002"), "nothing captured:\n{logs}");
    assert!(
        !logs.lines().any(|line| line.starts_with("ERROR FORGED")),
        "{logs}"
    );
}

#[tokio::test]
async fn no_webhook_secret_is_logged_while_endpoints_are_made_rotated_and_delivered_to() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Everything of our own crates, as JSON; on this test's thread only
    // (the runtime of a tokio::test runs every task there).
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info,shared=trace,adapters=trace,webhook_api=trace,webhook_dispatch=trace,webhook_fanout=trace")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    let erp = Receiver::start(Vec::new(), Reply::Status(204)).await;

    let endpoint = rig.subscribe(&erp.url).await;
    let rotated = rig.rotate(&endpoint).await;
    erp.hold(&endpoint.secret);
    erp.hold(&rotated);
    for (before, after) in every_event_type("mabang-hook-logs").into_iter().take(2) {
        rig.publish(before.as_ref(), &after).await;
    }
    rig.dispatch_until(Duration::from_secs(15), || erp.received().len() >= 2)
        .await;

    assert!(
        erp.received().iter().all(|r| r.verifies_with(&rotated)),
        "the deliveries were signed with the rotated secret"
    );
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook delivery") && logs.contains(&endpoint.id),
        "the capture caught nothing:\n{logs}"
    );
    for secret in [&endpoint.secret, &rotated] {
        assert!(secret.starts_with("whsec_"), "{secret}");
        let key = secret.trim_start_matches("whsec_");
        assert!(!logs.contains(key), "the logs contain a webhook secret");
    }
    assert!(
        !logs.contains("whsec_"),
        "the logs contain a webhook secret"
    );
}
