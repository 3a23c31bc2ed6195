//! The order lifecycle's use cases: a warehouse event, an ERP cancellation or
//! callback fields, an operator's replay, a warehouse fetching a label.
//!
//! - [`requests`]: the edge: each request body read into its typed request
//!   (size, then every problem listed), before any use case runs;
//! - [`event`]: reads an event body ([`parse_event`]);
//! - [`callback_fields`]: reads the callback fields an ERP supplies later;
//! - [`label`]: the warehouse's label link;
//! - [`personal_data`]: erasure on request and the scheduled redaction;
//! - `service`: [`Lifecycle`], each request as one conditional write.
//!
//! The rules they apply live with the stored order: the status machine in
//! [`crate::record::progress`], the event types in [`crate::record::event`].

pub mod callback_fields;
pub mod event;
pub mod label;
pub mod personal_data;
pub mod requests;
mod service;

pub use event::parse_event;
pub use service::{Lifecycle, LifecycleError};
