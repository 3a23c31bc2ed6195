//! The shipment report to the platform-callback API (spec 001).
//!
//! - [`state`]: the callback's state on the order and the delivery protocol
//!   (generation, claim, lease, settle, replay);
//! - [`body`]: the spec-001 body from an order, per-platform requirements;
//! - [`retry`]: the retry schedule;
//! - [`breaker`]: the fleet-wide circuit breaker in front of the partner;
//!   [`breaker_cache`]: a warm instance's copy of it while it is closed;
//! - [`dispatch`]: one delivery of a queue message, end to end.
//!
//! The queue message itself is sent by the store's outbox (the orders
//! table's stream), never by these functions: see [`crate::ports::OrderStore::save`].

pub mod body;
pub mod breaker;
pub mod breaker_cache;
pub mod dispatch;
#[cfg(test)]
mod protocol_model;
pub mod retry;
pub mod state;

pub use body::{CallbackBody, Unsendable};
pub use dispatch::{Delivery, DispatchError, Dispatcher, Disposition, Report};
pub use retry::RetryPolicy;
pub use state::{
    Attempt, Callback, CallbackStatus, Claim, Lease, NotClaimable, NotReplayable, PartnerAnswer,
    Verdict,
};
