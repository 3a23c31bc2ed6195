//! The ports' in-memory fakes, for unit and model tests: an [`OrderStore`]
//! with the DynamoDB adapter's semantics (the same conditions, the same
//! outbox), labels, the breaker's item, the callback queue and a partner;
//! the webhook ports' in [`webhooks`].

pub mod webhooks;

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::callback::CallbackBody;
use crate::callback::breaker::BreakerState;
use crate::domain::OrderNumber;
use crate::error::{LabelError, StoreError};
use crate::ports::{
    Access, AccessToken, BreakerStore, CallbackQueue, ClaimOutcome, DueRedactions, Guard, Insert,
    LabelStore, Lookup, OrderStore, PartnerClient, PartnerReply, QueueError, Save, TransportError,
};
use crate::record::OrderRecord;
use crate::record::callback::Claim;

/// Labels in memory, by key.
#[derive(Debug, Default)]
pub struct MemoryLabels(Mutex<BTreeMap<String, Vec<u8>>>);

impl MemoryLabels {
    /// The stored label's bytes.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.0).get(key).cloned()
    }

    /// Every stored label's key.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        lock(&self.0).keys().cloned().collect()
    }
}

impl LabelStore for MemoryLabels {
    async fn put_label(&self, key: &str, bytes: Vec<u8>, _sha256: &str) -> Result<(), LabelError> {
        lock(&self.0).insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn label_link(&self, key: &str, _ttl: std::time::Duration) -> Result<String, LabelError> {
        Ok(format!("memory://{key}"))
    }

    async fn delete_label(&self, key: &str) -> Result<(), LabelError> {
        lock(&self.0).remove(key);
        Ok(())
    }
}

/// A queue message the outbox sends for a write (the stream's job in AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub order_number: OrderNumber,
    pub generation: u64,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    orders: Mutex<BTreeMap<String, OrderRecord>>,
    outbox: Mutex<Vec<OutboxMessage>>,
}

impl MemoryStore {
    /// The messages the outbox sent since the last call.
    pub fn take_outbox(&self) -> Vec<OutboxMessage> {
        std::mem::take(&mut *lock(&self.outbox))
    }

    /// The stored order, as a consistent read would return it.
    #[must_use]
    pub fn stored(&self, order_number: &OrderNumber) -> Option<OrderRecord> {
        lock(&self.orders).get(order_number.as_str()).cloned()
    }

    /// How many orders are stored.
    #[must_use]
    pub fn stored_count(&self) -> usize {
        lock(&self.orders).len()
    }

    /// Writes `record` as it is (a test's arrangement), outbox included.
    pub fn put(&self, record: &mut OrderRecord) {
        self.write(record);
    }

    fn write(&self, record: &mut OrderRecord) {
        if record.callback.send_message {
            lock(&self.outbox).push(OutboxMessage {
                order_number: record.order.order_number.clone(),
                generation: record.callback.generation,
            });
            record.callback.send_message = false;
        }
        lock(&self.orders).insert(record.order.order_number.to_string(), record.clone());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl OrderStore for MemoryStore {
    async fn insert_new(&self, record: &OrderRecord) -> Result<Insert, StoreError> {
        if let Some(stored) = self.stored(&record.order.order_number) {
            return Ok(Insert::AlreadyExists(Box::new(stored)));
        }
        self.write(&mut record.clone());
        Ok(Insert::Inserted)
    }

    async fn get(
        &self,
        order_number: &OrderNumber,
        access: Access<'_>,
    ) -> Result<Lookup, StoreError> {
        Ok(Lookup::judged(self.stored(order_number), access))
    }

    async fn save(&self, record: &mut OrderRecord, guard: Guard<'_>) -> Result<Save, StoreError> {
        let Some(stored) = self.stored(&record.order.order_number) else {
            return Ok(Save::Stale);
        };
        let held = match guard {
            Guard::Version => true,
            Guard::Lease(owner) => stored.callback.held_by(owner),
        };
        if stored.version != record.version || !held {
            return Ok(Save::Stale);
        }
        record.version += 1;
        record.updated_at = crate::record::next_update_stamp(record.updated_at, chrono::Utc::now());
        record.final_at = record.final_since(record.updated_at);
        record.rewrite_request = false;
        self.write(record);
        Ok(Save::Saved)
    }

    async fn claim(
        &self,
        order_number: &OrderNumber,
        claim: &Claim,
    ) -> Result<Option<ClaimOutcome>, StoreError> {
        let Some(mut record) = self.stored(order_number) else {
            return Ok(None);
        };
        // The same delivery's retried write: claimed already, as it stands.
        if record.callback.claimed_by(claim) {
            return Ok(Some(ClaimOutcome::Claimed(Box::new(record))));
        }
        if let Err(why) = record.callback.check_claim(claim) {
            return Ok(Some(ClaimOutcome::Refused(why, Box::new(record))));
        }
        record.callback.apply_claim(claim);
        record.version += 1;
        self.write(&mut record);
        Ok(Some(ClaimOutcome::Claimed(Box::new(record))))
    }

    async fn orders_with_platform_order(
        &self,
        client_platform_order_key: &str,
    ) -> Result<Vec<OrderNumber>, StoreError> {
        Ok(lock(&self.orders)
            .values()
            .filter(|record| {
                record.order.client_platform_order_key().as_deref()
                    == Some(client_platform_order_key)
            })
            .map(|record| record.order.order_number.clone())
            .collect())
    }
}

impl DueRedactions for MemoryStore {
    async fn final_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<OrderNumber>, StoreError> {
        Ok(lock(&self.orders)
            .values()
            .filter(|record| record.redacted_at.is_none())
            .filter(|record| record.final_at.is_some_and(|at| at <= before))
            .take(limit)
            .map(|record| record.order.order_number.clone())
            .collect())
    }
}

/// The breaker's item in memory, with the store's version check.
#[derive(Debug, Default)]
pub struct MemoryBreakerStore(Mutex<BreakerState>);

impl BreakerStore for MemoryBreakerStore {
    async fn load(&self) -> Result<BreakerState, StoreError> {
        Ok(lock(&self.0).clone())
    }

    async fn save(&self, state: &BreakerState) -> Result<bool, StoreError> {
        let mut stored = lock(&self.0);
        if stored.version != state.version {
            return Ok(false);
        }
        *stored = BreakerState {
            version: state.version + 1,
            ..state.clone()
        };
        Ok(true)
    }
}

/// What the handler told the callback queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCall {
    /// The delivery with this receipt is hidden for this long.
    RetryIn(String, std::time::Duration),
    /// A copy of this body went to the dead-letter queue.
    DeadLetter(String),
}

/// A callback queue that records what it is told; while the dead-letter
/// queue is `unreachable`, moves there fail.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    calls: Mutex<Vec<QueueCall>>,
    unreachable: std::sync::atomic::AtomicBool,
}

impl MemoryQueue {
    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<QueueCall> {
        lock(&self.calls).clone()
    }

    /// From now on moves to the dead-letter queue fail (or, with `false`,
    /// succeed again).
    pub fn set_dead_letter_queue_unreachable(&self, unreachable: bool) {
        self.unreachable
            .store(unreachable, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CallbackQueue for MemoryQueue {
    async fn retry_in(&self, receipt: &str, delay: std::time::Duration) -> Result<(), QueueError> {
        lock(&self.calls).push(QueueCall::RetryIn(receipt.to_owned(), delay));
        Ok(())
    }

    async fn dead_letter(&self, body: &str) -> Result<(), QueueError> {
        if self.unreachable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError(
                "the dead-letter queue is unreachable (a test's fault)".into(),
            ));
        }
        lock(&self.calls).push(QueueCall::DeadLetter(body.to_owned()));
        Ok(())
    }
}

/// A partner that answers each order's posts as told (by default
/// `200 {"Success": true}`), and remembers which orders were posted.
/// Clones share their state.
#[derive(Debug, Clone, Default)]
pub struct MemoryPartner {
    answers: std::sync::Arc<Mutex<BTreeMap<String, Result<PartnerReply, TransportError>>>>,
    posted: std::sync::Arc<Mutex<Vec<String>>>,
}

impl MemoryPartner {
    /// From now on, posts for `order_number` get `answer`.
    pub fn answer(&self, order_number: &str, answer: Result<PartnerReply, TransportError>) {
        lock(&self.answers).insert(order_number.to_owned(), answer);
    }

    /// The order number (`ParcelId`) of every post so far, in order.
    #[must_use]
    pub fn posted(&self) -> Vec<String> {
        lock(&self.posted).clone()
    }
}

impl PartnerClient for MemoryPartner {
    async fn post_callback(
        &self,
        body: &CallbackBody,
        _idempotency_key: &str,
        _token: &AccessToken,
    ) -> Result<PartnerReply, TransportError> {
        lock(&self.posted).push(body.parcel_id.clone());
        lock(&self.answers)
            .get(&body.parcel_id)
            .cloned()
            .unwrap_or_else(|| {
                Ok(PartnerReply {
                    status: 200,
                    retry_after: None,
                    body: r#"{"Success": true}"#.into(),
                })
            })
    }
}

/// An order shipped and handed over, its callback due: the spec-000 sample
/// under `order_number` (a test's arrangement; store it with
/// [`MemoryStore::put`]).
///
/// # Panics
/// When `order_number` is not a valid order number.
#[must_use]
pub fn shipped_order(order_number: &str) -> OrderRecord {
    const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");
    let mut body: serde_json::Value = serde_json::from_str(SAMPLE).expect("the sample");
    body["package"]["order_number"] = serde_json::json!(order_number);
    let request = crate::intake::parse_order(&serde_json::to_vec(&body).expect("json"))
        .expect("the sample parses");
    let now = chrono::Utc::now();
    let mut record = OrderRecord::accept(request.order, Vec::new(), now);
    for event in [
        r#"{"event_id":"s","type":"shipped","occurred_at":"2026-11-20T01:00:00Z","tracking_number":"T1"}"#,
        r#"{"event_id":"h","type":"handed_over","occurred_at":"2026-11-20T01:30:00Z"}"#,
    ] {
        let event = crate::lifecycle::parse_event(event.as_bytes()).expect("an event");
        record.apply_event(&event, now).expect("the event applies");
    }
    record
}

/// The memory store keeps no indexes: its change feed is empty (polling's
/// paging is tested over DynamoDB Local); reading by number works.
impl crate::polling::OrderFeed for MemoryStore {
    async fn index_page(
        &self,
        _partition: &str,
        _range: crate::polling::IndexRange<'_>,
    ) -> Result<crate::polling::IndexPage, StoreError> {
        Ok(crate::polling::IndexPage::default())
    }

    async fn get_many(
        &self,
        numbers: &[OrderNumber],
        access: Access<'_>,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        Ok(numbers
            .iter()
            .filter_map(|number| self.stored(number))
            .filter(|record| access.may_read(&record.order))
            .collect())
    }
}

/// API keys in memory, by hash, the signatures spent, and a count of reads.
#[derive(Debug, Default)]
pub struct MemoryKeys {
    keys: Mutex<Vec<crate::domain::ApiKeyRecord>>,
    spent: Mutex<Vec<String>>,
    reads: std::sync::atomic::AtomicUsize,
}

impl MemoryKeys {
    /// Stores `record` (a key issued by `crate::auth::key::issue`).
    pub fn add(&self, record: crate::domain::ApiKeyRecord) {
        lock(&self.keys).push(record);
    }

    /// How many times a key was looked up (what a key cache saves).
    pub fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl crate::ports::KeyStore for MemoryKeys {
    async fn find(
        &self,
        key_hash: &str,
    ) -> Result<Option<crate::domain::ApiKeyRecord>, StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(lock(&self.keys)
            .iter()
            .find(|record| record.key_hash == key_hash)
            .cloned())
    }

    async fn spend_signature(
        &self,
        key_id: &str,
        signed: &crate::domain::SignedRequest,
    ) -> Result<bool, StoreError> {
        let id = format!("{key_id}#{}", signed.digest);
        let mut spent = lock(&self.spent);
        let first = !spent.contains(&id);
        if first {
            spent.push(id);
        }
        Ok(first)
    }
}

/// The metrics recorded, in order.
#[derive(Debug, Default)]
pub struct MemoryMetrics(Mutex<Vec<crate::metrics::Metric>>);

impl MemoryMetrics {
    /// Everything recorded so far.
    #[must_use]
    pub fn recorded(&self) -> Vec<crate::metrics::Metric> {
        lock(&self.0).clone()
    }
}

impl crate::metrics::Metrics for MemoryMetrics {
    fn record(&self, metric: crate::metrics::Metric) {
        lock(&self.0).push(metric);
    }
}

/// The partner's credentials in memory, shared by the instances of a test.
#[derive(Debug)]
pub struct MemoryVault {
    credentials: Mutex<crate::token_refresh::PartnerCredentials>,
    /// How many of the next writes fail; [`u32::MAX`]: every one (a vault
    /// that is down).
    pub failing_writes: std::sync::atomic::AtomicU32,
}

impl MemoryVault {
    #[must_use]
    pub fn new(credentials: crate::token_refresh::PartnerCredentials) -> Self {
        Self {
            credentials: Mutex::new(credentials),
            failing_writes: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// What is stored now.
    #[must_use]
    pub fn stored(&self) -> crate::token_refresh::PartnerCredentials {
        lock(&self.credentials).clone()
    }
}

impl crate::token_refresh::TokenVault for MemoryVault {
    async fn read(
        &self,
    ) -> Result<crate::token_refresh::PartnerCredentials, crate::ports::TokenError> {
        Ok(self.stored())
    }

    async fn write(
        &self,
        credentials: &crate::token_refresh::PartnerCredentials,
    ) -> Result<(), crate::ports::TokenError> {
        let failed = self.failing_writes.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |failing| match failing {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            },
        );
        if failed.is_ok() {
            return Err(crate::ports::TokenError::Vault("the vault is down".into()));
        }
        *lock(&self.credentials) = credentials.clone();
        Ok(())
    }
}

/// The lock item: its holder and the end of its lease.
type LockItem = (String, chrono::DateTime<chrono::Utc>);

/// The fleet-wide refresh lock in memory: the item (holder and lease end) is
/// shared, each instance holds a [`MemoryLock`] with its own name.
#[derive(Debug, Clone)]
pub struct MemoryLock {
    item: std::sync::Arc<Mutex<Option<LockItem>>>,
    me: String,
}

impl MemoryLock {
    /// A lock item nobody holds, as seen by instance `me`.
    #[must_use]
    pub fn new(me: &str) -> Self {
        Self {
            item: std::sync::Arc::default(),
            me: me.to_owned(),
        }
    }

    /// The same item, as seen by instance `me`.
    #[must_use]
    pub fn as_instance(&self, me: &str) -> Self {
        Self {
            item: self.item.clone(),
            me: me.to_owned(),
        }
    }
}

impl crate::token_refresh::RefreshLock for MemoryLock {
    async fn acquire(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, crate::ports::TokenError> {
        let mut item = lock(&self.item);
        let free = item
            .as_ref()
            .is_none_or(|(holder, end)| *end < now || *holder == self.me);
        if free {
            *item = Some((self.me.clone(), until));
        }
        Ok(free)
    }

    async fn release(&self) {
        let mut item = lock(&self.item);
        if item.as_ref().is_some_and(|(holder, _)| *holder == self.me) {
            *item = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_breaker_store_refuses_a_stale_version() {
        let store = MemoryBreakerStore::default();
        let mut state = store.load().await.unwrap();
        state.failed_probes = 1;
        assert!(store.save(&state).await.unwrap());
        assert!(!store.save(&state).await.unwrap(), "version 0 is stale now");
        assert_eq!(store.load().await.unwrap().version, 1);
    }
}
