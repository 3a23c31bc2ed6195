//! Endpoints as the API shows them: never a secret, except the one just
//! issued.

use serde_json::{Value, json};
use shared::notify::Issued;
use shared::record::format_time;
use shared::webhook::{Delivery, DeliveryStatus, Endpoint, EventTypes};

pub fn endpoint(endpoint: &Endpoint) -> Value {
    let event_types: Value = match &endpoint.event_types {
        EventTypes::All => json!(null),
        EventTypes::Only(kinds) => kinds.iter().map(|kind| kind.as_str()).collect(),
    };
    json!({
        "id": endpoint.id.as_str(),
        "url": endpoint.url.as_str(),
        "event_types": event_types,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.health.failing_since.map(format_time),
        "created_at": format_time(endpoint.created_at),
        "updated_at": format_time(endpoint.updated_at),
    })
}

pub fn issued(issued: &Issued) -> Value {
    let mut shown = endpoint(&issued.endpoint);
    shown["secret"] = json!(issued.secret);
    shown
}

pub fn with_deliveries(endpoint_: &Endpoint, recent: &[Delivery]) -> Value {
    let mut shown = endpoint(endpoint_);
    shown["recent_deliveries"] = recent
        .iter()
        .map(|delivery| {
            json!({
                "event_id": delivery.event_id,
                "type": delivery.kind.as_str(),
                "order_number": delivery.order_number,
                "status": match delivery.status {
                    DeliveryStatus::Pending => "pending",
                    DeliveryStatus::Delivered => "delivered",
                    DeliveryStatus::Failed => "failed",
                },
                "attempts": delivery.posts,
                "last_attempt": delivery.last_attempt.as_ref().map(|attempt| json!({
                    "at": format_time(attempt.at),
                    "http_status": attempt.http_status,
                    "latency_ms": attempt.latency_ms,
                    "answer": attempt.excerpt,
                })),
            })
        })
        .collect();
    shown
}
