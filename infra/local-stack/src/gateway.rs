//! A local stand-in for API Gateway (HTTP API, payload v2): turns each HTTP
//! request into the same event API Gateway would send, lets `lambda_http` decode
//! it exactly as in Lambda, and calls the function's handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tokio::net::TcpListener;

/// API Gateway's own payload cap for HTTP APIs.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// A function as the gateway sees it: a request in, a response out.
pub type Function =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// Serves `function` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, function: Function) {
    let request_ids = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let function = Arc::clone(&function);
        let request_ids = Arc::clone(&request_ids);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let id = request_ids.fetch_add(1, Ordering::Relaxed);
                forward(Arc::clone(&function), request, peer, id)
            });
            // A client that hangs up mid-request is not our concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    function: Function,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    id: u64,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_PAYLOAD_BYTES).collect().await else {
        return Ok(plain(413, r#"{"message":"Request Entity Too Large"}"#));
    };
    let event = api_gateway_event(&parts, &body.to_bytes(), peer, id);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(err) => {
            tracing::error!(%err, "the local gateway built an event lambda_http cannot read");
            return Ok(plain(500, r#"{"message":"Internal Server Error"}"#));
        }
    };
    let response = function(request).await;
    let (parts, body) = response.into_parts();
    let mut reply = hyper::Response::new(Full::new(Bytes::copy_from_slice(body.as_ref())));
    *reply.status_mut() = parts.status;
    *reply.headers_mut() = parts.headers;
    Ok(reply)
}

/// The API Gateway v2 event for a request, as documented by AWS.
fn api_gateway_event(
    parts: &http::request::Parts,
    body: &[u8],
    peer: SocketAddr,
    id: u64,
) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
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
    let header = |name: &str| headers.get(name).and_then(|v| v.as_str()).unwrap_or("");
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
        "headers": headers.clone(),
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": header("host"),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": header("user-agent"),
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
