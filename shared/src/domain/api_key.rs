//! An API key as stored, and what it grants (issuing and hashing keys:
//! `crate::auth::key`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

/// What a key lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An ERP: create orders of this client, and read, cancel and replay them.
    Client(String),
    /// A warehouse: report events for orders of these centres.
    Warehouse(BTreeSet<String>),
}

impl Scope {
    /// Whether a key of this scope may see an order owned by this client and
    /// bound for this warehouse: the tenant rule, in one place.
    #[must_use]
    pub fn may_read(&self, client_code: &str, centre_code: &str) -> bool {
        match self {
            Scope::Client(client) => client == client_code,
            Scope::Warehouse(centres) => centres.contains(centre_code),
        }
    }
}

/// On whose behalf an order is read.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// The service itself (the dispatcher, operators' tools): any order.
    Service,
    /// A caller's key: only the orders it may see. The store checks the owner
    /// on its first, smallest read, and reads nothing else of another
    /// tenant's order (not its request, not its history), so neither the
    /// answer nor its timing tells a foreign order from a missing one.
    Scope(&'a Scope),
}

impl Access<'_> {
    /// Whether this reader may see `order`.
    #[must_use]
    pub fn may_read(&self, order: &super::Order) -> bool {
        match self {
            Access::Service => true,
            Access::Scope(scope) => scope.may_read(&order.client_code, &order.centre_code),
        }
    }
}

/// A request whose signature matched, named by the MAC of what it covers
/// (timestamp, method, path, body): a repeat of the same request has the
/// same name, another request another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// Lowercase hex of the request's HMAC-SHA256.
    pub digest: String,
    /// When the signature leaves the window and is refused anyway: a record
    /// that it was spent need not outlive this.
    pub valid_until: DateTime<Utc>,
}

/// A key as stored: never the key itself, only its SHA-256. Its `Debug`
/// leaves the signing secret out (an authenticator's key cache is printed
/// with the function it belongs to).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public identifier, safe to log and to name in commands (`key_…`).
    pub key_id: String,
    pub key_hash: String,
    pub scope: Scope,
    /// When set, requests must carry an HMAC-SHA256 signature with this secret.
    pub signing_secret: Option<String>,
    /// ERP keys: the order-number prefixes its client may create orders
    /// under (`mabang-`); empty, any number.
    pub order_prefixes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// A rotated key stays valid until then.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("key_id", &self.key_id)
            .field("scope", &self.scope)
            .field("signed", &self.signing_secret.is_some())
            .field("order_prefixes", &self.order_prefixes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl ApiKeyRecord {
    /// Whether the key may be used at `now`.
    #[must_use]
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}
