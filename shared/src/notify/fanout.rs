//! From one write of an order to its events and their deliveries: the
//! events the write made ([`changes`]), each logged once, and one delivery
//! per endpoint of the order's client that wants it, announced on the
//! delivery queue. Every step is idempotent, so the stream may hand the same
//! write over again (it does, at least once) without a second delivery. The
//! client's endpoints are read at most once per [`ENDPOINTS_TTL`]
//! (`endpoint_cache.rs` says why that staleness is safe).

use std::sync::Arc;

pub use super::endpoint_cache::ENDPOINTS_TTL;
use super::endpoint_cache::EndpointCache;
use crate::error::StoreError;
use crate::ports::{Clock, DeliveryQueue, DeliveryStore, EndpointStore, EventLog, QueueError};
use crate::webhook::{Delivery, DeliveryTicket, Endpoint, OrderState, WebhookEvent, changes};

/// Why a write's events were not all published; the stream retries it.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What publishing one write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub events: usize,
    pub deliveries: usize,
}

#[derive(Debug)]
pub struct FanOut<E, L, D, Q> {
    endpoints: E,
    log: L,
    deliveries: D,
    queue: Q,
    cache: EndpointCache,
}

impl<E: EndpointStore, L: EventLog, D: DeliveryStore, Q: DeliveryQueue> FanOut<E, L, D, Q> {
    pub fn new(endpoints: E, log: L, deliveries: D, queue: Q) -> Self {
        Self {
            endpoints,
            log,
            deliveries,
            queue,
            cache: EndpointCache::default(),
        }
    }

    /// Keeps each client's endpoints for `ttl` by `clock` (a test's hand
    /// clock) instead of [`ENDPOINTS_TTL`] by the system's.
    #[must_use]
    pub fn with_endpoints_kept(
        mut self,
        ttl: chrono::Duration,
        clock: impl Clock + 'static,
    ) -> Self {
        self.cache = EndpointCache::new(ttl, Arc::new(clock));
        self
    }

    /// The client's endpoints, read again once the cached ones are too old.
    async fn endpoints(&self, client_code: &str) -> Result<Vec<Endpoint>, FanOutError> {
        if let Some(endpoints) = self.cache.fresh(client_code) {
            return Ok(endpoints);
        }
        let endpoints = self.endpoints.list(client_code).await?;
        self.cache.keep(client_code, &endpoints);
        Ok(endpoints)
    }

    /// Publishes the events of the write that turned `before` (`None`: it
    /// created the order) into `after`.
    pub async fn publish(
        &self,
        before: Option<&OrderState>,
        after: &OrderState,
    ) -> Result<Published, FanOutError> {
        let kinds = changes(before, after);
        if kinds.is_empty() {
            return Ok(Published::default());
        }
        let endpoints = self.endpoints(&after.client_code).await?;
        let mut tickets = Vec::new();
        for kind in &kinds {
            // Stamped with the write's own time: the same write seen again
            // makes the very same event.
            let event = WebhookEvent::new(*kind, after, after.updated_at);
            self.log.append(&event).await?;
            for endpoint in endpoints.iter().filter(|endpoint| endpoint.wants(*kind)) {
                let ticket = DeliveryTicket::new(&endpoint.id, &event);
                // Announced even when it existed: the write that added it may
                // have stopped before its message went out.
                self.deliveries.add(&ticket, &Delivery::of(&event)).await?;
                tickets.push(ticket);
            }
        }
        self.queue.send(&tickets).await?;
        Ok(Published {
            events: kinds.len(),
            deliveries: tickets.len(),
        })
    }
}
