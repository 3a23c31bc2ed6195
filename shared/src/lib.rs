//! The order model and rules shared by the Lambda functions.
//!
//! - [`domain`]: value types that cannot hold a bad value once parsed
//!   (`OrderNumber`, `Money`, `Platform`, the `Order` itself).
//! - [`intake`]: spec 000's intake: parse with every problem listed, data-quality
//!   findings, idempotent create over the [`ports::OrderStore`] port.
//! - [`record`] / [`view`]: what is stored about an order and how the API shows it.
//! - [`polling`]: ERP polling, the change feed over sharded indexes.
//! - [`ports`]: the traits the core needs; [`adapters`]: their AWS implementations;
//!   `memory` (feature `memory`): an in-memory store with the same semantics, for tests.
//! - [`error`]: one error enum per layer; [`api`]: the single place that turns
//!   errors into HTTP status codes and the `{code, data, message}` envelope.
//! - [`config`]: typed configuration read once at start-up; [`logging`]: the
//!   functions' log set-up.

pub mod adapters;
pub mod api;
pub mod auth;
pub mod callback;
pub mod config;
pub mod domain;
pub mod error;
pub mod hex;
pub mod intake;
pub mod lifecycle;
pub mod logging;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod polling;
pub mod ports;
mod reader;
pub mod record;
pub mod update;
pub mod view;
