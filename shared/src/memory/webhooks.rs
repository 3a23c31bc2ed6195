//! In-memory webhook ports for tests: the rules the DynamoDB adapter's
//! conditional writes enforce, enforced here over maps. Each is a handle:
//! its clones share one state, as the use cases sharing one table do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::callback::retry::RetryPolicy;
use crate::error::StoreError;
use crate::ports::{
    Clock, DeliveryClaim, DeliveryQueue, DeliveryStore, EndpointStore, EventLog, QueueError,
    Reopen, Save, WebhookPoster,
};
use crate::webhook::{
    Delivery, DeliveryTicket, Endpoint, EndpointId, EndpointUrl, MAX_ENDPOINTS, PostResult,
    SignedHeaders, WebhookEvent,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default, Clone)]
pub struct MemoryEndpoints {
    endpoints: Arc<Mutex<BTreeMap<(String, String), Endpoint>>>,
}

impl EndpointStore for MemoryEndpoints {
    async fn insert(&self, endpoint: &Endpoint) -> Result<bool, StoreError> {
        let mut endpoints = lock(&self.endpoints);
        let owned = endpoints
            .keys()
            .filter(|(client, _)| *client == endpoint.client_code)
            .count();
        if owned >= MAX_ENDPOINTS {
            return Ok(false);
        }
        let key = (
            endpoint.client_code.clone(),
            endpoint.id.as_str().to_owned(),
        );
        endpoints.insert(key, endpoint.clone());
        Ok(true)
    }

    async fn list(&self, client_code: &str) -> Result<Vec<Endpoint>, StoreError> {
        let mut listed: Vec<Endpoint> = lock(&self.endpoints)
            .values()
            .filter(|endpoint| endpoint.client_code == client_code)
            .cloned()
            .collect();
        listed.sort_by_key(|endpoint| endpoint.created_at);
        Ok(listed)
    }

    async fn get(
        &self,
        client_code: &str,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let key = (client_code.to_owned(), id.as_str().to_owned());
        Ok(lock(&self.endpoints).get(&key).cloned())
    }

    async fn save(&self, endpoint: &Endpoint, read_version: u64) -> Result<Save, StoreError> {
        let key = (
            endpoint.client_code.clone(),
            endpoint.id.as_str().to_owned(),
        );
        let mut endpoints = lock(&self.endpoints);
        match endpoints.get_mut(&key) {
            Some(stored) if stored.version == read_version => {
                *stored = endpoint.clone();
                Ok(Save::Saved)
            }
            _ => Ok(Save::Stale),
        }
    }

    async fn delete(&self, client_code: &str, id: &EndpointId) -> Result<bool, StoreError> {
        let key = (client_code.to_owned(), id.as_str().to_owned());
        Ok(lock(&self.endpoints).remove(&key).is_some())
    }
}

#[derive(Debug, Default, Clone)]
pub struct MemoryDeliveries {
    deliveries: Arc<Mutex<BTreeMap<(String, String), Delivery>>>,
}

impl MemoryDeliveries {
    /// The stored delivery, as a consistent read would return it.
    #[must_use]
    pub fn stored(&self, ticket: &DeliveryTicket) -> Option<Delivery> {
        lock(&self.deliveries).get(&key(ticket)).cloned()
    }
}

fn key(ticket: &DeliveryTicket) -> (String, String) {
    (ticket.endpoint_id.clone(), ticket.entry.clone())
}

impl DeliveryStore for MemoryDeliveries {
    async fn add(&self, ticket: &DeliveryTicket, delivery: &Delivery) -> Result<bool, StoreError> {
        let mut deliveries = lock(&self.deliveries);
        if deliveries.contains_key(&key(ticket)) {
            return Ok(false);
        }
        deliveries.insert(key(ticket), delivery.clone());
        Ok(true)
    }

    async fn claim(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Option<DeliveryClaim>, StoreError> {
        let mut deliveries = lock(&self.deliveries);
        let Some(delivery) = deliveries.get_mut(&key(ticket)) else {
            return Ok(None);
        };
        Ok(Some(match delivery.claim(owner, now, policy) {
            Ok(()) => DeliveryClaim::Claimed(delivery.clone()),
            Err(refused) => DeliveryClaim::Refused(refused),
        }))
    }

    async fn settle(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        delivery: &Delivery,
    ) -> Result<Save, StoreError> {
        let mut deliveries = lock(&self.deliveries);
        match deliveries.get_mut(&key(ticket)) {
            Some(stored)
                if stored
                    .lease
                    .as_ref()
                    .is_some_and(|lease| lease.owner == owner) =>
            {
                *stored = delivery.clone();
                Ok(Save::Saved)
            }
            // The same settle sent again after it was done (its answer lost).
            Some(stored) if stored == delivery => Ok(Save::Saved),
            _ => Ok(Save::Stale),
        }
    }

    async fn reopen(
        &self,
        ticket: &DeliveryTicket,
        now: DateTime<Utc>,
    ) -> Result<Option<Reopen>, StoreError> {
        let mut deliveries = lock(&self.deliveries);
        let Some(delivery) = deliveries.get_mut(&key(ticket)) else {
            return Ok(None);
        };
        Ok(Some(match delivery.reopen(now) {
            Ok(()) => Reopen::Reopened(delivery.clone()),
            Err(refused) => Reopen::Refused(refused),
        }))
    }

    async fn recent(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(lock(&self.deliveries)
            .iter()
            .rev()
            .filter(|((id, _), _)| id == endpoint.as_str())
            .take(limit)
            .map(|(_, delivery)| delivery.clone())
            .collect())
    }
}

#[derive(Debug, Default, Clone)]
pub struct MemoryEventLog {
    events: Arc<Mutex<BTreeMap<(String, String), WebhookEvent>>>,
}

impl EventLog for MemoryEventLog {
    async fn append(&self, event: &WebhookEvent) -> Result<(), StoreError> {
        let key = (event.client_code.clone(), event.log_entry());
        lock(&self.events).insert(key, event.clone());
        Ok(())
    }

    async fn since(
        &self,
        client_code: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        Ok(lock(&self.events)
            .values()
            .filter(|event| event.client_code == client_code && event.at >= since)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// A queue that keeps what it was sent and the delays it was told.
#[derive(Debug, Default, Clone)]
pub struct MemoryDeliveryQueue {
    sent: Arc<Mutex<Vec<DeliveryTicket>>>,
    delays: Arc<Mutex<Vec<(String, std::time::Duration)>>>,
}

impl MemoryDeliveryQueue {
    /// The tickets sent since the last call.
    pub fn take(&self) -> Vec<DeliveryTicket> {
        std::mem::take(&mut *lock(&self.sent))
    }

    /// The messages hidden (receipt, delay), in order.
    #[must_use]
    pub fn delays(&self) -> Vec<(String, std::time::Duration)> {
        lock(&self.delays).clone()
    }
}

impl DeliveryQueue for MemoryDeliveryQueue {
    async fn send(&self, tickets: &[DeliveryTicket]) -> Result<(), QueueError> {
        lock(&self.sent).extend_from_slice(tickets);
        Ok(())
    }

    async fn retry_in(&self, receipt: &str, delay: std::time::Duration) -> Result<(), QueueError> {
        lock(&self.delays).push((receipt.to_owned(), delay));
        Ok(())
    }
}

/// One post a [`MemoryPoster`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub url: String,
    pub headers: SignedHeaders,
    pub body: String,
}

/// Endpoints played in memory: each post to a URL gets the next status
/// scripted for it (`None`: no answer, a timeout), 200 once its script is
/// used up or when it has none.
#[derive(Debug, Default, Clone)]
pub struct MemoryPoster {
    scripts: Arc<Mutex<BTreeMap<String, Vec<Option<u16>>>>>,
    posted: Arc<Mutex<Vec<Posted>>>,
}

impl MemoryPoster {
    /// Scripts the answers of `url`, in order.
    pub fn script(&self, url: &str, answers: &[Option<u16>]) {
        let answers = answers.iter().rev().copied().collect();
        lock(&self.scripts).insert(url.to_owned(), answers);
    }

    #[must_use]
    pub fn posted(&self) -> Vec<Posted> {
        lock(&self.posted).clone()
    }
}

impl WebhookPoster for MemoryPoster {
    async fn post(
        &self,
        url: &EndpointUrl,
        headers: &SignedHeaders,
        body: &str,
        _timeout: std::time::Duration,
    ) -> PostResult {
        lock(&self.posted).push(Posted {
            url: url.as_str().to_owned(),
            headers: headers.clone(),
            body: body.to_owned(),
        });
        let status = lock(&self.scripts)
            .get_mut(url.as_str())
            .and_then(Vec::pop)
            .unwrap_or(Some(200));
        PostResult {
            http_status: status,
            excerpt: status.map_or_else(|| "timed out".to_owned(), |s| format!("status {s}")),
            latency_ms: 1,
            retry_after: None,
        }
    }
}

/// A clock tests move by hand.
#[derive(Debug, Clone)]
pub struct HandClock(Arc<Mutex<DateTime<Utc>>>);

impl HandClock {
    #[must_use]
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.0) += by;
    }
}

impl Clock for HandClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}
