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
