//! A fault layer at the AWS boundary (issue 27): an HTTP proxy on loopback in
//! front of one emulator (DynamoDB Local, or moto for SQS, S3 and Secrets
//! Manager). An SDK client whose endpoint is [`FaultProxy::url`] reaches the
//! emulator through it, and each request's operation is matched against the
//! proxy's [`Rule`]s: the first rule that matches and fires decides what the
//! client gets instead of (or after) the emulator's answer.
//!
//! The operation is the name after the dot of `X-Amz-Target` for the JSON
//! protocols (DynamoDB `PutItem`, SQS `SendMessage`, Secrets Manager
//! `GetSecretValue`), else the HTTP method (S3: `PUT` is PutObject).
//!
//! | module | owns |
//! | --- | --- |
//! | [`fault`] | what a fault does, and AWS's error answers (status, `__type`, body) |
//! | [`plan`] | rules as text, for the command line and the soak |
//! | `src/bin/aws-faults.rs` | `aws-faults exec`: a command run with its services behind proxies |
//! | `proxy` (this file) | listening, matching rules, forwarding |

pub mod fault;
pub mod plan;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use fault::{Fault, Rule};

/// A proxy in front of one emulator; stops serving when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Requests seen per operation, faulted or not.
    seen: HashMap<String, u64>,
    /// Faults given per operation.
    faulted: HashMap<String, u64>,
    /// Faults given per operation and kind ([`Fault::kind`]).
    given: HashMap<(String, String), u64>,
    /// While set, requests pass untouched (still counted as seen).
    paused: bool,
    /// xorshift state: rates are drawn reproducibly.
    random: u64,
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on loopback: {0}")]
    Bind(std::io::Error),
    #[error("cannot build the forwarding client: {0}")]
    Client(String),
}

impl FaultProxy {
    /// Listens on 127.0.0.1:<free port> and forwards to `upstream` (an
    /// emulator's endpoint, e.g. `$AWS_ENDPOINT_URL_DYNAMODB`), with no rule
    /// yet. `seed` makes the rates' draws reproducible.
    ///
    /// # Errors
    /// No free port, or no HTTP client.
    pub async fn start(upstream: &str, seed: u64) -> Result<Self, StartError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let client = adapters::https::reqwest_builder()
            .map_err(|err| StartError::Client(err.to_string()))?
            .build()
            .map_err(|err| StartError::Client(err.to_string()))?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
            state: Mutex::new(State {
                random: seed | 1,
                ..State::default()
            }),
        });
        let serving = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { shared.handle(request).await }
                    });
                    // An error here is a reset we made, or the client gone.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// The endpoint to give an SDK client instead of the emulator's.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds `rule` after the rules already set.
    pub fn inject(&self, rule: Rule) {
        self.shared.lock().rules.push(rule);
    }

    /// Removes every rule: from now on requests pass untouched.
    pub fn heal(&self) {
        self.shared.lock().rules.clear();
    }

    /// Lets requests pass untouched while `paused`, keeping the rules for
    /// when it is lifted (the soak pauses while the service provisions its
    /// tables and queues at a start, the work of no function).
    pub fn pause(&self, paused: bool) {
        self.shared.lock().paused = paused;
    }

    /// How many requests for `operation` arrived so far, faulted or not.
    #[must_use]
    pub fn seen(&self, operation: &str) -> u64 {
        self.shared.lock().seen.get(operation).copied().unwrap_or(0)
    }

    /// Every operation a request arrived for so far.
    #[must_use]
    pub fn operations(&self) -> std::collections::BTreeSet<String> {
        self.shared.lock().seen.keys().cloned().collect()
    }

    /// The faults given so far, by operation and kind ([`Fault::kind`]),
    /// sorted.
    #[must_use]
    pub fn faults_given(&self) -> Vec<(String, String, u64)> {
        let mut given: Vec<(String, String, u64)> = self
            .shared
            .lock()
            .given
            .iter()
            .map(|((operation, kind), count)| (operation.clone(), kind.clone(), *count))
            .collect();
        given.sort();
        given
    }

    /// How many requests for `operation` were given a fault so far.
    #[must_use]
    pub fn faulted(&self, operation: &str) -> u64 {
        self.shared
            .lock()
            .faulted
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the proxy answers on a connection: a response, or a reset.
type Answer = Result<Response<Full<Bytes>>, Reset>;

/// The connection is dropped without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by the fault proxy")]
struct Reset;

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(&self, request: Request<Incoming>) -> Answer {
        let operation = operation(&request);
        let (parts, body) = request.into_parts();
        let Ok(body) = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
        else {
            return Err(Reset);
        };
        match self.draw(&operation, &body) {
            None => self.forward(&parts, body).await,
            Some(Fault::Answer(answer)) => Ok(answer.response()),
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                self.forward(&parts, body).await
            }
            Some(Fault::Stall) => {
                std::future::pending::<()>().await;
                Err(Reset)
            }
            Some(Fault::ResetAfterForward) => {
                // The emulator has done the work; the client never hears.
                let _ = self.forward(&parts, body).await;
                Err(Reset)
            }
        }
    }

    /// The fault the first firing rule for `operation` and `body` gives,
    /// counting the request.
    fn draw(&self, operation: &str, body: &[u8]) -> Option<Fault> {
        let mut state = self.lock();
        *state.seen.entry(operation.to_owned()).or_default() += 1;
        if state.paused {
            return None;
        }
        let State { rules, random, .. } = &mut *state;
        let fault = rules
            .iter_mut()
            .find_map(|rule| rule.fire(operation, body, || next_random(random)))?;
        *state.faulted.entry(operation.to_owned()).or_default() += 1;
        *state
            .given
            .entry((operation.to_owned(), fault.kind().to_owned()))
            .or_default() += 1;
        Some(fault)
    }

    async fn forward(&self, parts: &hyper::http::request::Parts, body: Bytes) -> Answer {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let mut forwarded = self
            .client
            .request(parts.method.clone(), format!("{}{path}", self.upstream))
            .body(body);
        for (name, value) in &parts.headers {
            if name != hyper::header::CONTENT_LENGTH && name != hyper::header::CONNECTION {
                forwarded = forwarded.header(name, value);
            }
        }
        let upstream = forwarded.send().await.map_err(|_| Reset)?;
        let mut response = Response::builder().status(upstream.status());
        for (name, value) in upstream.headers() {
            if name != hyper::header::CONTENT_LENGTH
                && name != hyper::header::CONNECTION
                && name != hyper::header::TRANSFER_ENCODING
            {
                response = response.header(name, value);
            }
        }
        let body = upstream.bytes().await.map_err(|_| Reset)?;
        response.body(Full::new(body)).map_err(|_| Reset)
    }
}

/// The operation a request asks for: `X-Amz-Target`'s name after its dot
/// (`DynamoDB_20120810.PutItem` → `PutItem`), else the HTTP method (S3).
fn operation(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.rsplit_once('.'))
        .map_or_else(|| request.method().to_string(), |(_, name)| name.to_owned())
}

/// A draw in [0, 1) (xorshift64*).
fn next_random(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    let value = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
    #[allow(clippy::cast_precision_loss)]
    let draw = (value >> 11) as f64 / (1_u64 << 53) as f64;
    draw
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put_item(proxy: &FaultProxy) -> Result<u16, reqwest::Error> {
        let answer = reqwest::Client::new()
            .post(proxy.url())
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .body("{}")
            .send()
            .await?;
        Ok(answer.status().as_u16())
    }

    #[tokio::test]
    async fn faults_are_counted_by_operation_and_kind_and_none_given_while_paused() {
        let _ = rustls_provider();
        // Nothing listens upstream: a forwarded request is a reset.
        let proxy = FaultProxy::start("http://127.0.0.1:9", 1)
            .await
            .expect("a proxy");
        proxy.inject(Rule::on("PutItem", Fault::dynamodb("ThrottlingException")).times(1));
        proxy.inject(Rule::on("PutItem", Fault::http_500()));
        assert_eq!(put_item(&proxy).await.ok(), Some(400));
        assert_eq!(put_item(&proxy).await.ok(), Some(500));
        proxy.pause(true);
        assert!(put_item(&proxy).await.is_err(), "forwarded while paused");
        proxy.pause(false);
        assert_eq!(put_item(&proxy).await.ok(), Some(500));
        assert_eq!(
            proxy.faults_given(),
            [
                ("PutItem".to_owned(), "HTTP 500".to_owned(), 2),
                ("PutItem".to_owned(), "ThrottlingException".to_owned(), 1),
            ]
        );
        assert_eq!(proxy.seen("PutItem"), 4);
    }

    #[tokio::test]
    async fn a_rule_containing_a_text_fires_only_on_the_requests_that_hold_it() {
        let _ = rustls_provider();
        let proxy = FaultProxy::start("http://127.0.0.1:9", 1)
            .await
            .expect("a proxy");
        proxy.inject(Rule::on("UpdateItem", Fault::http_500()).containing(":progress"));
        let update = |body: &'static str| {
            reqwest::Client::new()
                .post(proxy.url())
                .header("x-amz-target", "DynamoDB_20120810.UpdateItem")
                .body(body)
                .send()
        };
        assert!(
            update(r#"{"UpdateExpression":"SET lease_owner = :owner"}"#)
                .await
                .is_err(),
            "a claim is forwarded"
        );
        let save = update(r#"{"UpdateExpression":"SET progress = :progress"}"#).await;
        assert_eq!(save.map(|answer| answer.status().as_u16()).ok(), Some(500));
        assert_eq!(proxy.faulted("UpdateItem"), 1);
    }

    fn rustls_provider() -> Result<(), std::sync::Arc<rustls::crypto::CryptoProvider>> {
        rustls::crypto::ring::default_provider().install_default()
    }
}
