//! The order lifecycle: warehouse events and what they do to an order.

pub mod callback_fields;
pub mod event;
pub mod label;
pub mod progress;
mod service;

pub use event::{EventKind, EventSource, Parcel, Shipment, WarehouseEvent, parse_event};
pub use progress::{Applied, Impossible, Progress};
pub use service::{Lifecycle, LifecycleError};
