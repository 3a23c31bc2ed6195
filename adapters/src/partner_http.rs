//! [`PartnerClient`] over HTTPS with reqwest. One client per process (built at
//! start-up, connection pool reused across invocations), timeouts well below
//! the function's, and the bearer token (given per request by the
//! dispatcher's [`shared::ports::TokenSource`]) marked sensitive so it never
//! shows up in a `Debug` print or a log.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};

use shared::callback::CallbackBody;
use shared::ports::{AccessToken, PartnerClient, PartnerReply, TransportError};

/// Longest partner answer read, in bytes; the rest is not needed.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct HttpPartner {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PartnerSetupError {
    #[error("cannot build the HTTP client")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Https(#[from] super::https::HttpsSetupError),
}

impl HttpPartner {
    /// `url` is the full callback endpoint.
    pub fn new(
        url: impl Into<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, PartnerSetupError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let client = super::https::reqwest_builder()?
            .default_headers(headers)
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("warehouse-callback/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url: url.into(),
            timeout,
        })
    }
}

impl PartnerClient for HttpPartner {
    async fn post_callback(
        &self,
        body: &CallbackBody,
        idempotency_key: &str,
        token: &AccessToken,
    ) -> Result<PartnerReply, TransportError> {
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                TransportError::Connect("the access token is not a valid header".into())
            })?;
        bearer.set_sensitive(true);
        let body = serde_json::to_vec(body)
            .map_err(|err| TransportError::Connect(format!("cannot encode the body: {err}")))?;
        let response = self
            .client
            .post(&self.url)
            .header(AUTHORIZATION, bearer)
            .header("Idempotency-Key", idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(|err| self.transport(&err))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|err| self.transport(&err))?;
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned();
        Ok(PartnerReply {
            status,
            retry_after,
            body,
        })
    }
}

impl HttpPartner {
    fn transport(&self, err: &reqwest::Error) -> TransportError {
        if err.is_timeout() {
            TransportError::Timeout(self.timeout)
        } else {
            // Without the URL: it is configuration, and may carry a key.
            TransportError::Connect(describe(err))
        }
    }
}

/// The error and its causes, without the request URL.
fn describe(err: &reqwest::Error) -> String {
    let mut text = String::from(if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
