//! The shipment report to the platform-callback API (spec 001): what to send
//! and how to treat the partner.
//!
//! - [`body`]: the spec-001 body from an order, per-platform requirements;
//! - [`retry`]: the retry schedule;
//! - [`breaker`]: the fleet-wide circuit breaker in front of the partner;
//!   [`breaker_window`]: what one dispatcher saw of the partner lately (the
//!   failure rate that opens it); [`throttle`]: fewer posts at once after a 429.
//!
//! Elsewhere: the callback's state on the order and its delivery protocol
//! (generation, claim, lease, settle, replay) is [`crate::record::callback`];
//! one delivery of a queue message, end to end, and the partner's answer
//! rules, are [`crate::dispatch`]. The
//! queue message itself is sent by the store's outbox (the orders table's
//! stream), never by these functions: see [`crate::ports::OrderStore::save`].

pub mod body;
pub mod breaker;
pub mod breaker_window;
pub mod retry;
pub mod throttle;

pub use body::{CallbackBody, Unsendable};
pub use retry::RetryPolicy;
