//! Who is calling: API keys (stored as hashes) mapped to a client or to
//! warehouses, optional request signatures, and the tenant rule that a caller
//! sees only its own orders.

pub mod key;
pub mod signature;

use std::collections::BTreeSet;
use std::future::Future;

use chrono::{DateTime, Utc};
use http::HeaderMap;

pub use key::{ApiKeyRecord, IssuedKey, Scope, hash_key, issue, issue_with};

use crate::domain::Order;
use crate::error::StoreError;
use crate::ports::Clock;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id: what logs name instead of the key.
    pub key_id: String,
    pub scope: Scope,
}

impl Principal {
    /// Whether the caller may see `order`. A caller that may not gets the same
    /// 404 as for a missing order, so order numbers of other tenants leak nothing.
    #[must_use]
    pub fn may_access(&self, order: &Order) -> bool {
        match &self.scope {
            Scope::Client(client) => *client == order.client_code,
            Scope::Warehouse(centres) => centres.contains(&order.centre_code),
        }
    }

    /// The client an ERP key acts for.
    #[must_use]
    pub fn client_code(&self) -> Option<&str> {
        match &self.scope {
            Scope::Client(client) => Some(client),
            Scope::Warehouse(_) => None,
        }
    }

    /// The centres a warehouse key reports for.
    #[must_use]
    pub fn centre_codes(&self) -> Option<&BTreeSet<String>> {
        match &self.scope {
            Scope::Warehouse(centres) => Some(centres),
            Scope::Client(_) => None,
        }
    }
}

/// Why a request is not authenticated (401) or not allowed (403).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("an API key is required: send Authorization: Bearer <key> or X-Api-Key")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key has been revoked or has expired")]
    Inactive,
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Durable key storage, by key hash.
pub trait KeyStore: Send + Sync {
    fn find(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;
}

/// Checks the key (and signature) of a request.
#[derive(Debug, Clone)]
pub struct Authenticator<K, C> {
    keys: K,
    clock: C,
}

impl<K: KeyStore, C: Clock> Authenticator<K, C> {
    pub fn new(keys: K, clock: C) -> Self {
        Self { keys, clock }
    }

    /// The caller of a request with these headers and raw body.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Principal, AuthError> {
        let key = presented_key(headers).ok_or(AuthError::Missing)?;
        let record = self
            .keys
            .find(&hash_key(key))
            .await?
            .ok_or(AuthError::Invalid)?;
        let now: DateTime<Utc> = self.clock.now();
        if !record.active(now) {
            return Err(AuthError::Inactive);
        }
        if let Some(secret) = &record.signing_secret {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            signature::verify(
                secret,
                header("x-signature-timestamp"),
                header("x-signature"),
                body,
                now,
            )?;
        }
        Ok(Principal {
            key_id: record.key_id,
            scope: record.scope,
        })
    }
}

/// `Authorization: Bearer <key>`, else `X-Api-Key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, key) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        })
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_comes_from_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert("x-api-key", "k2".parse().unwrap());
        assert_eq!(presented_key(&headers), Some("k2"));
        headers.insert("authorization", "Bearer k1".parse().unwrap());
        assert_eq!(presented_key(&headers), Some("k1"));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented_key(&headers), Some("k2"));
    }
}
