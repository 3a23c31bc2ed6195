//! The core: the order model and rules shared by the Lambda functions, with no
//! AWS SDK, HTTP client or server in its dependencies.
//!
//! - [`domain`]: value types that cannot hold a bad value once parsed
//!   (`OrderNumber`, `Money`, `Platform`, the `Order` itself).
//! - [`intake`]: spec 000's intake: parse with every problem listed, data-quality
//!   findings, idempotent create over the [`ports::OrderStore`] port.
//! - [`record`] / [`view`]: what is stored about an order and how the API shows it.
//! - [`polling`]: ERP polling, the change feed over sharded indexes.
//! - [`ports`]: the traits the core needs (the `adapters` crate implements them
//!   over AWS); `memory` (feature `memory`): an in-memory store with the same
//!   semantics, for tests.
//! - [`error`]: one error enum per layer (the `adapters` crate's `api` turns
//!   them into HTTP answers).
//! - [`config`]: typed configuration read once at start-up.

pub mod auth;
pub mod callback;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod hex;
pub mod intake;
#[cfg(test)]
mod layout;
pub mod lifecycle;
pub mod limits;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod polling;
pub mod ports;
mod reader;
pub mod record;
pub mod update;
pub mod view;
