//! Webhooks to ERPs: every change of an order an ERP cares about, pushed to
//! the endpoints its key registered, signed to the Standard Webhooks 1.0 spec.
//!
//! | to change… | look in |
//! | --- | --- |
//! | which change is which event, and what an event carries | `event.rs` |
//! | the subscription routes' bodies | `request.rs` |
//! | an endpoint's secret (`whsec_…`) | `secret.rs` |
//! | the signature headers | `signature.rs` |
//! | one event's delivery to one endpoint: claim, lease, schedule, settle, reopen | `delivery.rs` |
//! | an endpoint: its secrets, rotation, health, backoff, disabling | `endpoint.rs` |
//! | which URLs and addresses a delivery may reach | `endpoint_url.rs` |

mod delivery;
mod endpoint;
mod endpoint_url;
mod event;
mod request;
mod secret;
mod signature;

pub use delivery::{
    Attempt, Delivery, DeliveryStatus, DeliveryTicket, Lease, MAX_EXCERPT_CHARS, NotClaimed,
    NotReopened, POST_TIMEOUT, PostResult, Settled, StaleLease, schedule,
};
pub use endpoint::{
    Admission, Answer, Endpoint, EndpointId, FAILING_LIMIT, FIRST_BACKOFF, Health, MAX_BACKOFF,
    MAX_ENDPOINTS, PROBE_RECHECK, ROTATION_OVERLAP,
};
pub use endpoint_url::{EndpointUrl, MAX_URL_CHARS, Reach, Unreachable};
pub use event::{EventType, OrderState, WebhookEvent, changes};
pub use request::{
    EndpointChange, EventTypes, NewEndpoint, parse_endpoint_change, parse_new_endpoint,
};
pub use secret::{NotASecret, WebhookSecret};
pub use signature::{SignedHeaders, sign};

#[cfg(test)]
mod tests;
