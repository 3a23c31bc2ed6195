//! A local stand-in for the platform-callback partner (spec 001): accepts every
//! `POST /v1/outboundOrders/PlatformOrder/Callback` and logs what it got, so
//! that `make run` shows the callbacks without a real partner. Tests script
//! their own partner; this one only ever says yes.
//!
//! With [`OAuth`] it also plays CK1's token endpoint (`POST /oauth2/token`,
//! parameters in the query string, PascalCase answer): access tokens expire
//! after a set time, every refresh rotates the refresh token, and a callback
//! without a live token gets CK1's 401 envelope. So `make run` refreshes its
//! tokens exactly as deployed. The server, replies and token endpoint are the
//! `partner` crate's, which the tests', the soak's and the bench's partners share.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::partner::{Credentials, Reply, TokenEndpoint, reply};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio::net::TcpListener;

pub use ::partner::{CALLBACK_PATH, TOKEN_PATH};

/// Bodies above this are refused; callbacks are a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

const ACCEPTED: &str =
    r#"{"Success": true, "Message": "accepted by the local partner", "RawResponse": "{}"}"#;

/// The local client's credentials and first refresh token.
pub const CLIENT_ID: &str = "local-client";
pub const CLIENT_SECRET: &str = "local-client-secret";
pub const FIRST_REFRESH_TOKEN: &str = "local-refresh-0";

/// CK1's OAuth2, played (the `partner` crate's token endpoint).
#[derive(Debug)]
pub struct OAuth(Mutex<TokenEndpoint>);

impl OAuth {
    /// Access tokens live `lifetime`.
    #[must_use]
    pub fn new(lifetime: Duration) -> Arc<Self> {
        let credentials = Credentials {
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            first_refresh_token: FIRST_REFRESH_TOKEN,
        };
        Arc::new(Self(Mutex::new(TokenEndpoint::new(credentials, lifetime))))
    }
}

/// Serves the partner on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    serve_with(listener, None).await;
}

/// Serves the partner, playing OAuth2 when `oauth` is set.
pub async fn serve_with(listener: TcpListener, oauth: Option<Arc<OAuth>>) {
    ::partner::serve(
        listener,
        || true,
        move |request| answer(request, oauth.clone()),
    )
    .await;
}

/// The token endpoint, or `Some(401)` for a callback without a live token.
fn play_oauth(oauth: &OAuth, request: &Request<Incoming>) -> Option<Reply> {
    let Ok(mut endpoint) = oauth.0.lock() else {
        return Some(reply(500, "{}"));
    };
    if request.uri().path() == TOKEN_PATH {
        let before = endpoint.refreshes();
        let answer = endpoint.refresh(request.uri().query().unwrap_or_default());
        if endpoint.refreshes() > before {
            tracing::info!(
                refresh = endpoint.refreshes(),
                "local partner: issued a new access token (the refresh token rotated)"
            );
        } else {
            tracing::warn!(
                status = answer.status().as_u16(),
                "local partner: refused a token request (unknown client, or a spent refresh token)"
            );
        }
        return Some(answer);
    }
    let refused = endpoint.authorize(::partner::bearer(request).as_deref(), CALLBACK_PATH);
    if refused.is_some() {
        tracing::info!("local partner: access token missing or expired, answering 401");
    }
    refused
}

async fn answer(
    request: Request<Incoming>,
    oauth: Option<Arc<OAuth>>,
) -> Result<Reply, Infallible> {
    if let Some(oauth) = &oauth
        && let Some(response) = play_oauth(oauth, &request)
    {
        return Ok(response);
    }
    if request.uri().path() != CALLBACK_PATH {
        return Ok(reply(404, r#"{"message":"Not Found"}"#));
    }
    if request.method() != Method::POST {
        return Ok(reply(405, r#"{"message":"Method Not Allowed"}"#));
    }
    let idempotency_key = request
        .headers()
        .get("idempotency-key")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    // The credential itself must never reach the logs; whether it was sent
    // is all a developer needs.
    let authorized = request.headers().contains_key(hyper::header::AUTHORIZATION);
    let Ok(body) = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    else {
        return Ok(reply(413, r#"{"message":"Payload Too Large"}"#));
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
    Ok(reply(200, ACCEPTED))
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
