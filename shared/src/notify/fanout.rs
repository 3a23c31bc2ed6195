//! From one write of an order to its events and their deliveries: the
//! events the write made ([`changes`]), each logged once, and one delivery
//! per endpoint of the order's client that wants it, announced on the
//! delivery queue. Every step is idempotent, so the stream may hand the same
//! write over again (it does, at least once) without a second delivery.

use crate::error::StoreError;
use crate::ports::{DeliveryQueue, DeliveryStore, EndpointStore, EventLog, QueueError};
use crate::webhook::{Delivery, DeliveryTicket, OrderState, WebhookEvent, changes};

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
}

impl<E: EndpointStore, L: EventLog, D: DeliveryStore, Q: DeliveryQueue> FanOut<E, L, D, Q> {
    pub fn new(endpoints: E, log: L, deliveries: D, queue: Q) -> Self {
        Self {
            endpoints,
            log,
            deliveries,
            queue,
        }
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
        let endpoints = self.endpoints.list(&after.client_code).await?;
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
