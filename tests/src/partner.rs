//! A real HTTP server playing the platform-callback partner (spec 001): it
//! answers from a script and records every request it received.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub delay: Duration,
    pub retry_after: Option<u64>,
}

impl Answer {
    #[must_use]
    pub fn ok() -> Self {
        Self::status(
            200,
            json!({"Success": true, "Message": "ok", "RawResponse": "{\"code\":0}"}),
        )
    }

    #[must_use]
    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }
}

/// What the partner received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub at: std::time::Instant,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

/// The partner; answers `Answer::ok()` once its script runs out.
#[derive(Debug, Clone)]
pub struct Partner {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Partner {
    pub async fn start(script: Vec<Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!(
            "http://{}/v1/outboundOrders/PlatformOrder/Callback",
            listener.local_addr().expect("bound")
        );
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            received: Vec::new(),
        }));
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(Arc::clone(&state), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state }
    }

    /// Every request received so far.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("partner state").received.clone()
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let idempotency_key = header("idempotency-key");
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let scripted = {
        let mut state = state.lock().expect("partner state");
        state.received.push(Received {
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            authorization,
            idempotency_key,
            at: std::time::Instant::now(),
        });
        state.script.pop_front().unwrap_or_else(Answer::ok)
    };
    tokio::time::sleep(scripted.delay).await;
    let mut response = hyper::Response::new(Full::new(Bytes::from(scripted.body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(scripted.status).expect("a status");
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("header"));
    if let Some(seconds) = scripted.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().expect("header"));
    }
    Ok(response)
}
