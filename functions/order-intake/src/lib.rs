//! The ERP-facing order API Lambda (API Gateway HTTP API, payload v2): create
//! and read orders (spec 000), cancel them, and replay their platform callback.
//!
//! `main.rs` only wires it up; the local stack and the integration tests call
//! [`OrderApi::handle`] the same way the Lambda runtime does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use adapters::api::{
    self, ApiError, ApiResponse, READ_METHODS, path_segments, reads, require_json, success,
};
use adapters::emf::EmfMetrics;
use adapters::startup::Started;
use adapters::{DynamoKeyStore, DynamoOrderStore, S3LabelStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::{AuthError, Authenticator, Principal};
use shared::config::Warehouses;
use shared::error::IntakeError;
use shared::intake::{Accepted, Intake, parse_order};
use shared::lifecycle::personal_data::Erased;
use shared::lifecycle::{Lifecycle, requests};
use shared::metrics::{Metric, Metrics};
use shared::polling::{self, OrderFeed, PollRequest};
use shared::ports::{Clock, KeyStore, LabelStore, OrderStore, SystemClock};
use shared::record::progress::EventEffect;
use shared::view::{ChangesView, NumbersView, OrderView};

pub mod settings;

pub use settings::Settings;

/// The ERP routes of `/apicenter/api/order`.
#[derive(Debug)]
pub struct OrderApi<S, L, C, K> {
    feed: S,
    clock: C,
    poll_settle: Duration,
    answer_by: Duration,
    intake: Intake<S, L, C>,
    lifecycle: Lifecycle<S, C>,
    auth: Authenticator<K, C>,
    metrics: Arc<dyn Metrics>,
}

/// ERP keys only; their requests run in an `erp` span.
const DOOR: api::Door = api::Door {
    admit: |caller| {
        // The client code beside the key: what an operator searches by.
        caller
            .client_code()
            .map(|client| tracing::info_span!("erp", client, key_id = %caller.key_id))
    },
    refusal: "warehouse keys cannot use the order API",
};

impl OrderApi<DynamoOrderStore, S3LabelStore, SystemClock, DynamoKeyStore> {
    /// The production wiring: DynamoDB, S3 and the system clock.
    pub fn new(started: Started<Settings>) -> Self {
        let (store, labels, keys) = started.settings.api.ports(started.dynamodb, started.s3);
        Self::with_ports(
            store,
            labels,
            keys,
            started.settings.warehouses,
            SystemClock,
        )
        .with_key_cache(started.settings.api.api_key_cache)
        .with_poll_settle(started.settings.poll_settle)
    }
}

impl<S, L, C, K> OrderApi<S, L, C, K>
where
    S: OrderStore + OrderFeed + Clone,
    L: LabelStore,
    C: Clock + Clone + 'static,
    K: KeyStore,
{
    /// Over these ports; metrics go to stdout as EMF lines ([`Self::with_metrics`]).
    pub fn with_ports(store: S, labels: L, keys: K, warehouses: Warehouses, clock: C) -> Self {
        Self {
            metrics: Arc::new(EmfMetrics::new(clock.clone())),
            feed: store.clone(),
            clock: clock.clone(),
            poll_settle: shared::polling::DEFAULT_SETTLE,
            answer_by: api::ANSWER_BY,
            intake: Intake::new(store.clone(), labels, warehouses, clock.clone()),
            lifecycle: Lifecycle::new(store, clock.clone()),
            auth: Authenticator::new(keys, clock),
        }
    }

    /// Reports its metrics to `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Trusts keys it has read for `ttl` (`API_KEY_CACHE_SECONDS`).
    #[must_use]
    pub fn with_key_cache(mut self, ttl: Duration) -> Self {
        self.auth = self.auth.with_cache(ttl);
        self
    }

    /// Answers `503` with `Retry-After` to a request not done within `deadline`.
    #[must_use]
    pub fn with_answer_by(mut self, deadline: Duration) -> Self {
        self.answer_by = deadline;
        self
    }

    /// Pages of `GET /apicenter/api/orders` stop `settle` behind now.
    #[must_use]
    pub fn with_poll_settle(mut self, settle: Duration) -> Self {
        self.poll_settle = settle;
        self
    }

    /// `GET /apicenter/api/orders`: the change feed, or several orders by number.
    async fn poll(&self, caller: &Principal, request: &Request) -> Result<ApiResponse, ApiError> {
        let client = caller.client_code().ok_or(AuthError::Forbidden(
            "warehouse keys cannot use the order API",
        ))?;
        let query = PollRequest::parse(request.uri().query().unwrap_or_default())
            .map_err(IntakeError::Invalid)?;
        Ok(match query {
            PollRequest::Changes(query) => {
                let page = polling::changes(
                    &self.feed,
                    client,
                    &query,
                    self.clock.now(),
                    self.poll_settle,
                )
                .await?;
                let message = format!("{} order(s)", page.orders.len());
                success(StatusCode::OK, &ChangesView::from(&page), &message)
            }
            PollRequest::Numbers(numbers) => {
                let page = polling::by_numbers(&self.feed, client, &numbers).await?;
                let message = format!(
                    "{} order(s), {} missing",
                    page.orders.len(),
                    page.missing.len()
                );
                success(StatusCode::OK, &NumbersView::from(&page), &message)
            }
        })
    }

    /// Answers one request. Never fails: every error has its HTTP answer.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Infallible> {
        let request = &request;
        let route = |caller: Principal| async move { self.route(&caller, request).await };
        let answered = api::serve(&self.auth, request.raw_http_path(), request, DOOR, route);
        let answer = api::within(self.answer_by, request.method(), answered).await;
        Ok(answer.map(Body::from))
    }

    async fn route(&self, caller: &Principal, request: &Request) -> Result<ApiResponse, ApiError> {
        let segments = path_segments(request.uri().path());
        let post = request.method() == Method::POST;
        let get = reads(request.method());
        let body = request.body().as_ref();
        match segments.as_slice() {
            ["apicenter", "api", "order"] if post => {
                require_json(request.headers())?;
                let accepted = self.intake.accept(caller, parse_order(body)?).await;
                if let Err(IntakeError::NumberTaken(_)) = &accepted {
                    self.metrics.record(Metric::OrderNumberCollision);
                }
                Ok(match accepted? {
                    Accepted::Created(order) => {
                        success(StatusCode::CREATED, &OrderView::from(&order), "created")
                    }
                    Accepted::Replayed(order) => success(
                        StatusCode::OK,
                        &OrderView::from(&order),
                        "already received; this is the stored order",
                    ),
                })
            }
            ["apicenter", "api", "order"] => Err(ApiError::MethodNotAllowed { allow: "POST" }),
            ["apicenter", "api", "orders"] if get => self.poll(caller, request).await,
            ["apicenter", "api", "orders"] => Err(ApiError::MethodNotAllowed {
                allow: READ_METHODS,
            }),
            ["apicenter", "api", "order", number] if get => {
                let order = self.intake.get(caller, number).await?;
                tracing::info!(order_number = %number, status = %order.status, "order read");
                Ok(success(StatusCode::OK, &OrderView::from(&order), "ok"))
            }
            ["apicenter", "api", "order", _] => Err(ApiError::MethodNotAllowed {
                allow: READ_METHODS,
            }),
            ["apicenter", "api", "order", number, "cancel"] if post => {
                if !body.is_empty() {
                    require_json(request.headers())?;
                }
                let cancel = requests::cancel(body)?;
                let (applied, order) = self.lifecycle.cancel(caller, number, cancel).await?;
                let message = match applied {
                    EventEffect::Duplicate => "already cancelled",
                    _ => "cancelled",
                };
                Ok(success(StatusCode::OK, &OrderView::from(&order), message))
            }
            ["apicenter", "api", "order", number, "callback", "retry"] if post => {
                // Each replay starts a new generation: a repeat would post again.
                self.auth.accept_once(caller).await?;
                let order = self.lifecycle.retry_callback(caller, number).await?;
                Ok(success(
                    StatusCode::ACCEPTED,
                    &OrderView::from(&order),
                    "callback queued",
                ))
            }
            ["apicenter", "api", "order", number, "callback", "fields"] if post => {
                require_json(request.headers())?;
                let fields = requests::callback_fields(body)?;
                let order = self
                    .lifecycle
                    .supply_callback_fields(caller, number, fields)
                    .await?;
                Ok(success(
                    StatusCode::OK,
                    &OrderView::from(&order),
                    "callback fields stored",
                ))
            }
            [
                "apicenter",
                "api",
                "order",
                number,
                "personal-data",
                "erase",
            ] if post => {
                let (order, erased) = self.intake.erase_personal_data(caller, number).await?;
                let message = match erased {
                    Erased::Now => "personal data erased",
                    Erased::Before => "personal data already erased",
                };
                Ok(success(StatusCode::OK, &OrderView::from(&order), message))
            }
            ["apicenter", "api", "order", _, "personal-data", "erase"] => {
                Err(ApiError::MethodNotAllowed { allow: "POST" })
            }
            ["apicenter", "api", "order", _, "cancel"]
            | [
                "apicenter",
                "api",
                "order",
                _,
                "callback",
                "retry" | "fields",
            ] => Err(ApiError::MethodNotAllowed { allow: "POST" }),
            _ => Err(ApiError::NoRoute),
        }
    }
}

#[cfg(test)]
mod tests;
