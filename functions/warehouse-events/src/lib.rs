//! The warehouse-facing Lambda: `POST /apicenter/api/order/{order_number}/events`.
//! Applies the report to the order; the write that makes the platform callback
//! due also sends its queue message (the store's outbox). A separate function from the ERP API so it
//! has its own credentials, permissions and scaling.

use std::convert::Infallible;
use std::time::Duration;

use tracing::Instrument;

use adapters::api::{
    ApiError, ApiResponse, HttpHeaders, READ_METHODS, path_segments, reads, require_json,
    signed_path, success,
};
use adapters::{DynamoKeyStore, DynamoOrderStore, S3LabelStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::signature::Signed;
use shared::auth::{AuthError, Authenticator, Principal};
use shared::config::{ConfigError, api_key_cache, required_env};
use shared::lifecycle::label::{LINK_TTL, LabelLink, fetch_label};
use shared::lifecycle::{Lifecycle, requests};
use shared::ports::{Clock, KeyStore, LabelStore, OrderStore, SystemClock};
use shared::record::progress::EventEffect;
use shared::view::OrderView;

/// Whether `path` is the route this function serves (API Gateway sends it
/// only these; the local gateway asks).
#[must_use]
pub fn serves(path: &str) -> bool {
    matches!(
        path_segments(path).as_slice(),
        ["apicenter", "api", "order", _, "events" | "label"]
    )
}

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ORDERS_TABLE`: the DynamoDB table keyed by `order_number`.
    pub orders_table: String,
    /// `ORDER_HISTORY_TABLE`: the orders' requests and callback ledgers.
    pub order_history_table: String,
    /// `API_KEYS_TABLE`: the API keys, by hash.
    pub api_keys_table: String,
    /// `API_KEY_CACHE_SECONDS` (default 60): how long a warm function trusts a
    /// key it has read; a revocation takes effect within this time.
    pub api_key_cache: Duration,
    /// `LABELS_BUCKET`: where inline labels are stored.
    pub labels_bucket: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required_env("ORDERS_TABLE")?,
            order_history_table: required_env("ORDER_HISTORY_TABLE")?,
            api_keys_table: required_env("API_KEYS_TABLE")?,
            api_key_cache: api_key_cache()?,
            labels_bucket: required_env("LABELS_BUCKET")?,
        })
    }
}

#[derive(Debug)]
pub struct EventsApi<S, L, C, K> {
    lifecycle: Lifecycle<S, C>,
    store: S,
    labels: L,
    auth: Authenticator<K, C>,
}

impl EventsApi<DynamoOrderStore, S3LabelStore, SystemClock, DynamoKeyStore> {
    /// The production wiring: DynamoDB, S3 and the system clock.
    pub fn new(config: Config, dynamodb: aws_sdk_dynamodb::Client, s3: aws_sdk_s3::Client) -> Self {
        Self::with_ports(
            DynamoOrderStore::new(
                dynamodb.clone(),
                config.orders_table,
                config.order_history_table,
            ),
            S3LabelStore::new(s3, config.labels_bucket),
            DynamoKeyStore::new(dynamodb, config.api_keys_table),
            SystemClock,
        )
        .with_key_cache(config.api_key_cache)
    }
}

impl<S: OrderStore + Clone, L: LabelStore, C: Clock + Clone, K: KeyStore> EventsApi<S, L, C, K> {
    pub fn with_ports(store: S, labels: L, keys: K, clock: C) -> Self {
        Self {
            lifecycle: Lifecycle::new(store.clone(), clock.clone()),
            store,
            labels,
            auth: Authenticator::new(keys, clock),
        }
    }

    /// Trusts keys it has read for `ttl` (see [`Config::api_key_cache`]).
    #[must_use]
    pub fn with_key_cache(mut self, ttl: Duration) -> Self {
        self.auth = self.auth.with_cache(ttl);
        self
    }

    /// Answers one request. Never fails: every error has its HTTP answer.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Infallible> {
        let answer = self
            .route(&request)
            .await
            .unwrap_or_else(ApiError::into_response);
        Ok(answer.into_http(request.method()).map(Body::from))
    }

    async fn route(&self, request: &Request) -> Result<ApiResponse, ApiError> {
        // A signature covers the method, the path and query as the client sent
        // them (the gateway's rawPath) and the raw body.
        let path = signed_path(request.raw_http_path(), request.uri());
        let signed = Signed {
            method: request.method().as_str(),
            path: &path,
            body: request.body().as_ref(),
        };
        let caller = self
            .auth
            .authenticate(&HttpHeaders(request.headers()), &signed)
            .await?;
        if caller.centre_codes().is_none() {
            return Err(AuthError::Forbidden("only warehouse keys can report events").into());
        }
        let span = tracing::info_span!("wms", key_id = %caller.key_id);
        self.report(&caller, request).instrument(span).await
    }

    async fn report(&self, caller: &Principal, request: &Request) -> Result<ApiResponse, ApiError> {
        let segments = path_segments(request.uri().path());
        if let ["apicenter", "api", "order", number, "label"] = segments.as_slice() {
            if !reads(request.method()) {
                return Err(ApiError::MethodNotAllowed {
                    allow: READ_METHODS,
                });
            }
            return self.label(caller, number).await;
        }
        let ["apicenter", "api", "order", number, "events"] = segments.as_slice() else {
            return Err(ApiError::NoRoute);
        };
        if request.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed { allow: "POST" });
        }
        require_json(request.headers())?;
        let event = requests::event(request.body().as_ref())?;
        let (applied, order) = self.lifecycle.record_event(caller, number, event).await?;
        let message = match applied {
            EventEffect::Moved => "event applied",
            EventEffect::Recorded => {
                "event recorded; it is older than the current status, which stays"
            }
            EventEffect::Duplicate => "event already received; nothing changed",
        };
        Ok(success(StatusCode::OK, &OrderView::from(&order), message))
    }

    /// The order's label: a redirect to a link that serves it for five
    /// minutes (the link is in `data.url` too).
    async fn label(&self, caller: &Principal, number: &str) -> Result<ApiResponse, ApiError> {
        let LabelLink { url, label } =
            fetch_label(&self.store, &self.labels, caller, number).await?;
        let data = serde_json::json!({
            "url": url,
            "expires_in_seconds": LINK_TTL.as_secs(),
            "bytes": label.bytes,
            "sha256": label.sha256,
        });
        let mut response = success(StatusCode::FOUND, &data, "the label is at data.url");
        response.headers.push(("location", url));
        Ok(response)
    }
}
