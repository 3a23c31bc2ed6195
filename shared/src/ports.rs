//! The traits the core needs from the outside world. The `adapters` crate
//! implements them for AWS; unit tests use in-memory ones.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::callback::body::CallbackBody;
use crate::callback::breaker::BreakerState;
use crate::callback::retry::RetryPolicy;
pub use crate::domain::Access;
use crate::domain::{ApiKeyRecord, OrderNumber};
use crate::error::{LabelError, StoreError};
use crate::record::OrderRecord;
use crate::record::callback::{Claim, NotClaimable};
use crate::webhook::{
    Delivery, DeliveryTicket, Endpoint, EndpointId, EndpointUrl, NotClaimed, NotReopened,
    PostResult, SignedHeaders, WebhookEvent,
};

/// The result of inserting an order that may already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// Nothing was written; this is what the store holds under that number.
    AlreadyExists(Box<OrderRecord>),
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Box<OrderRecord>),
    /// An order is stored under that number, but the reader may not see it:
    /// only its owner was read.
    Foreign,
    Missing,
}

impl Lookup {
    /// The lookup of a whole stored record (in-memory stores, which have no
    /// cheaper first read).
    #[must_use]
    pub fn judged(stored: Option<OrderRecord>, access: Access<'_>) -> Self {
        match stored {
            None => Lookup::Missing,
            Some(record) if !access.may_read(&record.order) => Lookup::Foreign,
            Some(record) => Lookup::Found(Box::new(record)),
        }
    }

    /// The order, if it was found and the reader may see it.
    #[must_use]
    pub fn into_found(self) -> Option<OrderRecord> {
        match self {
            Lookup::Found(record) => Some(*record),
            Lookup::Foreign | Lookup::Missing => None,
        }
    }
}

/// The result of a conditional save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    Saved,
    /// The condition failed (someone saved the order since it was read, or
    /// the lease changed hands): read it again and decide anew.
    Stale,
}

/// What a save is conditional on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard<'a> {
    /// Nobody saved the order since it was read (`version` unchanged).
    Version,
    /// That, and the callback's lease is still held by this owner (the
    /// fencing token of the delivery that claimed it).
    Lease(&'a str),
}

/// The result of a claim: one conditional write, no read before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claim was written; the order as it now stands.
    Claimed(Box<OrderRecord>),
    /// The condition failed; why, judged on the order as it stood.
    Refused(NotClaimable, Box<OrderRecord>),
}

/// Durable order state, keyed by order number.
pub trait OrderStore: Send + Sync {
    /// Writes `record` only if no order with its number exists (atomically).
    fn insert_new(
        &self,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<Insert, StoreError>> + Send;

    /// The order under `order_number`, as `access` may see it.
    fn get(
        &self,
        order_number: &OrderNumber,
        access: Access<'_>,
    ) -> impl Future<Output = Result<Lookup, StoreError>> + Send;

    /// Saves the mutable state of `record` if `guard` holds; on success the
    /// version is incremented, and the callback's queue message is sent
    /// (through the outbox) when `record.callback.send_message` is set, which
    /// is then cleared.
    fn save(
        &self,
        record: &mut OrderRecord,
        guard: Guard<'_>,
    ) -> impl Future<Output = Result<Save, StoreError>> + Send;

    /// Claims the callback for one post in a single conditional write:
    /// [`crate::record::callback::Callback::check_claim`] is the condition,
    /// [`crate::record::callback::Callback::apply_claim`] the change. `None` when
    /// there is no such order.
    fn claim(
        &self,
        order_number: &OrderNumber,
        claim: &Claim,
    ) -> impl Future<Output = Result<Option<ClaimOutcome>, StoreError>> + Send;

    /// Order numbers stored under a client's marketplace order number
    /// ([`crate::domain::Order::client_platform_order_key`]).
    fn orders_with_platform_order(
        &self,
        client_platform_order_key: &str,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send;
}

/// A shared store is a store (the functions share one client among tasks).
impl<T: OrderStore + ?Sized> OrderStore for std::sync::Arc<T> {
    fn insert_new(
        &self,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<Insert, StoreError>> + Send {
        (**self).insert_new(record)
    }

    fn get(
        &self,
        order_number: &OrderNumber,
        access: Access<'_>,
    ) -> impl Future<Output = Result<Lookup, StoreError>> + Send {
        (**self).get(order_number, access)
    }

    fn save(
        &self,
        record: &mut OrderRecord,
        guard: Guard<'_>,
    ) -> impl Future<Output = Result<Save, StoreError>> + Send {
        (**self).save(record, guard)
    }

    fn claim(
        &self,
        order_number: &OrderNumber,
        claim: &Claim,
    ) -> impl Future<Output = Result<Option<ClaimOutcome>, StoreError>> + Send {
        (**self).claim(order_number, claim)
    }

    fn orders_with_platform_order(
        &self,
        client_platform_order_key: &str,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send {
        (**self).orders_with_platform_order(client_platform_order_key)
    }
}

/// Final orders that still hold personal data, by when they became final
/// (a sparse index in DynamoDB: `crate::lifecycle::personal_data`).
pub trait DueRedactions: Send + Sync {
    /// Up to `limit` orders that became final at or before `before` and are
    /// not redacted yet, oldest first within each index partition.
    fn final_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send;
}

impl<T: DueRedactions + ?Sized> DueRedactions for std::sync::Arc<T> {
    fn final_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OrderNumber>, StoreError>> + Send {
        (**self).final_before(before, limit)
    }
}

/// Where labels live (S3 in AWS): written once, read through short-lived links.
pub trait LabelStore: Send + Sync {
    /// Stores `bytes` under `key`; `sha256` (lowercase hex) lets the store
    /// check what it received. Storing the same bytes again is harmless.
    fn put_label(
        &self,
        key: &str,
        bytes: Vec<u8>,
        sha256: &str,
    ) -> impl Future<Output = Result<(), LabelError>> + Send;

    /// A link that serves the label for `ttl`, without credentials.
    fn label_link(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<String, LabelError>> + Send;

    /// Removes what a create that lost its order number put. Removing what
    /// is not there is harmless.
    fn delete_label(&self, key: &str) -> impl Future<Output = Result<(), LabelError>> + Send;
}

impl<T: LabelStore + ?Sized> LabelStore for std::sync::Arc<T> {
    fn put_label(
        &self,
        key: &str,
        bytes: Vec<u8>,
        sha256: &str,
    ) -> impl Future<Output = Result<(), LabelError>> + Send {
        (**self).put_label(key, bytes, sha256)
    }

    fn label_link(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<String, LabelError>> + Send {
        (**self).label_link(key, ttl)
    }

    fn delete_label(&self, key: &str) -> impl Future<Output = Result<(), LabelError>> + Send {
        (**self).delete_label(key)
    }
}

/// The platform-callback partner (spec 001).
pub trait PartnerClient: Send + Sync {
    /// Posts one callback. `Err` when no HTTP answer came back.
    /// Posts one callback with `token` as its bearer credential. `Err` when
    /// no HTTP answer came back.
    fn post_callback(
        &self,
        body: &CallbackBody,
        idempotency_key: &str,
        token: &AccessToken,
    ) -> impl Future<Output = Result<PartnerReply, TransportError>> + Send;
}

/// The partner's bearer credential. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself: for the `Authorization` header, nothing else.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Where the partner's access token comes from: a fixed token, or OAuth2
/// refreshes (cached per process, refreshed ahead of expiry).
pub trait TokenSource: Send + Sync {
    /// The token to send now.
    fn token(&self) -> impl Future<Output = Result<AccessToken, TokenError>> + Send;

    /// The partner rejected `rejected` (a 401): a newer token, refreshed now
    /// unless another caller already replaced it.
    fn refresh(
        &self,
        rejected: &AccessToken,
    ) -> impl Future<Output = Result<AccessToken, TokenError>> + Send;
}

/// Why no token could be had. The messages never carry a token or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A fixed token cannot be refreshed.
    #[error("the partner token is static and cannot be refreshed")]
    Static,
    /// The token endpoint refused the refresh.
    #[error("the partner's token refresh failed: {0}")]
    Refresh(String),
    /// The token endpoint did not answer, or answered 5xx: the partner is
    /// down, as a post that gets no answer says (the breaker counts it).
    #[error("the partner's token endpoint is out of reach: {0}")]
    Unreachable(String),
    /// The stored credentials could not be read or written.
    #[error("the partner credentials could not be read or stored: {0}")]
    Vault(String),
    /// The stored credentials are out of reach for now (their store
    /// throttled, failed or did not answer): nothing was spent, try later.
    #[error("the partner credentials are out of reach for now: {0}")]
    Unavailable(String),
}

/// A fixed bearer token (`CALLBACK_TOKEN`, or a plain-string secret).
#[derive(Debug, Clone)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    #[must_use]
    pub fn new(token: impl Into<String>) -> Self {
        Self(AccessToken::new(token))
    }
}

impl TokenSource for StaticToken {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        Ok(self.0.clone())
    }

    async fn refresh(&self, _rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        Err(TokenError::Static)
    }
}

impl<T: TokenSource + ?Sized> TokenSource for std::sync::Arc<T> {
    fn token(&self) -> impl Future<Output = Result<AccessToken, TokenError>> + Send {
        (**self).token()
    }

    fn refresh(
        &self,
        rejected: &AccessToken,
    ) -> impl Future<Output = Result<AccessToken, TokenError>> + Send {
        (**self).refresh(rejected)
    }
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

/// Where the circuit breaker's state lives ([`crate::callback::breaker`]):
/// one item, written with a version check, shared by every dispatcher.
pub trait BreakerStore: Send + Sync {
    /// The state (the default when none is stored).
    fn load(&self) -> impl Future<Output = Result<BreakerState, StoreError>> + Send;

    /// Writes `state` if the stored version is still `state.version`
    /// (then the stored one is `state.version + 1`); `false` when it changed.
    fn save(&self, state: &BreakerState) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: BreakerStore + ?Sized> BreakerStore for std::sync::Arc<T> {
    fn load(&self) -> impl Future<Output = Result<BreakerState, StoreError>> + Send {
        (**self).load()
    }

    fn save(&self, state: &BreakerState) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).save(state)
    }
}

/// The callback queue, as the dispatcher's handler uses it (SQS in AWS).
/// A delivery is named by its receipt handle.
pub trait CallbackQueue: Send + Sync {
    /// Hides the delivered message for `delay`: it comes back then.
    fn retry_in(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Sends a copy of the message `body` to the dead-letter queue, marked
    /// as moved there by the dispatcher (so a redrive is recognised).
    fn dead_letter(&self, body: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}

impl<T: CallbackQueue + ?Sized> CallbackQueue for std::sync::Arc<T> {
    fn retry_in(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).retry_in(receipt, delay)
    }

    fn dead_letter(&self, body: &str) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).dead_letter(body)
    }
}

/// The queue could not be told (its message: the cause, for the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the queue could not be reached: {0}")]
pub struct QueueError(pub String);

/// Durable API key storage, by key hash (`crate::auth` authenticates with it).
pub trait KeyStore: Send + Sync {
    fn find(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// Records that `key_id` sent the signed request `signed`, in one
    /// conditional write: `true` the first time, `false` for a repeat. The
    /// record may go once the signature is out of its window.
    fn spend_signature(
        &self,
        key_id: &str,
        signed: &crate::domain::SignedRequest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: KeyStore + ?Sized> KeyStore for std::sync::Arc<T> {
    fn find(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send {
        (**self).find(key_hash)
    }

    fn spend_signature(
        &self,
        key_id: &str,
        signed: &crate::domain::SignedRequest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).spend_signature(key_id, signed)
    }
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

// ---- Webhooks to ERPs (`crate::webhook`) ----

/// Where an ERP's endpoints are kept, by client and id.
pub trait EndpointStore: Send + Sync {
    /// Stores a new endpoint; `false` when the client already has
    /// [`crate::webhook::MAX_ENDPOINTS`] (nothing is written then).
    fn insert(&self, endpoint: &Endpoint) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The client's endpoints, oldest first.
    fn list(
        &self,
        client_code: &str,
    ) -> impl Future<Output = Result<Vec<Endpoint>, StoreError>> + Send;

    fn get(
        &self,
        client_code: &str,
        id: &EndpointId,
    ) -> impl Future<Output = Result<Option<Endpoint>, StoreError>> + Send;

    /// Writes `endpoint` if the stored one still has `read_version`.
    fn save(
        &self,
        endpoint: &Endpoint,
        read_version: u64,
    ) -> impl Future<Output = Result<Save, StoreError>> + Send;

    /// `false` when there was no such endpoint.
    fn delete(
        &self,
        client_code: &str,
        id: &EndpointId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Each endpoint's deliveries: the fenced state of every event's delivery.
pub trait DeliveryStore: Send + Sync {
    /// Adds the delivery unless it exists (a fan-out seen twice); `true` when
    /// it was added.
    fn add(
        &self,
        ticket: &DeliveryTicket,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One conditional write: [`Delivery::check_claim`]'s rule, the post
    /// counted and the lease taken. `None` when there is no such delivery.
    fn claim(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> impl Future<Output = Result<Option<DeliveryClaim>, StoreError>> + Send;

    /// Writes the settled delivery if `owner` still holds its lease.
    fn settle(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Save, StoreError>> + Send;

    /// One conditional write: [`Delivery::check_reopen`]'s rule (failed, no
    /// live lease), then pending again with a fresh schedule (a replay).
    /// `None` when there is no such delivery.
    fn reopen(
        &self,
        ticket: &DeliveryTicket,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Reopen>, StoreError>> + Send;

    /// The endpoint's latest deliveries, newest first.
    fn recent(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;
}

/// What a delivery claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// Claimed: the delivery as it now stands.
    Claimed(Delivery),
    Refused(NotClaimed),
}

/// What re-opening a delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reopen {
    /// Re-opened: the delivery as it now stands.
    Reopened(Delivery),
    Refused(NotReopened),
}

/// Every event of every client, kept for a week so an endpoint can be sent
/// what it missed (`replay?since=`).
pub trait EventLog: Send + Sync {
    /// Idempotent: the same event again changes nothing.
    fn append(&self, event: &WebhookEvent) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` of the client's events at or after `since`, oldest first.
    fn since(
        &self,
        client_code: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<WebhookEvent>, StoreError>> + Send;
}

/// The queue that carries one message per delivery to the deliverers.
pub trait DeliveryQueue: Send + Sync {
    fn send(
        &self,
        tickets: &[DeliveryTicket],
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Hides the received message with `receipt` for `delay`: SQS is the
    /// timer of a delivery's next try.
    fn retry_in(
        &self,
        receipt: &str,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Posts a signed event to an endpoint: no redirects followed, every address
/// the name resolves to checked against the [`crate::webhook::Reach`], at
/// most `timeout`.
pub trait WebhookPoster: Send + Sync {
    fn post(
        &self,
        url: &EndpointUrl,
        headers: &SignedHeaders,
        body: &str,
        timeout: std::time::Duration,
    ) -> impl Future<Output = PostResult> + Send;
}
