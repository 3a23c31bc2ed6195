//! The ERP's webhook endpoints (API Gateway HTTP API, payload v2): an ERP key
//! manages its own, and another client's endpoint is answered exactly as a
//! missing one.
//!
//! | route | answers |
//! | --- | --- |
//! | `POST /apicenter/api/webhooks` | 201 with `data.secret` (shown only here and on rotation) · 400 · 409 at ten endpoints |
//! | `GET /apicenter/api/webhooks` | 200, the client's endpoints |
//! | `GET /apicenter/api/webhooks/{id}` | 200, the endpoint and its recent deliveries · 404 |
//! | `PATCH /apicenter/api/webhooks/{id}` | 200 · 400 · 404 |
//! | `DELETE /apicenter/api/webhooks/{id}` | 200 · 404 |
//! | `POST /apicenter/api/webhooks/{id}/rotate-secret` | 200 with the new `data.secret` · 404 |
//! | `POST /apicenter/api/webhooks/{id}/replay?since=T` | 202, what it missed since `T` (RFC 3339) is queued · 400 naming `since` · 404 |
//!
//! Every route answers within [`api::ANSWER_BY`]: `503` with `Retry-After`
//! while its storage does not answer, as the order API does.

pub mod settings;
mod view;

pub use settings::Settings;

use std::convert::Infallible;
use std::time::Duration;

use adapters::api::{self, ApiError, ApiResponse, path_segments, reads, require_json, success};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::{Authenticator, Principal};
use shared::error::FieldError;
use shared::notify::{Replay, Subscriptions, WebhookError};
use shared::ports::{Clock, DeliveryQueue, DeliveryStore, EndpointStore, EventLog, KeyStore};

/// Whether `path` is one of this function's routes (API Gateway sends it
/// only these; the local gateway asks).
#[must_use]
pub fn serves(path: &str) -> bool {
    matches!(
        path_segments(path).as_slice(),
        ["apicenter", "api", "webhooks", ..]
    )
}

/// ERP keys only; their requests run in an `erp` span.
const DOOR: api::Door = api::Door {
    admit: |caller| {
        // The client code beside the key: what an operator searches by.
        caller
            .client_code()
            .map(|client| tracing::info_span!("erp", client, key_id = %caller.key_id))
    },
    refusal: "warehouse keys cannot manage webhooks",
};

#[derive(Debug)]
pub struct WebhooksApi<E, D, L, Q, C, K> {
    subscriptions: Subscriptions<E, D>,
    replay: Replay<E, L, D, Q>,
    auth: Authenticator<K, C>,
    clock: C,
    /// The request is answered by then, a `503` if storage has not.
    answer_by: Duration,
}

impl<E, D, L, Q, C, K> WebhooksApi<E, D, L, Q, C, K>
where
    E: EndpointStore,
    D: DeliveryStore,
    L: EventLog,
    Q: DeliveryQueue,
    C: Clock + Clone + 'static,
    K: KeyStore,
{
    pub fn new(
        subscriptions: Subscriptions<E, D>,
        replay: Replay<E, L, D, Q>,
        keys: K,
        clock: C,
    ) -> Self {
        Self {
            subscriptions,
            replay,
            auth: Authenticator::new(keys, clock.clone()),
            clock,
            answer_by: api::ANSWER_BY,
        }
    }

    /// Answers `503` with `Retry-After` when a request is not done within
    /// `deadline` (tests shorten it).
    #[must_use]
    pub const fn with_answer_by(mut self, deadline: Duration) -> Self {
        self.answer_by = deadline;
        self
    }

    /// Answers one request. Never fails: every error has its HTTP answer.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Infallible> {
        let served = api::serve(
            &self.auth,
            request.raw_http_path(),
            &request,
            DOOR,
            |caller| self.route(caller, &request),
        );
        let answer = api::within(self.answer_by, request.method(), served).await;
        Ok(answer.map(Body::from))
    }

    async fn route(&self, caller: Principal, request: &Request) -> Result<ApiResponse, ApiError> {
        let client = caller.client_code().unwrap_or_default();
        let method = request.method();
        let body = request.body().as_ref();
        let now = self.clock.now();
        match path_segments(request.uri().path()).as_slice() {
            ["apicenter", "api", "webhooks"] if method == Method::POST => {
                require_json(request.headers())?;
                let issued = self.subscriptions.create(client, body, now).await?;
                Ok(success(
                    StatusCode::CREATED,
                    &view::issued(&issued),
                    "created; keep the secret, it is shown only now",
                ))
            }
            ["apicenter", "api", "webhooks"] if reads(method) => {
                let endpoints = self.subscriptions.list(client).await?;
                let listed: Vec<_> = endpoints.iter().map(view::endpoint).collect();
                Ok(success(
                    StatusCode::OK,
                    &serde_json::json!({ "endpoints": listed }),
                    &format!("{} endpoint(s)", listed.len()),
                ))
            }
            ["apicenter", "api", "webhooks"] => Err(ApiError::MethodNotAllowed {
                allow: "GET, HEAD, POST",
            }),
            ["apicenter", "api", "webhooks", id] if reads(method) => {
                let (endpoint, recent) = self.subscriptions.get(client, id).await?;
                Ok(success(
                    StatusCode::OK,
                    &view::with_deliveries(&endpoint, &recent),
                    "the endpoint",
                ))
            }
            ["apicenter", "api", "webhooks", id] if method == Method::PATCH => {
                require_json(request.headers())?;
                let endpoint = self.subscriptions.change(client, id, body, now).await?;
                Ok(success(
                    StatusCode::OK,
                    &view::endpoint(&endpoint),
                    "changed",
                ))
            }
            ["apicenter", "api", "webhooks", id] if method == Method::DELETE => {
                self.subscriptions.delete(client, id).await?;
                Ok(success(
                    StatusCode::OK,
                    &serde_json::json!({ "id": id }),
                    "deleted",
                ))
            }
            ["apicenter", "api", "webhooks", _] => Err(ApiError::MethodNotAllowed {
                allow: "GET, HEAD, PATCH, DELETE",
            }),
            ["apicenter", "api", "webhooks", id, "rotate-secret"] if method == Method::POST => {
                let issued = self.subscriptions.rotate(client, id, now).await?;
                Ok(success(
                    StatusCode::OK,
                    &view::issued(&issued),
                    "rotated; the old secret signs beside the new one for 24 hours",
                ))
            }
            ["apicenter", "api", "webhooks", _, "rotate-secret"] => {
                Err(ApiError::MethodNotAllowed { allow: "POST" })
            }
            ["apicenter", "api", "webhooks", id, "replay"] if method == Method::POST => {
                let since = since(request.uri().query().unwrap_or_default())?;
                let replayed = self.replay.replay(client, id, since, now).await?;
                Ok(success(
                    StatusCode::ACCEPTED,
                    &serde_json::json!({ "queued": replayed.queued, "already_delivered_or_due": replayed.already }),
                    &format!("{} event(s) queued", replayed.queued),
                ))
            }
            ["apicenter", "api", "webhooks", _, "replay"] => {
                Err(ApiError::MethodNotAllowed { allow: "POST" })
            }
            _ => Err(ApiError::NoRoute),
        }
    }
}

/// `since` from the query: required, RFC 3339; anything else, or any other
/// parameter, is a 400 naming it.
fn since(query: &str) -> Result<chrono::DateTime<chrono::Utc>, WebhookError> {
    let mut since = None;
    let mut problems = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "since" => match chrono::DateTime::parse_from_rfc3339(&value) {
                Ok(at) => since = Some(at.to_utc()),
                Err(_) => problems.push(FieldError::new(
                    "since",
                    "must be an RFC 3339 time, like 2026-12-01T00:00:00Z",
                )),
            },
            other => problems.push(FieldError::new(
                other.chars().take(100).collect::<String>(),
                "is not a parameter of this route",
            )),
        }
    }
    if since.is_none() && problems.is_empty() {
        problems.push(FieldError::new("since", "is required"));
    }
    match since {
        Some(at) if problems.is_empty() => Ok(at),
        _ => Err(WebhookError::Invalid(problems)),
    }
}

#[cfg(test)]
mod tests;
