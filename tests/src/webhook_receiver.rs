//! A real HTTP server playing an ERP's webhook endpoint. It answers from a
//! script (a status, a `Retry-After`, or no answer at all), verifies every
//! delivery on arrival with the `standardwebhooks` crate, the reference
//! implementation and not the service's own signer, against each secret it
//! holds, and records what it got and when.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::Value;
use tokio::net::TcpListener;

/// How the receiver answers one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// The status with `Retry-After: {seconds}`.
    RetryAfter(u16, u64),
    /// Reads the request and never answers (the connection stays open).
    Hang,
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`: `v1,<base64>`, space-separated when several.
    pub signature: String,
    pub body: Value,
    pub at: Instant,
    /// The secrets held on arrival that verified it.
    pub verified_with: Vec<String>,
}

impl Received {
    /// The event type in the body.
    #[must_use]
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    #[must_use]
    pub fn verifies_with(&self, secret: &str) -> bool {
        self.verified_with.iter().any(|held| held == secret)
    }
}

#[derive(Debug)]
struct State {
    script: VecDeque<Reply>,
    /// Once the script runs out.
    otherwise: Reply,
    secrets: Vec<String>,
    received: Vec<Received>,
}

/// The receiver; `url` is where it listens.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
    connections: Arc<AtomicUsize>,
}

impl Receiver {
    /// A receiver on loopback answering `script`, then `otherwise`.
    pub async fn start(script: Vec<Reply>, otherwise: Reply) -> Self {
        Self::listen("127.0.0.1", "127.0.0.1", script, otherwise).await
    }

    /// A receiver listening on every address of the machine, at
    /// `http://{host}:{port}/hooks/orders`.
    pub async fn start_on(host: &str, script: Vec<Reply>, otherwise: Reply) -> Self {
        Self::listen("0.0.0.0", host, script, otherwise).await
    }

    async fn listen(bind: &str, host: &str, script: Vec<Reply>, otherwise: Reply) -> Self {
        let listener = TcpListener::bind((bind, 0)).await.expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            otherwise,
            secrets: Vec::new(),
            received: Vec::new(),
        }));
        let connections = Arc::new(AtomicUsize::new(0));
        let (serving, counting) = (Arc::clone(&state), Arc::clone(&connections));
        tokio::spawn(partner::serve(
            listener,
            move || {
                counting.fetch_add(1, Ordering::SeqCst);
                true
            },
            move |request| answer(Arc::clone(&serving), request),
        ));
        Self {
            url: format!("http://{host}:{port}/hooks/orders"),
            state,
            connections,
        }
    }

    /// From now on, deliveries are verified with `secret` too (`whsec_…`).
    pub fn hold(&self, secret: &str) {
        self.lock().secrets.push(secret.to_owned());
    }

    /// Every delivery so far, in arrival order.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// TCP connections accepted so far.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("receiver state")
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<partner::Reply, Infallible> {
    let at = Instant::now();
    let headers = request.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let bytes = partner::read_body(request).await.unwrap_or_default();
    let reply = {
        let mut state = state.lock().expect("receiver state");
        let verified_with = state
            .secrets
            .iter()
            .filter(|secret| {
                standardwebhooks::Webhook::new(secret)
                    .is_ok_and(|webhook| webhook.verify(&bytes, &headers).is_ok())
            })
            .cloned()
            .collect();
        state.received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            at,
            verified_with,
        });
        let otherwise = state.otherwise;
        state.script.pop_front().unwrap_or(otherwise)
    };
    let (status, retry_after) = match reply {
        Reply::Status(status) => (status, None),
        Reply::RetryAfter(status, seconds) => (status, Some(seconds)),
        Reply::Hang => std::future::pending().await,
    };
    let mut response = partner::reply(status, "{}");
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    Ok(response)
}
