//! A real HTTP server playing the platform-callback partner (spec 001): it
//! answers from a script and records every request it received. The server,
//! the replies and CK1's OAuth2 are the `partner` crate's, shared with the
//! soak's and the bench's partners.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partner::{Credentials, Reply, TokenEndpoint};
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

    /// `times` answers of HTTP 503: a partner down for that many posts.
    #[must_use]
    pub fn down(times: usize) -> Vec<Self> {
        (0..times)
            .map(|_| Self::status(503, json!({"Message": "down"})))
            .collect()
    }

    /// A success given only after `delay`.
    #[must_use]
    pub fn ok_after(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::ok()
        }
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
                _ => Answer::ok_after(hang),
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
    oauth: Option<TokenEndpoint>,
    /// The token endpoint answers 503.
    token_endpoint_down: bool,
    /// Down: every callback gets a 503 (not taken from the script).
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
        let credentials = Credentials {
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            first_refresh_token: FIRST_REFRESH_TOKEN,
        };
        Self::start_with(State {
            script: script.into(),
            oauth: Some(TokenEndpoint::new(credentials, lifetime)),
            ..State::default()
        })
        .await
    }

    async fn start_with(state: State) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!(
            "http://{}{}",
            listener.local_addr().expect("bound"),
            partner::CALLBACK_PATH
        );
        let state = Arc::new(Mutex::new(state));
        let serving = Arc::clone(&state);
        tokio::spawn(partner::serve(
            listener,
            || true,
            move |request| answer(Arc::clone(&serving), request),
        ));
        Self { url, state }
    }

    /// The token endpoint (OAuth2 partners).
    #[must_use]
    pub fn token_url(&self) -> String {
        self.url
            .replace(partner::CALLBACK_PATH, partner::TOKEN_PATH)
    }

    /// Successful refreshes so far.
    #[must_use]
    pub fn refreshes(&self) -> u64 {
        self.oauth(|o| o.refreshes())
    }

    /// Refreshes refused because their refresh token was already spent.
    #[must_use]
    pub fn spent_refresh_tokens(&self) -> u64 {
        self.oauth(|o| o.spent_refresh_tokens())
    }

    /// Callbacks answered 401.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.oauth(|o| o.rejected())
    }

    /// Takes the token endpoint down (503) or brings it back.
    pub fn set_token_endpoint_down(&self, down: bool) {
        self.state
            .lock()
            .expect("partner state")
            .token_endpoint_down = down;
    }

    /// Expires every access token issued so far.
    pub fn expire_tokens(&self) {
        self.oauth(TokenEndpoint::revoke);
    }

    fn oauth<R>(&self, f: impl FnOnce(&mut TokenEndpoint) -> R) -> R {
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
) -> Result<Reply, Infallible> {
    let authorization = partner::header(&request, "authorization");
    let idempotency_key = partner::header(&request, "idempotency-key");
    if let Some(reply) = oauth(&state, &request) {
        return Ok(reply);
    }
    let bytes = partner::read_body(request).await.unwrap_or_default();
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
    let mut response = partner::reply(scripted.status, scripted.body.to_string());
    if let Some(seconds) = scripted.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().expect("header"));
    }
    Ok(response)
}

/// CK1's OAuth2: the token endpoint, and a 401 for a callback whose bearer is
/// not a live access token. `None` to answer the callback from the script.
fn oauth(state: &Mutex<State>, request: &hyper::Request<hyper::body::Incoming>) -> Option<Reply> {
    let mut state = state.lock().expect("partner state");
    let down = state.token_endpoint_down;
    let oauth = state.oauth.as_mut()?;
    if request.uri().path() == partner::TOKEN_PATH {
        if down {
            return Some(partner::reply(
                503,
                json!({"Code": "503", "Message": "unavailable"}).to_string(),
            ));
        }
        return Some(oauth.refresh(request.uri().query().unwrap_or_default()));
    }
    oauth.authorize(partner::bearer(request).as_deref(), request.uri().path())
}
