//! A local stand-in for the platform-callback partner (spec 001): accepts every
//! `POST /v1/outboundOrders/PlatformOrder/Callback` and logs what it got, so
//! that `make run` shows the callbacks without a real partner. Tests script
//! their own partner; this one only ever says yes.

use std::convert::Infallible;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The partner's callback endpoint.
pub const CALLBACK_PATH: &str = "/v1/outboundOrders/PlatformOrder/Callback";

/// Bodies above this are refused; callbacks are a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

const ACCEPTED: &str =
    r#"{"Success": true, "Message": "accepted by the local partner", "RawResponse": "{}"}"#;

/// Serves the partner on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // A client that hangs up mid-request is not our concern.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != CALLBACK_PATH {
        return Ok(reply(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#));
    }
    if request.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"message":"Method Not Allowed"}"#,
        ));
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let idempotency_key = header("idempotency-key");
    // The credential itself must never reach the logs; whether it was sent
    // is all a developer needs.
    let authorized = request.headers().contains_key(hyper::header::AUTHORIZATION);
    let Ok(body) = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    else {
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"message":"Payload Too Large"}"#,
        ));
    };
    let body = body.to_bytes();
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        // Not JSON: escaped, so a line break in it cannot forge a log line.
        .unwrap_or_else(|| format!("{:?}", String::from_utf8_lossy(&body)));
    tracing::info!(
        idempotency_key = idempotency_key.as_deref().unwrap_or("<none>"),
        authorization_present = authorized,
        "local partner received a platform callback:\n{pretty}"
    );
    Ok(reply(StatusCode::OK, ACCEPTED))
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Sends one raw HTTP/1.1 request and returns the status code and body.
    async fn send(method: &str, path: &str, body: &str) -> (u16, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(serve(listener));
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Idempotency-Key: key-1\r\nAuthorization: Bearer secret\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        server.abort();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let (_, body) = response.split_once("\r\n\r\n").expect("a body");
        (status, body.to_owned())
    }

    #[tokio::test]
    async fn accepts_a_callback() {
        let (status, body) = send("POST", CALLBACK_PATH, r#"{"OrderId":"o-1"}"#).await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["Success"], true);
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        let (status, _) = send("POST", "/v1/elsewhere", "{}").await;
        assert_eq!(status, 404);
    }
}
