//! The shipment report to the platform-callback API (spec 001).
//!
//! - [`state`]: the callback's state on the order (lease, ledger, outcomes);
//! - [`body`]: the spec-001 body from an order, per-platform requirements;
//! - [`retry`]: the retry schedule;
//! - [`dispatch`]: one delivery of a queue message, end to end;
//! - [`sweep`]: re-enqueues callbacks that were made due but never sent.

pub mod body;
pub mod dispatch;
pub mod retry;
pub mod state;
pub mod sweep;

pub use body::{CallbackBody, Unsendable};
pub use dispatch::{DispatchError, Dispatcher, Disposition, Report};
pub use retry::RetryPolicy;
pub use state::{Attempt, Callback, CallbackStatus, NotClaimable, PartnerAnswer, Verdict};
