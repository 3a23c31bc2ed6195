//! A local stand-in for the platform-callback partner (spec 001): accepts every
//! `POST /v1/outboundOrders/PlatformOrder/Callback` and logs what it got, so
//! that `make run` shows the callbacks without a real partner. Tests script
//! their own partner; this one only ever says yes.
//!
//! With [`OAuth`] it also plays CK1's token endpoint (`POST /oauth2/token`,
//! parameters in the query string, PascalCase answer): access tokens expire
//! after a set time, every refresh rotates the refresh token, and a callback
//! without a live token gets CK1's 401 envelope. So `make run` refreshes its
//! tokens exactly as deployed.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The local client's credentials and first refresh token.
pub const CLIENT_ID: &str = "local-client";
pub const CLIENT_SECRET: &str = "local-client-secret";
pub const FIRST_REFRESH_TOKEN: &str = "local-refresh-0";

/// CK1's OAuth2, played.
#[derive(Debug)]
pub struct OAuth {
    lifetime: Duration,
    state: Mutex<OAuthState>,
}

struct OAuthState {
    refresh_token: String,
    issued: Vec<(String, Instant)>,
    refreshes: u32,
}

/// Counts only: the tokens it holds are secrets even here (they would be
/// real ones if this partner ever fronted a real one's credentials).
impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("issued", &self.issued.len())
            .field("refreshes", &self.refreshes)
            .finish_non_exhaustive()
    }
}

impl OAuth {
    /// Access tokens live `lifetime`.
    #[must_use]
    pub fn new(lifetime: Duration) -> Arc<Self> {
        Arc::new(Self {
            lifetime,
            state: Mutex::new(OAuthState {
                refresh_token: FIRST_REFRESH_TOKEN.into(),
                issued: Vec::new(),
                refreshes: 0,
            }),
        })
    }
}

/// Serves the partner on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    serve_with(listener, None).await;
}

/// Serves the partner, playing OAuth2 when `oauth` is set.
pub async fn serve_with(listener: TcpListener, oauth: Option<Arc<OAuth>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let oauth = oauth.clone();
        tokio::spawn(async move {
            // A client that hangs up mid-request is not our concern.
            let _ = http1::Builder::new()
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |request| answer(request, oauth.clone())),
                )
                .await;
        });
    }
}

/// The token endpoint, or `Some(401)` for a callback without a live token.
fn play_oauth(oauth: &OAuth, request: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let Ok(mut state) = oauth.state.lock() else {
        return Some(reply_owned(StatusCode::INTERNAL_SERVER_ERROR, "{}".into()));
    };
    let now = Instant::now();
    if request.uri().path() == TOKEN_PATH {
        let query = request.uri().query().unwrap_or_default();
        let get = |key: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        if get("client_id") != Some(CLIENT_ID) || get("client_secret") != Some(CLIENT_SECRET) {
            tracing::warn!("local partner: token request with unknown client credentials");
            return Some(reply_owned(
                StatusCode::BAD_REQUEST,
                r#"{"Code":"invalid_client","Message":"unknown client"}"#.into(),
            ));
        }
        if get("grant_type") != Some("refresh_token")
            || get("refresh_token") != Some(state.refresh_token.as_str())
        {
            tracing::warn!("local partner: refresh with a spent or unknown refresh token");
            return Some(reply_owned(
                StatusCode::BAD_REQUEST,
                r#"{"Code":"invalid_grant","Message":"the refresh token is invalid"}"#.into(),
            ));
        }
        state.refreshes += 1;
        let access = format!("local-access-{}", state.refreshes);
        state.refresh_token = format!("local-refresh-{}", state.refreshes);
        state.issued.retain(|(_, until)| *until > now);
        state.issued.push((access.clone(), now + oauth.lifetime));
        tracing::info!(
            refresh = state.refreshes,
            expires_in_s = oauth.lifetime.as_secs(),
            "local partner: issued a new access token (the refresh token rotated)"
        );
        let body = serde_json::json!({
            "AccessToken": access,
            "RefreshToken": state.refresh_token,
            "AccessTokenExpiresIn": oauth.lifetime.as_secs(),
            "RefreshTokenExpiresIn": 2_592_000,
        });
        return Some(reply_owned(StatusCode::OK, body.to_string()));
    }
    let live = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| {
            state
                .issued
                .iter()
                .any(|(issued, until)| issued == token && *until > now)
        });
    if live {
        return None;
    }
    tracing::info!("local partner: access token missing or expired, answering 401");
    Some(reply_owned(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({
            "Errors": [{"Code": "800F1401", "Message": "access token invalid or expired"}],
            "TicketId": "00000000-0000-4000-8000-000000000401",
            "RequestUri": CALLBACK_PATH,
        })
        .to_string(),
    ))
}

async fn answer(
    request: Request<Incoming>,
    oauth: Option<Arc<OAuth>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(oauth) = &oauth
        && let Some(response) = play_oauth(oauth, &request)
    {
        return Ok(response);
    }
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
    reply_owned(status, body.to_owned())
}

fn reply_owned(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
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
