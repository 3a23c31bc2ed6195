//! The order API Lambda (API Gateway HTTP API, payload v2): routes a request to
//! the intake use cases of the `shared` crate and encodes the answer.
//!
//! `main.rs` only wires it up; the local stack and the integration tests call
//! [`OrderApi::handle`] the same way the Lambda runtime does.

use std::convert::Infallible;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::adapters::DynamoOrderStore;
use shared::api::{ApiError, ApiResponse, require_json, success};
use shared::config::{ConfigError, Warehouses, required_env};
use shared::intake::{Accepted, Intake};
use shared::ports::{Clock, OrderStore, SystemClock};

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ORDERS_TABLE`: the DynamoDB table keyed by `order_number`.
    pub orders_table: String,
    /// `WAREHOUSES`: JSON object of warehouses keyed by `centre_code`.
    pub warehouses: Warehouses,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required_env("ORDERS_TABLE")?,
            warehouses: Warehouses::from_json(&required_env("WAREHOUSES")?)?,
        })
    }
}

/// The routes of `/apicenter/api/order`.
#[derive(Debug)]
pub struct OrderApi<S, C> {
    intake: Intake<S, C>,
}

impl OrderApi<DynamoOrderStore, SystemClock> {
    /// The production wiring: DynamoDB and the system clock.
    pub fn new(config: Config, dynamodb: aws_sdk_dynamodb::Client) -> Self {
        let store = DynamoOrderStore::new(dynamodb, config.orders_table);
        Self::with_ports(store, config.warehouses, SystemClock)
    }
}

impl<S: OrderStore, C: Clock> OrderApi<S, C> {
    pub fn with_ports(store: S, warehouses: Warehouses, clock: C) -> Self {
        Self {
            intake: Intake::new(store, warehouses, clock),
        }
    }

    /// Answers one request. Never fails: every error has its HTTP answer.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Infallible> {
        let answer = self
            .route(&request)
            .await
            .unwrap_or_else(ApiError::into_response);
        Ok(encode(answer))
    }

    async fn route(&self, request: &Request) -> Result<ApiResponse, ApiError> {
        let path = request.uri().path();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let method = request.method();
        match segments.as_slice() {
            ["apicenter", "api", "order"] if method == Method::POST => self.create(request).await,
            ["apicenter", "api", "order"] => Err(ApiError::MethodNotAllowed { allow: "POST" }),
            ["apicenter", "api", "order", number] if method == Method::GET => {
                let view = self.intake.get(number).await?;
                Ok(success(StatusCode::OK, &view, "ok"))
            }
            ["apicenter", "api", "order", _] => Err(ApiError::MethodNotAllowed { allow: "GET" }),
            _ => Err(ApiError::NoRoute),
        }
    }

    async fn create(&self, request: &Request) -> Result<ApiResponse, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        require_json(content_type)?;
        Ok(match self.intake.accept(request.body().as_ref()).await? {
            Accepted::Created(view) => success(StatusCode::CREATED, &view, "created"),
            Accepted::Replayed(view) => success(
                StatusCode::OK,
                &view,
                "already received; this is the stored order",
            ),
        })
    }
}

fn encode(answer: ApiResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    for (name, value) in answer.headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
