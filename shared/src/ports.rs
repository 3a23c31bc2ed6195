//! The traits the core needs from the outside world. Adapters in
//! [`crate::adapters`] implement them for AWS; unit tests use in-memory ones.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::OrderNumber;
use crate::error::StoreError;
use crate::record::OrderRecord;

/// The result of inserting an order that may already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// Nothing was written; this is what the store holds under that number.
    AlreadyExists(Box<OrderRecord>),
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

    /// Order numbers stored under a client's marketplace order number
    /// ([`crate::domain::Order::client_platform_order_key`]).
    fn orders_with_platform_order(
        &self,
        client_platform_order_key: &str,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send;
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
