//! A local stand-in for API Gateway (HTTP API, payload v2): turns each HTTP
//! request into the same event API Gateway would send, lets `lambda_http` decode
//! it exactly as in Lambda, and calls the function's handler.
//!
//! As API Gateway does, it owns the headers that say where the request went
//! (`Host` is its own domain; `X-Forwarded-Proto` and `-Port` are its own,
//! `X-Forwarded-For` gets the peer appended): `lambda_http` builds the request
//! URI from them, so a client's value could re-route the request or, being no
//! valid authority, panic the decoder. And it cuts off clients that are slow to
//! send their headers or body, or send nothing ([`CLIENT_TIMEOUT`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tokio::net::TcpListener;

/// API Gateway's own payload cap for HTTP APIs.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// A function as the gateway sees it: a request in, a response out.
pub type Function =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// How long API Gateway waits for a client's headers or body (its idle
/// connection timeout): a client that sends nothing, or trickles, is cut off.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `function` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, function: Function) {
    serve_with(listener, function, CLIENT_TIMEOUT).await;
}

/// [`serve`] with another client timeout (tests use a short one).
pub async fn serve_with(listener: TcpListener, function: Function, client_timeout: Duration) {
    let domain = listener
        .local_addr()
        .map_or_else(|_| "localhost".to_owned(), |address| address.to_string());
    let gateway = Arc::new(Gateway {
        function,
        domain,
        client_timeout,
        request_ids: AtomicU64::new(0),
    });
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let timeout = gateway.client_timeout;
            let service = service_fn(move |request| Arc::clone(&gateway).forward(request, peer));
            // A client that hangs up mid-request is not our concern. The
            // header timer also runs while a connection is idle, before its
            // first request and between requests.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One gateway: the function behind it and how it reaches it.
struct Gateway {
    function: Function,
    /// The gateway's own domain (its listening address): the `Host` of every event.
    domain: String,
    client_timeout: Duration,
    request_ids: AtomicU64,
}

impl Gateway {
    async fn forward(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        let (parts, body) = request.into_parts();
        let collected = tokio::time::timeout(
            self.client_timeout,
            Limited::new(body, MAX_PAYLOAD_BYTES).collect(),
        )
        .await;
        let body = match collected {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => return Ok(plain(413, r#"{"message":"Request Entity Too Large"}"#)),
            Err(_) => {
                let mut reply = plain(408, r#"{"message":"Request Timeout"}"#);
                reply.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return Ok(reply);
            }
        };
        let id = self.request_ids.fetch_add(1, Ordering::Relaxed);
        let request = match lambda_request(&parts, &body, &self.domain, peer, id) {
            Ok(request) => request,
            Err(err) => {
                tracing::error!(%err, "the local gateway built an event lambda_http cannot read");
                return Ok(plain(500, r#"{"message":"Internal Server Error"}"#));
            }
        };
        let response = (self.function)(request).await;
        let (parts, body) = response.into_parts();
        let mut reply = hyper::Response::new(Full::new(Bytes::copy_from_slice(body.as_ref())));
        *reply.status_mut() = parts.status;
        *reply.headers_mut() = parts.headers;
        Ok(reply)
    }
}

/// The request a function receives in Lambda for this HTTP request: the
/// API Gateway v2 event, decoded by `lambda_http` as the runtime decodes it.
/// `domain` is the gateway's own (`127.0.0.1:3000`).
pub fn lambda_request(
    parts: &http::request::Parts,
    body: &[u8],
    domain: &str,
    peer: SocketAddr,
    id: u64,
) -> Result<Request, serde_json::Error> {
    let event = api_gateway_event(parts, body, domain, peer, id);
    lambda_http::request::from_str(&event.to_string())
}

/// Headers API Gateway sets itself, whatever the client sent.
const GATEWAY_HEADERS: [&str; 3] = ["host", "x-forwarded-proto", "x-forwarded-port"];

/// The API Gateway v2 event for a request, as documented by AWS.
fn api_gateway_event(
    parts: &http::request::Parts,
    body: &[u8],
    domain: &str,
    peer: SocketAddr,
    id: u64,
) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        if GATEWAY_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                // API Gateway joins repeated headers with commas.
                let previous = joined.as_str().unwrap_or_default().to_owned();
                *joined = json!(format!("{previous},{value}"));
            })
            .or_insert(json!(value));
    }
    let source_ip = peer.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.as_str()) {
        Some(chain) => format!("{chain}, {source_ip}"),
        None => source_ip.clone(),
    };
    let port = domain.rsplit_once(':').map_or("80", |(_, port)| port);
    headers.insert("host".into(), json!(domain));
    headers.insert("x-forwarded-proto".into(), json!("http"));
    headers.insert("x-forwarded-port".into(), json!(port));
    headers.insert("x-forwarded-for".into(), json!(forwarded_for));
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (json!(text), false),
        Err(_) => (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let now = now_millis();
    let path = parts.uri.path();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": format!("local-{now}-{id}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "",
            "timeEpoch": now,
        },
        "body": body,
        "isBase64Encoded": encoded,
    })
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn plain(status: u16, body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    response
}
