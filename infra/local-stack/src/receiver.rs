//! A webhook receiver on this machine, for people (`webhook-receiver`, the
//! README's walk-through) and for the end-to-end test: it verifies every
//! delivery with the `standardwebhooks` crate (Svix's implementation of the
//! Standard Webhooks specification, not the service's own signer), answers
//! 204 to what verifies and 401 to what does not, and reports each.

use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;
use standardwebhooks::Webhook;
use tokio::net::TcpListener;

use crate::Error;

/// A delivery that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// `webhook-id`: the same on every retry of one event.
    pub id: String,
    /// The body's `type`, e.g. `order.shipped`.
    pub kind: String,
    pub order_number: String,
    /// `data.sequence`: grows with every write of the order.
    pub sequence: u64,
    pub body: Value,
}

/// What the receiver saw: a delivery that verified, or why one was refused.
pub type Seen = Result<Verified, String>;

/// Verifies with the endpoint's secret (`whsec_…`, as the create answer
/// gives it).
///
/// # Errors
/// A secret that is not `whsec_` and base64.
pub fn verifier(secret: &str) -> Result<Webhook, Error> {
    Webhook::new(secret).map_err(|err| Error::Template(format!("the secret: {err}")))
}

/// Serves on `listener` until the task is dropped, calling `seen` with each
/// request's outcome.
pub async fn serve(
    listener: TcpListener,
    webhook: Webhook,
    seen: impl Fn(Seen) + Send + Sync + 'static,
) {
    let webhook = Arc::new(webhook);
    let seen = Arc::new(seen);
    partner::serve(
        listener,
        || true,
        move |request: Request<Incoming>| {
            let webhook = Arc::clone(&webhook);
            let seen = Arc::clone(&seen);
            async move {
                let outcome = receive(&webhook, request).await;
                let status = if outcome.is_ok() { 204 } else { 401 };
                seen(outcome);
                Ok::<_, std::convert::Infallible>(partner::reply(status, ""))
            }
        },
    )
    .await;
}

async fn receive(webhook: &Webhook, request: Request<Incoming>) -> Seen {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|err| format!("the body did not arrive: {err}"))?
        .to_bytes();
    webhook
        .verify(&body, &parts.headers)
        .map_err(|err| format!("not signed with this secret: {err}"))?;
    let body: Value = serde_json::from_slice(&body).map_err(|err| format!("not JSON: {err}"))?;
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    Ok(Verified {
        id: parts
            .headers
            .get("webhook-id")
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        kind: text(&body["type"]),
        order_number: text(&body["data"]["order_number"]),
        sequence: body["data"]["sequence"].as_u64().unwrap_or_default(),
        body,
    })
}
