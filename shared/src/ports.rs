//! The traits the core needs from the outside world. Adapters in
//! [`crate::adapters`] implement them for AWS; unit tests use in-memory ones.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::callback::body::CallbackBody;
use crate::domain::OrderNumber;
use crate::error::{QueueError, StoreError};
use crate::record::OrderRecord;

/// The result of inserting an order that may already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// Nothing was written; this is what the store holds under that number.
    AlreadyExists(Box<OrderRecord>),
}

/// The result of a conditional save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    Saved,
    /// Someone saved the order since it was read: read it again and redo.
    Stale,
}

/// Durable order state, keyed by order number.
pub trait OrderStore: Send + Sync {
    /// Writes `record` only if no order with its number exists (atomically).
    fn insert_new(
        &self,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<Insert, StoreError>> + Send;

    fn get(
        &self,
        order_number: &OrderNumber,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;

    /// Saves the mutable state of `record` if the stored version is still
    /// `record.version`; on success the version is incremented.
    fn save(
        &self,
        record: &mut OrderRecord,
    ) -> impl Future<Output = Result<Save, StoreError>> + Send;

    /// Orders whose callback has waited for a dispatcher since before `due_before`.
    fn stuck_callbacks(
        &self,
        due_before: DateTime<Utc>,
        limit: i32,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send;

    /// Order numbers stored under a client's marketplace order number
    /// ([`crate::domain::Order::client_platform_order_key`]).
    fn orders_with_platform_order(
        &self,
        client_platform_order_key: &str,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send;
}

/// The callback queue: a message asks a dispatcher to report an order's shipment.
pub trait CallbackQueue: Send + Sync {
    fn enqueue(
        &self,
        order_number: &OrderNumber,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The platform-callback partner (spec 001).
pub trait PartnerClient: Send + Sync {
    /// Posts one callback. `Err` when no HTTP answer came back.
    fn post_callback(
        &self,
        body: &CallbackBody,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<PartnerReply, TransportError>> + Send;
}

/// An HTTP answer from the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerReply {
    pub status: u16,
    /// `Retry-After`, when the partner sent one in seconds.
    pub retry_after: Option<std::time::Duration>,
    /// The body, as received (possibly not JSON).
    pub body: String,
}

/// No HTTP answer: what happened instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the partner did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("could not reach the partner: {0}")]
    Connect(String),
}

/// The time, behind a trait so tests can fix it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
