//! Who is calling: API keys (stored as hashes) mapped to a client or to
//! warehouses, optional request signatures, and the tenant rule that a caller
//! sees only its own orders.

pub mod key;
pub mod signature;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use key::{IssuedKey, hash_key, issue, issue_with};

use crate::domain::{ApiKeyRecord, Order, Scope};
use crate::error::StoreError;
use crate::ports::{Clock, KeyStore};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id: what logs name instead of the key.
    pub key_id: String,
    pub scope: Scope,
    /// The order-number prefixes the key may create orders under; empty, any.
    pub order_prefixes: Vec<String>,
    /// For a signing key: the signed request, to be accepted once where a
    /// repeat would do something again ([`Authenticator::accept_once`]).
    pub signed: Option<crate::domain::SignedRequest>,
}

impl Principal {
    /// Whether the caller may see `order`. A caller that may not gets the same
    /// 404 as for a missing order, so order numbers of other tenants leak nothing.
    #[must_use]
    pub fn may_access(&self, order: &Order) -> bool {
        self.scope.may_read(&order.client_code, &order.centre_code)
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
    #[error(
        "this signed request was already received; a repeat would do it again, so it is refused (sign it anew, with a new X-Signature-Timestamp, to do it again)"
    )]
    Replayed,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The request headers authentication reads, whatever transport carried them
/// (the `adapters` crate's `api::HttpHeaders` over an `http::HeaderMap`).
pub trait RequestHeaders {
    /// The value of the header `name` (lower case): `None` when absent,
    /// `Some(None)` when present but not visible ASCII.
    fn header(&self, name: &str) -> Option<Option<&str>>;
}

/// Checks the key (and signature) of a request.
///
/// Known keys are cached for `cache_ttl` (a warm Lambda then serves most
/// requests without reading the key table). Expiry is still checked on every
/// request; a revocation takes effect within `cache_ttl`. Unknown keys are
/// never cached.
pub struct Authenticator<K, C> {
    keys: K,
    clock: C,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (ApiKeyRecord, Instant)>>,
}

/// Shows how many keys are cached, never their hashes.
impl<K: std::fmt::Debug, C: std::fmt::Debug> std::fmt::Debug for Authenticator<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map_or(0, |cache| cache.len());
        f.debug_struct("Authenticator")
            .field("keys", &self.keys)
            .field("clock", &self.clock)
            .field("cache_ttl", &self.cache_ttl)
            .field("cached", &cached)
            .finish()
    }
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
        headers: &impl RequestHeaders,
        request: &signature::Signed<'_>,
    ) -> Result<Principal, AuthError> {
        let key = presented_key(headers)?;
        let record = self.find(&hash_key(key)).await?.ok_or(AuthError::Invalid)?;
        let now: DateTime<Utc> = self.clock.now();
        if !record.active(now) {
            return Err(AuthError::Inactive);
        }
        let signed = match &record.signing_secret {
            Some(secret) => {
                let header = |name: &str| headers.header(name).flatten();
                Some(signature::verify(
                    secret,
                    header("x-signature-timestamp"),
                    header("x-signature"),
                    request,
                    now,
                )?)
            }
            None => None,
        };
        Ok(Principal {
            key_id: record.key_id,
            scope: record.scope,
            order_prefixes: record.order_prefixes,
            signed,
        })
    }

    /// For a route whose repeat would act again: refuses a signed request
    /// already received (within the signature's window, which is all a
    /// captured signature can be replayed in). A request without a signature
    /// (a key that does not sign) cannot be told from a deliberate repeat
    /// and passes.
    pub async fn accept_once(&self, caller: &Principal) -> Result<(), AuthError> {
        let Some(signed) = &caller.signed else {
            return Ok(());
        };
        if self.keys.spend_signature(&caller.key_id, signed).await? {
            Ok(())
        } else {
            Err(AuthError::Replayed)
        }
    }
}

/// `Authorization: Bearer <key>`, else `X-Api-Key: <key>`. An `Authorization`
/// header that is there but not a bearer key is refused, whatever else the
/// request carries: a credential we cannot read is never silently skipped.
fn presented_key(headers: &impl RequestHeaders) -> Result<&str, AuthError> {
    let text = |name: &str| headers.header(name).map(|value| value.map(str::trim));
    match text("authorization") {
        Some(Some(value)) => {
            let (scheme, key) = value.split_once(' ').ok_or(AuthError::Invalid)?;
            let key = key.trim();
            if scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() {
                Ok(key)
            } else {
                Err(AuthError::Invalid)
            }
        }
        Some(None) => Err(AuthError::Invalid),
        None => match text("x-api-key") {
            Some(Some(key)) if !key.is_empty() => Ok(key),
            Some(_) => Err(AuthError::Invalid),
            None => Err(AuthError::Missing),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memory::MemoryKeys;
    use crate::ports::SystemClock;

    /// A key store holding one key.
    fn one_key(record: ApiKeyRecord) -> Arc<MemoryKeys> {
        let keys = Arc::new(MemoryKeys::default());
        keys.add(record);
        keys
    }

    const GET: signature::Signed<'static> = signature::Signed {
        method: "GET",
        path: "/apicenter/api/order/A",
        body: b"",
    };

    /// Headers as a list of (lower-case name, value); `None`: not ASCII.
    #[derive(Default)]
    struct HeaderList(Vec<(&'static str, Option<String>)>);

    impl HeaderList {
        fn with(mut self, name: &'static str, value: &str) -> Self {
            self.0.push((name, Some(value.to_owned())));
            self
        }
    }

    impl RequestHeaders for HeaderList {
        fn header(&self, name: &str) -> Option<Option<&str>> {
            self.0
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| value.as_deref())
        }
    }

    fn headers(key: &str) -> HeaderList {
        HeaderList::default().with("authorization", &format!("Bearer {key}"))
    }

    #[tokio::test]
    async fn a_cached_key_is_read_once_but_its_expiry_is_checked_every_time() {
        let issued = issue(Scope::Client("20".into()), false, Utc::now()).unwrap();
        let store = one_key(issued.record.clone());
        let auth =
            Authenticator::new(Arc::clone(&store), SystemClock).with_cache(Duration::from_secs(60));

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
            store.reads(),
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

    #[tokio::test]
    async fn a_signed_request_is_accepted_once_where_a_repeat_would_act_again() {
        let issued = issue(Scope::Client("20".into()), true, Utc::now()).unwrap();
        let secret = issued.record.signing_secret.clone().unwrap();
        let store = one_key(issued.record.clone());
        let auth = Authenticator::new(Arc::clone(&store), SystemClock);
        let ts = Utc::now().timestamp();
        let signed_headers = |body: &[u8]| {
            let path = "/apicenter/api/order/A/callback/retry";
            headers(&issued.key)
                .with("x-signature-timestamp", &ts.to_string())
                .with(
                    "x-signature",
                    &signature::sign(&secret, ts, "POST", path, body),
                )
        };
        let retry = |body: &'static [u8]| signature::Signed {
            method: "POST",
            path: "/apicenter/api/order/A/callback/retry",
            body,
        };

        let mut answers = Vec::new();
        for body in [b"" as &[u8], b"", b"{}"] {
            let caller = auth
                .authenticate(&signed_headers(body), &retry(body))
                .await
                .expect("a valid signature");
            answers.push(auth.accept_once(&caller).await.map_err(|e| e.to_string()));
        }

        assert!(answers[0].is_ok(), "{answers:?}");
        assert!(
            answers[1]
                .as_ref()
                .is_err_and(|e| e.contains("already received")),
            "{answers:?}"
        );
        assert!(answers[2].is_ok(), "another request: {answers:?}");
    }

    /// Every core type that holds a key, a key hash, a signing secret or a
    /// partner token, printed with `{:?}` as a log line or a panic would.
    #[tokio::test]
    async fn debug_output_never_shows_a_key_or_a_secret() {
        let issued = issue(Scope::Client("20".into()), true, Utc::now()).unwrap();
        let secret = issued.record.signing_secret.clone().unwrap();
        let store = one_key(issued.record.clone());
        let auth =
            Authenticator::new(Arc::clone(&store), SystemClock).with_cache(Duration::from_secs(60));
        // Fills the cache (the signature is missing: the key is still read).
        let _ = auth.authenticate(&headers(&issued.key), &GET).await;
        let token = crate::ports::AccessToken::new("partner-token");
        let printed = format!(
            "{:?} {:?} {auth:?} {token:?} {:?}",
            issued.record,
            issued,
            crate::ports::StaticToken::new("static-token"),
        );
        for hidden in [
            issued.key.as_str(),
            issued.record.key_hash.as_str(),
            secret.as_str(),
            "partner-token",
            "static-token",
        ] {
            assert!(!printed.contains(hidden), "{hidden} in {printed}");
        }
        assert!(printed.contains("cached: 1"), "{printed}");
    }

    #[test]
    fn the_key_comes_from_bearer_or_x_api_key() {
        let headers = HeaderList::default();
        assert!(matches!(presented_key(&headers), Err(AuthError::Missing)));
        let headers = headers.with("x-api-key", "k2");
        assert_eq!(presented_key(&headers).ok(), Some("k2"));
        let headers = headers.with("authorization", "Bearer k1");
        assert_eq!(presented_key(&headers).ok(), Some("k1"));
    }

    #[test]
    fn an_unreadable_authorization_header_is_refused_even_beside_a_good_x_api_key() {
        for bad in ["Basic abc", "Bearer ", "Bearer", "k1"] {
            let headers = HeaderList::default()
                .with("x-api-key", "k2")
                .with("authorization", bad);
            assert!(
                matches!(presented_key(&headers), Err(AuthError::Invalid)),
                "{bad}"
            );
        }
        let mut not_ascii = HeaderList::default().with("x-api-key", "k2");
        not_ascii.0.push(("authorization", None));
        assert!(matches!(presented_key(&not_ascii), Err(AuthError::Invalid)));
    }
}
