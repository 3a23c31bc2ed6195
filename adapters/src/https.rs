//! Every outbound connection, the AWS SDK's and the partner's, goes through
//! reqwest on one TLS stack: rustls on *ring*, trusting Mozilla's roots
//! compiled into the binary.
//!
//! Why not the SDK's default client (hyper + rustls on aws-lc, system roots):
//! parsing the system's root certificates costs ≈ 7 ms per process and
//! reqwest's verifier parsed them a second time, both inside the cold start,
//! and two TLS stacks made the largest bootstrap 10.6 MB (issue 5,
//! docs/benchmarks.md). The AWS endpoints and the partner's callback API are
//! public HTTPS endpoints that Mozilla's roots cover; to trust a private CA or
//! an inspecting proxy as well, set `SSL_CERT_FILE` to its PEM bundle.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The SDK's own default, kept: how long to wait for a TCP + TLS connection.
const AWS_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
/// Longest silence while reading an AWS response before the attempt fails:
/// above SQS's 20 s long poll (the local stack's pollers, `orderctl`). A
/// function's attempts end sooner, at its [`AwsBudget::attempt`].
const AWS_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one AWS call may take, and how it is retried: every SDK call of
/// a function runs inside it (docs/reliability.md, "Faults at the AWS
/// boundary").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsBudget {
    /// The whole call, every attempt and back-off included.
    pub operation: Duration,
    /// One attempt: a stalled connection is given up after this and retried.
    pub attempt: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first retry's back-off ceiling (the SDK draws it at random below
    /// this: full jitter), doubling up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl AwsBudget {
    /// The budget of a function whose Lambda timeout is `timeout`: a call
    /// may use 30 % of it (at most 15 s), so an HTTP function (10 s) can make
    /// three calls in a row that all time out and still answer its `503`
    /// before its own timeout; an attempt 40 % of the call (three attempts
    /// with their back-offs fit); back-offs from 1/60 to 1/5 of the call.
    #[must_use]
    pub fn within(timeout: Duration) -> Self {
        let operation = (timeout * 3 / 10).min(Duration::from_secs(15));
        Self {
            operation,
            attempt: operation * 2 / 5,
            max_attempts: 3,
            initial_backoff: operation / 60,
            max_backoff: operation / 5,
        }
    }

    /// Tools and the local stack's pollers (`orderctl`, `make run`): room
    /// for SQS's 20 s long poll in one attempt.
    pub const TOOLS: Self = Self {
        operation: Duration::from_secs(60),
        attempt: Duration::from_secs(25),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
    };

    fn timeouts(&self) -> aws_config::timeout::TimeoutConfig {
        // No connect timeout here: the connector's own (3.1 s) applies, and
        // the attempt timeout bounds it.
        aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }

    fn retries(&self) -> aws_config::retry::RetryConfig {
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }
}

/// Why outbound HTTPS cannot be set up: a start-up error, never a request's.
#[derive(Debug, thiserror::Error)]
pub enum HttpsSetupError {
    #[error(transparent)]
    CertFile(#[from] CertFileError),
    #[error("cannot build the HTTP client")]
    Client(#[from] reqwest::Error),
}

/// `SSL_CERT_FILE` is set but adds no certificate.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SSL_CERT_FILE {path}: {reason}")]
pub struct CertFileError {
    path: String,
    reason: String,
}

/// The AWS configuration from the environment (region, credentials, endpoint
/// overrides such as `AWS_ENDPOINT_URL_DYNAMODB`), on the shared TLS stack,
/// with the tools' budget ([`AwsBudget::TOOLS`]).
pub async fn aws_config() -> Result<SdkConfig, HttpsSetupError> {
    aws_config_within(AwsBudget::TOOLS).await
}

/// [`aws_config`] with every call inside `budget`.
pub async fn aws_config_within(budget: AwsBudget) -> Result<SdkConfig, HttpsSetupError> {
    let client = reqwest_builder()?
        .connect_timeout(AWS_CONNECT_TIMEOUT)
        .read_timeout(AWS_READ_TIMEOUT)
        .build()?;
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(SdkHttpClient { client }))
        .timeout_config(budget.timeouts())
        .retry_config(budget.retries())
        .load()
        .await)
}

/// A reqwest client builder on the shared TLS stack (reqwest is built without
/// a crypto provider of its own, so every reqwest client starts here). No
/// redirects are followed: neither AWS nor the partner API sends any on
/// purpose, and a followed one would carry signed headers elsewhere or turn a
/// POST into a GET.
pub fn reqwest_builder() -> Result<reqwest::ClientBuilder, HttpsSetupError> {
    let tls = TLS.as_ref().map_err(CertFileError::clone)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .redirect(reqwest::redirect::Policy::none()))
}

static TLS: LazyLock<Result<rustls::ClientConfig, CertFileError>> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        // Set but unusable is a configuration error: without it the calls
        // it was meant for would fail certificate checks one by one.
        let refuse = |reason: String| CertFileError {
            path: path.to_string_lossy().into_owned(),
            reason,
        };
        let extra: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
            .and_then(Iterator::collect)
            .map_err(|err| refuse(err.to_string()))?;
        let (added, ignored) = roots.add_parsable_certificates(extra);
        if added == 0 {
            return Err(refuse("no usable certificate in it".into()));
        }
        tracing::info!(
            added,
            ignored,
            "trusting the certificates of SSL_CERT_FILE too"
        );
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth())
});

/// The SDK's HTTP client: one reqwest client (one connection pool) for every
/// SDK client built from the same [`SdkConfig`].
#[derive(Debug)]
struct SdkHttpClient {
    client: reqwest::Client,
}

impl HttpClient for SdkHttpClient {
    /// One connector for all settings: the client's timeouts (connect 3.1 s
    /// as the SDK's default, 30 s read silence) are the outer bounds; the
    /// budget's attempt and operation timeouts apply on top.
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SdkConnector {
            client: self.client.clone(),
        })
    }
}

#[derive(Debug)]
struct SdkConnector {
    client: reqwest::Client,
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(request)?;
            let response = client.execute(request).await.map_err(connector_error)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(connector_error)?;
            let mut http = http::Response::new(SdkBody::from(body));
            *http.status_mut() = status;
            *http.headers_mut() = headers;
            HttpResponse::try_from(http).map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

/// The SDK's request as reqwest's; SDK bodies for DynamoDB, SQS and Secrets
/// Manager are always in memory.
fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|err| ConnectorError::other(err.into(), None))?;
    let (parts, body) = request.into_parts();
    let bytes = body
        .bytes()
        .ok_or_else(|| {
            ConnectorError::other("streaming request bodies are not supported".into(), None)
        })?
        .to_vec();
    reqwest::Request::try_from(http::Request::from_parts(parts, bytes))
        .map_err(|err| ConnectorError::other(err.into(), None))
}

/// Transport failures as the SDK's retry rules know them: timeouts and I/O
/// errors are retried, anything else is not.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_connect() || err.is_request() || err.is_body() {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_function_can_make_three_calls_that_use_their_whole_budget_before_its_timeout() {
        let timeout = Duration::from_secs(10);
        let budget = AwsBudget::within(timeout);
        assert_eq!(budget.operation, Duration::from_secs(3));
        assert_eq!(budget.attempt, Duration::from_millis(1200));
        assert_eq!(budget.max_attempts, 3);
        assert_eq!(budget.initial_backoff, Duration::from_millis(50));
        assert_eq!(budget.max_backoff, Duration::from_millis(600));
        assert!(budget.operation * 3 < timeout);
    }

    #[test]
    fn a_long_function_gets_at_most_fifteen_seconds_a_call() {
        for seconds in [60, 300, 900] {
            let budget = AwsBudget::within(Duration::from_secs(seconds));
            assert_eq!(budget.operation, Duration::from_secs(15));
            assert_eq!(budget.attempt, Duration::from_secs(6));
        }
        let dispatch = AwsBudget::within(Duration::from_secs(30));
        assert_eq!(dispatch.operation, Duration::from_secs(9));
        assert_eq!(dispatch.attempt, Duration::from_millis(3600));
    }

    #[test]
    fn the_tools_budget_has_room_for_a_long_poll_in_one_attempt() {
        assert!(AwsBudget::TOOLS.attempt > Duration::from_secs(20));
        assert!(AwsBudget::TOOLS.attempt < AWS_READ_TIMEOUT);
    }
}
