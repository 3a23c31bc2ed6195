//! Who is calling: API keys (stored as hashes) mapped to a client or to
//! warehouses, optional request signatures, and the tenant rule that a caller
//! sees only its own orders.

pub mod key;
pub mod signature;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// The order-number prefixes the key may create orders under; empty, any.
    pub order_prefixes: Vec<String>,
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

    /// Whether the key may create an order under `order_number`.
    #[must_use]
    pub fn may_number(&self, order_number: &str) -> bool {
        self.order_prefixes.is_empty()
            || self
                .order_prefixes
                .iter()
                .any(|prefix| order_number.starts_with(prefix.as_str()))
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
///
/// Known keys are cached for `cache_ttl` (a warm Lambda then serves most
/// requests without reading the key table). Expiry is still checked on every
/// request; a revocation takes effect within `cache_ttl`. Unknown keys are
/// never cached.
#[derive(Debug)]
pub struct Authenticator<K, C> {
    keys: K,
    clock: C,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (ApiKeyRecord, Instant)>>,
}

/// Most keys cached per process; beyond it the cache starts over.
const CACHE_CAPACITY: usize = 1024;

impl<K: KeyStore, C: Clock> Authenticator<K, C> {
    /// An authenticator that reads the key table on every request.
    pub fn new(keys: K, clock: C) -> Self {
        Self {
            keys,
            clock,
            cache_ttl: Duration::ZERO,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Caches known keys for `ttl`.
    #[must_use]
    pub fn with_cache(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    async fn find(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        if !self.cache_ttl.is_zero()
            && let Ok(cache) = self.cache.lock()
            && let Some((record, fetched)) = cache.get(key_hash)
            && fetched.elapsed() < self.cache_ttl
        {
            return Ok(Some(record.clone()));
        }
        let found = self.keys.find(key_hash).await?;
        if let (false, Some(record), Ok(mut cache)) =
            (self.cache_ttl.is_zero(), &found, self.cache.lock())
        {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(key_hash.to_owned(), (record.clone(), Instant::now()));
        }
        Ok(found)
    }

    /// The caller of a request with these headers; `request` (method, path
    /// and query as sent, raw body) is what a signing key's signature covers.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        request: &signature::Signed<'_>,
    ) -> Result<Principal, AuthError> {
        let key = presented_key(headers)?;
        let record = self.find(&hash_key(key)).await?.ok_or(AuthError::Invalid)?;
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
                request,
                now,
            )?;
        }
        Ok(Principal {
            key_id: record.key_id,
            scope: record.scope,
            order_prefixes: record.order_prefixes,
        })
    }
}

/// The path a signature covers: the request path with its query string as the
/// client sent them. `raw_path` is the gateway's `rawPath` (empty when the
/// event had none, then the decoded URI's path stands in).
#[must_use]
pub fn signed_path(raw_path: &str, uri: &http::Uri) -> String {
    let path = if raw_path.is_empty() {
        uri.path()
    } else {
        raw_path
    };
    match uri.query() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

/// `Authorization: Bearer <key>`, else `X-Api-Key: <key>`. An `Authorization`
/// header that is there but not a bearer key is refused, whatever else the
/// request carries: a credential we cannot read is never silently skipped.
fn presented_key(headers: &HeaderMap) -> Result<&str, AuthError> {
    let text = |name: &str| headers.get(name).map(|value| value.to_str().map(str::trim));
    match text(http::header::AUTHORIZATION.as_str()) {
        Some(Ok(value)) => {
            let (scheme, key) = value.split_once(' ').ok_or(AuthError::Invalid)?;
            let key = key.trim();
            if scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() {
                Ok(key)
            } else {
                Err(AuthError::Invalid)
            }
        }
        Some(Err(_)) => Err(AuthError::Invalid),
        None => match text("x-api-key") {
            Some(Ok(key)) if !key.is_empty() => Ok(key),
            Some(_) => Err(AuthError::Invalid),
            None => Err(AuthError::Missing),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ports::SystemClock;

    /// One key, and a count of reads.
    struct OneKey(ApiKeyRecord, AtomicUsize);

    impl KeyStore for &OneKey {
        async fn find(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Ok((self.0.key_hash == key_hash).then(|| self.0.clone()))
        }
    }

    const GET: signature::Signed<'static> = signature::Signed {
        method: "GET",
        path: "/apicenter/api/order/A",
        body: b"",
    };

    fn headers(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        headers
    }

    #[tokio::test]
    async fn a_cached_key_is_read_once_but_its_expiry_is_checked_every_time() {
        let issued = issue(Scope::Client("20".into()), false, Utc::now()).unwrap();
        let store = OneKey(issued.record.clone(), AtomicUsize::new(0));
        let auth = Authenticator::new(&store, SystemClock).with_cache(Duration::from_secs(60));

        for _ in 0..3 {
            assert!(auth.authenticate(&headers(&issued.key), &GET).await.is_ok());
        }
        assert!(
            auth.authenticate(&headers("wk_unknown"), &GET)
                .await
                .is_err()
        );
        assert!(
            auth.authenticate(&headers("wk_unknown"), &GET)
                .await
                .is_err()
        );
        assert_eq!(
            store.1.load(Ordering::SeqCst),
            3,
            "one read for the key, one per unknown try"
        );

        auth.cache
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|(record, _)| {
                record.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
            });
        assert!(matches!(
            auth.authenticate(&headers(&issued.key), &GET).await,
            Err(AuthError::Inactive)
        ));
    }

    #[test]
    fn the_key_comes_from_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        assert!(matches!(presented_key(&headers), Err(AuthError::Missing)));
        headers.insert("x-api-key", "k2".parse().unwrap());
        assert_eq!(presented_key(&headers).ok(), Some("k2"));
        headers.insert("authorization", "Bearer k1".parse().unwrap());
        assert_eq!(presented_key(&headers).ok(), Some("k1"));
    }

    #[test]
    fn an_unreadable_authorization_header_is_refused_even_beside_a_good_x_api_key() {
        for bad in ["Basic abc", "Bearer ", "Bearer", "k1"] {
            let mut headers = HeaderMap::new();
            headers.insert("x-api-key", "k2".parse().unwrap());
            headers.insert("authorization", bad.parse().unwrap());
            assert!(
                matches!(presented_key(&headers), Err(AuthError::Invalid)),
                "{bad}"
            );
        }
    }
}
