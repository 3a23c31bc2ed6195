//! The partner's OAuth2 tokens, end to end: a real HTTP partner that also
//! plays CK1's token endpoint (tokens that expire, refresh tokens that
//! rotate), the credentials in Secrets Manager (moto), the refresh lock in
//! DynamoDB Local.

use std::time::Duration;

use integration_tests::partner::{Answer, CLIENT_SECRET, FIRST_REFRESH_TOKEN, Partner};
use integration_tests::{TestApp, callback_is, oauth_callback_settings};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn app_with_oauth_partner(lifetime: Duration, dispatchers: usize) -> (TestApp, Partner) {
    let mut app = TestApp::spawn().await;
    let partner = Partner::start_oauth(vec![], lifetime).await;
    let settings = oauth_callback_settings(&partner);
    for _ in 0..dispatchers {
        app.start_dispatcher(&settings);
    }
    app.partner = Some(partner.clone());
    (app, partner)
}

fn delivered(data: &Value) -> bool {
    callback_is(data, "delivered")
}

#[tokio::test]
async fn the_first_callback_refreshes_the_token_and_is_delivered() {
    let (app, partner) = app_with_oauth_partner(Duration::from_secs(600), 1).await;

    app.ship_sample_order("oauth-1").await;
    let order = app.wait_for_order("oauth-1", WAIT, delivered).await;

    assert_eq!(partner.refreshes(), 1);
    assert_eq!(order["callback"]["attempts"].as_array().unwrap().len(), 1);
    let bearer = app.partner_requests()[0].authorization.clone();
    assert_eq!(bearer.as_deref(), Some("Bearer access-1"));
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_the_same_attempt_delivers() {
    let (app, partner) = app_with_oauth_partner(Duration::from_secs(600), 1).await;
    app.ship_sample_order("oauth-2").await;
    app.wait_for_order("oauth-2", WAIT, delivered).await;

    partner.expire_tokens();
    app.ship_sample_order("oauth-3").await;
    let order = app.wait_for_order("oauth-3", WAIT, delivered).await;

    assert_eq!(partner.rejected(), 1, "one 401, then the refreshed token");
    assert_eq!(partner.refreshes(), 2);
    let attempts = order["callback"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "the repeat is part of the same attempt");
    assert_eq!(attempts[0]["outcome"], "delivered");
}

#[tokio::test]
async fn tokens_expiring_mid_run_never_fail_a_callback() {
    // Tokens live 2 s (refreshed after 80 %); orders keep coming for 6 s.
    let (app, partner) = app_with_oauth_partner(Duration::from_secs(2), 1).await;
    let numbers: Vec<String> = (0..6).map(|i| format!("expiry-{i}")).collect();
    for number in &numbers {
        app.ship_sample_order(number).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for order in app.wait_until_delivered(&numbers, WAIT).await {
        assert_ne!(order["callback"]["status"], "failed");
    }
    assert!(partner.refreshes() >= 2, "refreshed as tokens expired");
}

#[tokio::test]
async fn two_dispatchers_refreshing_at_once_do_not_spend_the_rotating_refresh_token_twice() {
    let (app, partner) = app_with_oauth_partner(Duration::from_secs(600), 2).await;
    let numbers = app.ship_sample_orders("pair", 8).await;
    app.wait_until_delivered(&numbers, WAIT).await;
    partner.expire_tokens();
    let later = app.ship_sample_orders("pair-late", 8).await;
    app.wait_until_delivered(&later, WAIT).await;
    assert_eq!(
        partner.spent_refresh_tokens(),
        0,
        "no dispatcher spent a refresh token another had already rotated"
    );
    assert_eq!(partner.refreshes(), 2, "one refresh per expiry, fleet-wide");
}

#[tokio::test]
async fn the_token_endpoint_down_retries_the_callback_with_the_reason_in_its_ledger() {
    let mut app = TestApp::spawn().await;
    let partner = Partner::start_oauth(vec![Answer::ok()], Duration::from_secs(600)).await;
    partner.set_token_endpoint_down(true);
    app.start_dispatcher(&oauth_callback_settings(&partner));
    app.partner = Some(partner.clone());

    app.ship_sample_order("down-1").await;
    let order = app
        .wait_for_order("down-1", WAIT, |data| {
            data["callback"]["status"] == "retrying"
        })
        .await;
    let reason = order["callback"]["reason"].as_str().unwrap();
    // A 503 from the token endpoint is the partner down, not our
    // credentials refused: the breaker counts it as a post left unanswered.
    assert!(
        reason.starts_with("the partner's token endpoint is out of reach"),
        "{reason}"
    );
    assert!(reason.contains("HTTP 503"), "{reason}");
    assert!(!reason.contains(CLIENT_SECRET) && !reason.contains(FIRST_REFRESH_TOKEN));

    partner.set_token_endpoint_down(false);
    let order = app.wait_for_order("down-1", WAIT, delivered).await;
    assert_eq!(order["callback"]["attempts"][0]["outcome"], "retrying");
}

#[tokio::test]
async fn the_partners_error_envelope_is_kept_in_the_ledger() {
    let app = TestApp::spawn_with_partner(vec![Answer::status(
        500,
        json!({"Errors": [{"Code": "800F1533", "Message": "internal error"}],
               "TicketId": "0c7d5e1a-1111-4222-8333-944455556666",
               "UtcDateTime": "2026-11-30T06:00:00Z", "RequestUri": "/v1/outboundOrders/PlatformOrder/Callback"}),
    )])
    .await;
    app.ship_sample_order("envelope-1").await;
    let order = app.wait_for_order("envelope-1", WAIT, delivered).await;

    let first = &order["callback"]["attempts"][0];
    assert_eq!(first["http_status"], 500);
    assert_eq!(first["partner_code"], "800F1533");
    assert_eq!(first["partner_message"], "internal error");
    assert_eq!(first["ticket_id"], "0c7d5e1a-1111-4222-8333-944455556666");
}
