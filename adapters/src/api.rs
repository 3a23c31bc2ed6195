//! The HTTP face of the core: the `{code, data, message}` envelope of spec 000,
//! and the one place where errors become status codes.
//!
//! Client mistakes get a message that helps them fix the request; our own
//! failures are logged with their cause chain and answered with a generic text.

use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared::notify::WebhookError;
use tracing::Instrument;

use shared::auth::signature::Signed;
use shared::auth::{AuthError, Authenticator, Principal, RequestHeaders};
use shared::error::{FieldError, IntakeError, StoreError};
use shared::lifecycle::LifecycleError;
use shared::ports::{Clock, KeyStore};

/// A response ready to hand to whatever transport serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: StatusCode,
    /// Extra headers; `Content-Type: application/json` is implied.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Every way a request can fail, whatever route it took.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("the body must be JSON")]
    UnsupportedMediaType,
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Intake(err.into())
    }
}

impl ApiResponse {
    /// As the HTTP response to a request made with `method`, for any
    /// transport built on `http`: a JSON body (none for `HEAD`, which HTTP
    /// answers as `GET` without it), never sniffed by a browser and never
    /// kept by a cache (orders carry a buyer's address; a label link is a
    /// credential for five minutes).
    #[must_use]
    pub fn into_http(self, method: &http::Method) -> http::Response<String> {
        let body = if method == http::Method::HEAD {
            String::new()
        } else {
            self.body
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in [
            (http::header::CONTENT_TYPE, "application/json"),
            (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (http::header::CACHE_CONTROL, "no-store"),
        ] {
            headers.insert(name, http::HeaderValue::from_static(value));
        }
        for (name, value) in self.headers {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// Whether a request only reads: `GET`, or `HEAD`.
#[must_use]
pub fn reads(method: &http::Method) -> bool {
    method == http::Method::GET || method == http::Method::HEAD
}

/// The `Allow` of a route that only reads.
pub const READ_METHODS: &str = "GET, HEAD";

/// Spec 000's response envelope; `code` repeats the HTTP status.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: u16,
    data: &'a T,
    message: &'a str,
}

/// A successful answer in the envelope.
pub fn success(status: StatusCode, data: &impl Serialize, message: &str) -> ApiResponse {
    let envelope = Envelope {
        code: status.as_u16(),
        data,
        message,
    };
    ApiResponse {
        status,
        headers: Vec::new(),
        // Serialised straight from the struct, so `data` keeps spec 000's field order.
        body: serde_json::to_string(&envelope).unwrap_or_default(),
    }
}

fn envelope(status: StatusCode, data: serde_json::Value, message: &str) -> ApiResponse {
    success(status, &data, message)
}

/// A refusal listing `errors` in `data.errors`; the message counts them:
/// "{intro} N {problem}(s); see data.errors".
fn listed(status: StatusCode, errors: &[FieldError], intro: &str, problem: &str) -> ApiResponse {
    let message = format!("{intro} {} {problem}(s); see data.errors", errors.len());
    envelope(status, json!({ "errors": errors }), &message)
}

/// The non-empty segments of a request path: what every router matches on.
#[must_use]
pub fn path_segments(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .collect()
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

/// The caller of `request`, whichever HTTP function serves it. `raw_path` is
/// the gateway's `rawPath`: a signature covers the method, the path and
/// query as the client sent them, and the raw body.
///
/// # Errors
/// No key, an unknown, inactive or mis-signed one, or the key table failed.
pub async fn caller<K: KeyStore, C: Clock>(
    auth: &Authenticator<K, C>,
    raw_path: &str,
    request: &http::Request<impl AsRef<[u8]>>,
) -> Result<Principal, ApiError> {
    let path = signed_path(raw_path, request.uri());
    let signed = Signed {
        method: request.method().as_str(),
        path: &path,
        body: request.body().as_ref(),
    };
    Ok(auth
        .authenticate(&HttpHeaders(request.headers()), &signed)
        .await?)
}

/// Which keys an HTTP function serves.
#[derive(Debug, Clone, Copy)]
pub struct Door {
    /// The span a caller's request runs in; `None`: a kind of key this
    /// function does not serve.
    pub admit: fn(&Principal) -> Option<tracing::Span>,
    /// Why the others are refused (403).
    pub refusal: &'static str,
}

/// Answers one request to an HTTP function: authenticates its caller, lets
/// `door` refuse the kinds of key the function does not serve, then runs
/// `route` in the caller's span. Never fails: every error has its HTTP
/// answer. `raw_path` is the gateway's `rawPath` (see [`caller`]).
pub async fn serve<K, C, B, F>(
    auth: &Authenticator<K, C>,
    raw_path: &str,
    request: &http::Request<B>,
    door: Door,
    route: impl FnOnce(Principal) -> F,
) -> http::Response<String>
where
    K: KeyStore,
    C: Clock,
    B: AsRef<[u8]>,
    F: Future<Output = Result<ApiResponse, ApiError>>,
{
    let routed = async {
        let caller = caller(auth, raw_path, request).await?;
        let span = (door.admit)(&caller).ok_or(AuthError::Forbidden(door.refusal))?;
        route(caller).instrument(span).await
    };
    answer(request.method(), routed.await)
}

/// How long an HTTP function's request may take before it is answered `503`
/// with `Retry-After` whatever its AWS calls are doing: the HTTP functions'
/// 10 s Lambda timeout less 1.5 s for the runtime to send the answer. Each
/// call is bounded too (`crate::https::AwsBudget`, 3 s), but a request can
/// make four in a row (a create: key, label, request line, order).
pub const ANSWER_BY: std::time::Duration = std::time::Duration::from_millis(8500);

/// `answered`, or `503` with `Retry-After` when it is not done within
/// `deadline`. What was written by then stays: the same request again gets
/// the stored result (a create is idempotent, an event carries its id).
pub async fn within(
    deadline: std::time::Duration,
    method: &http::Method,
    answered: impl Future<Output = http::Response<String>>,
) -> http::Response<String> {
    match tokio::time::timeout(deadline, answered).await {
        Ok(answer) => answer,
        Err(_) => answer(
            method,
            Err(ApiError::from(StoreError::Unavailable(
                "no answer from storage within the request's deadline".into(),
            ))),
        ),
    }
}

/// The HTTP answer to a request made with `method`: what its route
/// answered, or its error's answer. Every error has one; nothing is a panic.
#[must_use]
pub fn answer(
    method: &http::Method,
    routed: Result<ApiResponse, ApiError>,
) -> http::Response<String> {
    routed
        .unwrap_or_else(ApiError::into_response)
        .into_http(method)
}

/// An `http` request's headers, as authentication reads them.
#[derive(Debug, Clone, Copy)]
pub struct HttpHeaders<'a>(pub &'a http::HeaderMap);

impl RequestHeaders for HttpHeaders<'_> {
    fn header(&self, name: &str) -> Option<Option<&str>> {
        self.0.get(name).map(|value| value.to_str().ok())
    }
}

/// Refuses (415) a request whose `Content-Type` is not JSON.
pub fn require_json(headers: &http::HeaderMap) -> Result<(), ApiError> {
    json_media_type(
        headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
    )
}

/// Accepts `application/json` and `application/<anything>+json`, with parameters.
fn json_media_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let essence = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) if other.starts_with("application/") && other.ends_with("+json") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

impl ApiError {
    /// The answer for this error. Logs our own failures; never leaks them.
    #[must_use]
    pub fn into_response(self) -> ApiResponse {
        use IntakeError as E;
        match self {
            Self::NoRoute => envelope(StatusCode::NOT_FOUND, json!(null), "no such route"),
            Self::MethodNotAllowed { allow } => {
                let mut response = envelope(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!(null),
                    &format!("method not allowed; use {allow}"),
                );
                response.headers.push(("allow", allow.to_owned()));
                response
            }
            Self::UnsupportedMediaType => envelope(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!(null),
                "send the body as JSON with Content-Type: application/json",
            ),
            Self::Intake(E::Invalid(errors)) => listed(
                StatusCode::BAD_REQUEST,
                &errors,
                "the request has",
                "problem",
            ),
            Self::Intake(E::Unprocessable(errors)) => listed(
                StatusCode::UNPROCESSABLE_ENTITY,
                &errors,
                "real_time_response is true and the order has",
                "data-quality problem",
            ),
            Self::Intake(err @ E::BodyTooLarge { limit, .. }) => envelope(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "limit_bytes": limit }),
                &format!("{err}; send a larger label by link in logistics_provider.label_url"),
            ),
            Self::Intake(E::Conflict(number)) => envelope(
                StatusCode::CONFLICT,
                json!({ "order_number": number }),
                &format!(
                    "order {number} already exists with different content; resend it unchanged, or use a new order_number"
                ),
            ),
            Self::Intake(E::NumberTaken(number)) => envelope(
                StatusCode::CONFLICT,
                json!({ "order_number": number }),
                &format!("order number {number} is taken; use another order_number"),
            ),
            Self::Intake(err @ E::NotFound(_)) => {
                envelope(StatusCode::NOT_FOUND, json!(null), &err.to_string())
            }
            Self::Intake(E::Store(err)) => store_failure(&err),
            Self::Intake(E::Labels(err)) => label_failure(&err),
            Self::Intake(err @ E::ForeignClient { .. }) => {
                envelope(StatusCode::FORBIDDEN, json!(null), &err.to_string())
            }
            Self::Lifecycle(err) => lifecycle_failure(err),
            Self::Webhook(err) => webhook_failure(err),
            Self::Auth(AuthError::Store(err)) => store_failure(&err),
            Self::Auth(err @ AuthError::Forbidden(_)) => {
                envelope(StatusCode::FORBIDDEN, json!(null), &err.to_string())
            }
            Self::Auth(err @ AuthError::Replayed) => {
                envelope(StatusCode::CONFLICT, json!(null), &err.to_string())
            }
            Self::Auth(err) => {
                let mut response =
                    envelope(StatusCode::UNAUTHORIZED, json!(null), &err.to_string());
                response
                    .headers
                    .push(("www-authenticate", "Bearer".to_owned()));
                response
            }
        }
    }
}

fn lifecycle_failure(err: LifecycleError) -> ApiResponse {
    use LifecycleError as L;
    match err {
        L::NotFound(_) => envelope(StatusCode::NOT_FOUND, json!(null), &err.to_string()),
        L::Invalid(errors) => listed(
            StatusCode::BAD_REQUEST,
            &errors,
            "the request has",
            "problem",
        ),
        L::BodyTooLarge { limit, .. } => envelope(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({ "limit_bytes": limit }),
            &err.to_string(),
        ),
        L::Impossible { current, .. } => envelope(
            StatusCode::CONFLICT,
            json!({ "current_status": current }),
            &err.to_string(),
        ),
        L::NotReplayable(status) => envelope(
            StatusCode::CONFLICT,
            json!({ "callback_status": status }),
            &err.to_string(),
        ),
        L::StillInWarehouse(still) => envelope(
            StatusCode::CONFLICT,
            json!({
                "current_status": still.0,
                "erasable_when": ["handed_over", "cancelled"],
            }),
            &err.to_string(),
        ),
        L::Labels(err) => label_failure(&err),
        L::CallbackSettled(status) => envelope(
            StatusCode::CONFLICT,
            json!({ "callback_status": status }),
            &err.to_string(),
        ),
        L::AttemptInFlight(ref until) => envelope(
            StatusCode::CONFLICT,
            json!({ "attempt_in_flight_until": until }),
            &err.to_string(),
        ),
        L::Store(err) => store_failure(&err),
    }
}

fn label_failure(err: &shared::error::LabelError) -> ApiResponse {
    tracing::error!(error = %err, cause = ?std::error::Error::source(err), "label store failure");
    retry_later()
}

/// 503 with `Retry-After`: our dependency failed, the same request may succeed.
fn retry_later() -> ApiResponse {
    let mut response = envelope(
        StatusCode::SERVICE_UNAVAILABLE,
        json!(null),
        "temporarily unavailable; retry the same request, it is safe to repeat",
    );
    response.headers.push(("retry-after", "1".to_owned()));
    response
}

fn store_failure(err: &StoreError) -> ApiResponse {
    if let StoreError::ItemTooLarge { limit } = err {
        tracing::warn!(error = %err, "order at the storage limit");
        return envelope(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({ "limit_bytes": limit }),
            &format!("{err}; this change was not recorded"),
        );
    }
    tracing::error!(error = %err, cause = ?std::error::Error::source(err), "order store failure");
    match err {
        StoreError::Unavailable(_) => retry_later(),
        StoreError::Failed(_) | StoreError::Corrupt { .. } | StoreError::ItemTooLarge { .. } => {
            envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!(null),
                "internal error; it has been logged",
            )
        }
    }
}

fn webhook_failure(err: WebhookError) -> ApiResponse {
    match err {
        WebhookError::Invalid(errors) => listed(
            StatusCode::BAD_REQUEST,
            &errors,
            "the request has",
            "problem",
        ),
        err @ WebhookError::NotFound(_) => {
            envelope(StatusCode::NOT_FOUND, json!(null), &err.to_string())
        }
        err @ WebhookError::TooMany => {
            envelope(StatusCode::CONFLICT, json!(null), &err.to_string())
        }
        WebhookError::Store(err) => store_failure(&err),
        WebhookError::Queue(err) => {
            tracing::error!(error = %err, "the webhook delivery queue did not take a replay");
            retry_later()
        }
        WebhookError::Randomness(err) => {
            tracing::error!(error = %err, "no randomness for a webhook secret");
            retry_later()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_with_parameters_are_accepted() {
        assert!(json_media_type(Some("application/json")).is_ok());
        assert!(json_media_type(Some("Application/JSON; charset=utf-8")).is_ok());
        assert!(json_media_type(Some("application/vnd.erp+json")).is_ok());
        assert!(json_media_type(Some("text/plain")).is_err());
        assert!(json_media_type(None).is_err());
    }

    #[test]
    fn validation_errors_are_listed_under_data_errors() {
        let response = ApiError::from(IntakeError::Invalid(vec![shared::error::FieldError::new(
            "receiver.country_code",
            "is required",
        )]))
        .into_response();
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], 400);
        assert_eq!(body["data"]["errors"][0]["field"], "receiver.country_code");
    }

    #[test]
    fn an_order_at_the_storage_limit_is_413_not_500() {
        let response = ApiError::from(StoreError::ItemTooLarge { limit: 409_600 }).into_response();
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.body.contains("409600"));
    }

    #[test]
    fn every_passing_failure_is_503_with_retry_after() {
        for err in [
            ApiError::from(StoreError::Unavailable("throttled".into())),
            ApiError::from(WebhookError::Randomness(shared::random::RandomnessError(
                "no entropy".into(),
            ))),
            ApiError::from(WebhookError::Queue(shared::ports::QueueError(
                "queue down".into(),
            ))),
        ] {
            let response = err.into_response();
            assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(
                response
                    .headers
                    .iter()
                    .any(|(name, _)| *name == "retry-after"),
                "{:?}",
                response.headers
            );
        }
    }

    #[test]
    fn store_failures_do_not_leak_their_cause() {
        let response =
            ApiError::from(StoreError::Failed("secret table arn".into())).into_response();
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!response.body.contains("secret"));
    }
}
