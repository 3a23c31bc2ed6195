//! The warehouse-facing Lambda: `POST /apicenter/api/order/{order_number}/events`.
//! Applies the report to the order; the write that makes the platform callback
//! due also sends its queue message (the store's outbox). A separate function from the ERP API so it
//! has its own credentials, permissions and scaling.

use std::convert::Infallible;
use std::time::Duration;

use adapters::api::{
    self, ApiError, ApiResponse, READ_METHODS, path_segments, reads, require_json, success,
};
use adapters::startup::Started;
use adapters::{DynamoKeyStore, DynamoOrderStore, S3LabelStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::{Authenticator, Principal};
use shared::lifecycle::label::{LINK_TTL, LabelLink, fetch_label};
use shared::lifecycle::{Lifecycle, requests};
use shared::ports::{Clock, KeyStore, LabelStore, OrderStore, SystemClock};
use shared::record::progress::EventEffect;
use shared::view::OrderView;

pub mod settings;

pub use settings::Settings;

/// Whether `path` is the route this function serves (API Gateway sends it
/// only these; the local gateway asks).
#[must_use]
pub fn serves(path: &str) -> bool {
    matches!(
        path_segments(path).as_slice(),
        ["apicenter", "api", "order", _, "events" | "label"]
    )
}

/// Warehouse keys only; their requests run in an `wms` span.
const DOOR: api::Door = api::Door {
    admit: |caller| {
        let span = || tracing::info_span!("wms", key_id = %caller.key_id);
        caller.centre_codes().map(|_| span())
    },
    refusal: "only warehouse keys can report events",
};

#[derive(Debug)]
pub struct EventsApi<S, L, C, K> {
    lifecycle: Lifecycle<S, C>,
    store: S,
    labels: L,
    auth: Authenticator<K, C>,
    answer_by: Duration,
}

impl EventsApi<DynamoOrderStore, S3LabelStore, SystemClock, DynamoKeyStore> {
    /// The production wiring: DynamoDB, S3 and the system clock.
    pub fn new(started: Started<Settings>) -> Self {
        let (store, labels, keys) = started.settings.api.ports(started.dynamodb, started.s3);
        Self::with_ports(store, labels, keys, SystemClock)
            .with_key_cache(started.settings.api.api_key_cache)
    }
}

impl<S: OrderStore + Clone, L: LabelStore, C: Clock + Clone, K: KeyStore> EventsApi<S, L, C, K> {
    pub fn with_ports(store: S, labels: L, keys: K, clock: C) -> Self {
        Self {
            lifecycle: Lifecycle::new(store.clone(), clock.clone()),
            store,
            labels,
            auth: Authenticator::new(keys, clock),
            answer_by: api::ANSWER_BY,
        }
    }

    /// Answers `503` with `Retry-After` to a request not done within `deadline`.
    #[must_use]
    pub fn with_answer_by(mut self, deadline: Duration) -> Self {
        self.answer_by = deadline;
        self
    }

    /// Answers one request. Never fails: every error has its HTTP answer.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Infallible> {
        let request = &request;
        let route = |caller: Principal| async move { self.report(&caller, request).await };
        let answered = api::serve(&self.auth, request.raw_http_path(), request, DOOR, route);
        let answer = api::within(self.answer_by, request.method(), answered).await;
        Ok(answer.map(Body::from))
    }

    /// Trusts keys it has read for `ttl` (`API_KEY_CACHE_SECONDS`).
    #[must_use]
    pub fn with_key_cache(mut self, ttl: Duration) -> Self {
        self.auth = self.auth.with_cache(ttl);
        self
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

#[cfg(test)]
mod tests;
