//! The spec-001 callback body, by concern:
//!
//! - [`build`](mod@build): the mapping from an order (its table is the module doc), the
//!   fields each platform requires, times in the warehouse's zone, money;
//!   [`Unsendable`] says why no body can be built;
//! - [`document`]: the body as the partner reads it, and its length caps;
//! - [`idempotency`]: the `Idempotency-Key` sent with each post.

pub mod build;
pub mod document;
pub mod idempotency;

pub use build::{Unsendable, build};
pub use document::{CallbackBody, CallbackSku};
pub use idempotency::idempotency_key;
