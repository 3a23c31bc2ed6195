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

/// `posts` answers failing `pct` % at random (seeded): 503, 500, 502,
/// 429 with `Retry-After: 1`, or an answer after `hang` (past the
/// dispatcher's timeout); the others, and every answer after them, succeed.
#[must_use]
pub fn flaky_script(seed: u64, posts: usize, pct: u64, hang: Duration) -> Vec<Answer> {
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    (0..posts)
        .map(|_| {
            if next(100) >= pct {
                return Answer::ok();
            }
            let failure = json!({"Errors": [{"Code": "flaky", "Message": "flaky"}]});
            match next(5) {
                0 => Answer::status(503, failure),
                1 => Answer::status(500, failure),
                2 => Answer::status(502, failure),
                3 => Answer {
                    retry_after: Some(1),
                    ..Answer::status(429, failure)
                },
                _ => Answer {
                    delay: hang,
                    ..Answer::ok()
                },
            }
        })
        .collect()
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
    /// When set, the partner plays CK1's OAuth2 too.
    oauth: Option<OAuth>,
    /// Down: every callback gets a 503 (not taken from the script).
    down: bool,
}

/// CK1's token endpoint, played: access tokens that expire after `lifetime`,
/// a refresh token that rotates on every refresh (the old one is refused).
#[derive(Debug)]
struct OAuth {
    lifetime: Duration,
    refresh_token: String,
    /// Access tokens issued, with when they expire.
    issued: Vec<(String, std::time::Instant)>,
    refreshes: u32,
    /// Refreshes refused because the refresh token was already spent.
    spent_refresh_tokens: u32,
    /// 401s answered to callbacks.
    rejected: u32,
    down: bool,
}

/// The client credentials the test partner accepts.
pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// The refresh token a person obtained once (README): the test's starting point.
pub const FIRST_REFRESH_TOKEN: &str = "refresh-0";

/// The partner; answers `Answer::ok()` once its script runs out.
#[derive(Debug, Clone)]
pub struct Partner {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Partner {
    pub async fn start(script: Vec<Answer>) -> Self {
        Self::start_with(State {
            script: script.into(),
            ..State::default()
        })
        .await
    }

    /// A partner that also plays CK1's OAuth2 token endpoint
    /// ([`Self::token_url`]): its access tokens expire after `lifetime`, it
    /// answers 401 to any other bearer, and rotates the refresh token.
    pub async fn start_oauth(script: Vec<Answer>, lifetime: Duration) -> Self {
        Self::start_with(State {
            script: script.into(),
            oauth: Some(OAuth {
                lifetime,
                refresh_token: FIRST_REFRESH_TOKEN.into(),
                issued: Vec::new(),
                refreshes: 0,
                spent_refresh_tokens: 0,
                rejected: 0,
                down: false,
            }),
            ..State::default()
        })
        .await
    }

    async fn start_with(state: State) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!(
            "http://{}/v1/outboundOrders/PlatformOrder/Callback",
            listener.local_addr().expect("bound")
        );
        let state = Arc::new(Mutex::new(state));
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

    /// The token endpoint (OAuth2 partners).
    #[must_use]
    pub fn token_url(&self) -> String {
        self.url
            .replace("/v1/outboundOrders/PlatformOrder/Callback", "/oauth2/token")
    }

    /// Successful refreshes so far.
    #[must_use]
    pub fn refreshes(&self) -> u32 {
        self.oauth(|o| o.refreshes)
    }

    /// Refreshes refused because their refresh token was already spent.
    #[must_use]
    pub fn spent_refresh_tokens(&self) -> u32 {
        self.oauth(|o| o.spent_refresh_tokens)
    }

    /// Callbacks answered 401.
    #[must_use]
    pub fn rejected(&self) -> u32 {
        self.oauth(|o| o.rejected)
    }

    /// Takes the token endpoint down (503) or brings it back.
    pub fn set_token_endpoint_down(&self, down: bool) {
        self.oauth(|o| o.down = down);
    }

    /// Expires every access token issued so far.
    pub fn expire_tokens(&self) {
        self.oauth(|o| o.issued.clear());
    }

    fn oauth<R>(&self, f: impl FnOnce(&mut OAuth) -> R) -> R {
        let mut state = self.state.lock().expect("partner state");
        f(state.oauth.as_mut().expect("an OAuth2 partner"))
    }

    /// Takes the partner down (503 to every callback) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.state.lock().expect("partner state").down = down;
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
    if let Some(reply) = oauth(&state, &request, authorization.as_deref()) {
        return Ok(reply);
    }
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
        if state.down {
            Answer::status(503, json!({"Errors": [{"Code": "503", "Message": "down"}]}))
        } else {
            state.script.pop_front().unwrap_or_else(Answer::ok)
        }
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

fn json_reply(status: u16, body: &Value) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a status");
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("header"));
    response
}

/// CK1's OAuth2: the token endpoint, and a 401 for a callback whose bearer is
/// not a live access token. `None` to answer the callback from the script.
fn oauth(
    state: &Mutex<State>,
    request: &hyper::Request<hyper::body::Incoming>,
    authorization: Option<&str>,
) -> Option<hyper::Response<Full<Bytes>>> {
    let mut state = state.lock().expect("partner state");
    let oauth = state.oauth.as_mut()?;
    let now = std::time::Instant::now();
    if request.uri().path() == "/oauth2/token" {
        if oauth.down {
            return Some(json_reply(
                503,
                &json!({"Code": "503", "Message": "unavailable"}),
            ));
        }
        let query: std::collections::HashMap<String, String> = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let get = |k: &str| query.get(k).map(String::as_str);
        if get("client_id") != Some(CLIENT_ID)
            || get("client_secret") != Some(CLIENT_SECRET)
            || get("grant_type") != Some("refresh_token")
        {
            return Some(json_reply(
                400,
                &json!({"Code": "invalid_client", "Message": "bad client"}),
            ));
        }
        if get("refresh_token") != Some(oauth.refresh_token.as_str()) {
            oauth.spent_refresh_tokens += 1;
            return Some(json_reply(
                400,
                &json!({"Code": "invalid_grant", "Message": "the refresh token is invalid"}),
            ));
        }
        oauth.refreshes += 1;
        let access = format!("access-{}", oauth.refreshes);
        oauth.refresh_token = format!("refresh-{}", oauth.refreshes);
        oauth.issued.push((access.clone(), now + oauth.lifetime));
        return Some(json_reply(
            200,
            &json!({
                "AccessToken": access,
                "RefreshToken": oauth.refresh_token,
                "AccessTokenExpiresIn": oauth.lifetime.as_secs(),
                "RefreshTokenExpiresIn": 2_592_000,
            }),
        ));
    }
    let live = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|token| {
            oauth
                .issued
                .iter()
                .any(|(issued, until)| issued == token && *until > now)
        });
    if live {
        return None;
    }
    oauth.rejected += 1;
    Some(json_reply(
        401,
        &json!({
            "Errors": [{"Code": "800F1401", "Message": "access token invalid or expired"}],
            "TicketId": "5b1f8a52-0000-4000-8000-000000000401",
            "UtcDateTime": "2026-11-30T00:00:00Z",
            "RequestUri": request.uri().path(),
        }),
    ))
}
