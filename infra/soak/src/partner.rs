//! The fault-injecting partner: CK1's callback endpoint and OAuth2 token
//! endpoint, answering by a seeded fault plan and logging every post it
//! receives, so the reconciliation can compare the partner's view with the
//! orders'. It runs inside the soak, so it outlives the service's SIGKILLs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::rng::Rng;
use crate::scenario;

pub const CALLBACK_PATH: &str = "/v1/outboundOrders/PlatformOrder/Callback";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const CLIENT_ID: &str = "soak-client";
pub const CLIENT_SECRET: &str = "soak-client-secret";
pub const FIRST_REFRESH_TOKEN: &str = "soak-refresh-0";

/// How often each fault happens, in percent of the posts that reach it.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// A correct answer takes this long (uniform, milliseconds).
    pub latency_ms: (u64, u64),
    /// 500, 502 or 503 without processing the post.
    pub server_error_pct: u64,
    /// 429 with `Retry-After: 1` or `2`.
    pub throttle_pct: u64,
    /// The connection is closed without an answer, before processing.
    pub reset_pct: u64,
    /// The post is processed, the answer sent only after `slow_by` (past the
    /// dispatcher's timeout).
    pub slow_pct: u64,
    pub slow_by: Duration,
    /// Access tokens live this long (`AccessTokenExpiresIn`)…
    pub token_lifetime: Duration,
    /// … and all of them are revoked this often, so posts meet 401s.
    pub revoke_every: Duration,
}

/// A flaky stretch: on top of the plan, `pct` % of posts fail at random,
/// each way a partner fails (5xx, 429, a reset, a hang past the timeout).
#[derive(Debug, Clone, Copy)]
pub struct Flaky {
    pub pct: u64,
    /// Only an order's first post may fail: every retry succeeds.
    pub first_posts_only: bool,
    /// How long a hang lasts before the (processed) answer.
    pub hang: Duration,
}

/// What the partner did with one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Processed; `Success: true` in time.
    Accepted,
    /// Processed; the answer came after the client's timeout.
    AcceptedLate,
    /// `Success: false` (the order is one the partner refuses).
    Refused,
    ServerError,
    Throttled,
    Reset,
    /// No live access token: CK1's 401 envelope.
    Unauthorized,
}

impl Answer {
    /// The partner holds the shipment after this post.
    pub fn processed(self) -> bool {
        matches!(self, Self::Accepted | Self::AcceptedLate)
    }
}

/// One post received.
#[derive(Debug, Clone)]
pub struct Post {
    pub order_number: String,
    pub tracking_number: String,
    pub received_at: DateTime<Utc>,
    pub answer: Answer,
}

#[derive(Debug)]
struct State {
    log: Vec<Post>,
    rng: Rng,
    /// The current refresh token and the one before it: a dispatcher killed
    /// between our rotation and its write to the secret still holds the old
    /// one (real CK1 does not say whether it rotates; see docs/reliability.md).
    refresh_tokens: [String; 2],
    access: Vec<(String, Instant)>,
    refreshes: u64,
    /// Refreshes that presented the previous refresh token.
    stale_refreshes: u64,
    last_revocation: Instant,
    flaky: Option<Flaky>,
    /// Orders posted at least once (for `Flaky::first_posts_only`).
    posted: HashSet<String>,
}

/// The partner's shared state.
#[derive(Debug)]
pub struct Partner {
    plan: FaultPlan,
    state: Mutex<State>,
    down: AtomicBool,
    /// Connections and requests refused while down.
    dropped_while_down: AtomicU64,
}

impl Partner {
    pub fn new(plan: FaultPlan, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            plan,
            state: Mutex::new(State {
                log: Vec::new(),
                rng: Rng::new(seed ^ 0x005e_ed0f_fa17),
                refresh_tokens: [FIRST_REFRESH_TOKEN.into(), FIRST_REFRESH_TOKEN.into()],
                access: Vec::new(),
                refreshes: 0,
                stale_refreshes: 0,
                last_revocation: Instant::now(),
                flaky: None,
                posted: HashSet::new(),
            }),
            down: AtomicBool::new(false),
            dropped_while_down: AtomicU64::new(0),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock ends the soak anyway.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Down completely: every connection is closed as soon as it is accepted.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Starts (`Some`) or ends a flaky stretch.
    pub fn set_flaky(&self, flaky: Option<Flaky>) {
        self.state().flaky = flaky;
    }

    pub fn log(&self) -> Vec<Post> {
        self.state().log.clone()
    }

    pub fn refreshes(&self) -> u64 {
        self.state().refreshes
    }

    /// Refreshes with the refresh token before the current one: a dispatcher
    /// that did not store what the last refresh returned.
    pub fn stale_refreshes(&self) -> u64 {
        self.state().stale_refreshes
    }

    pub fn dropped_while_down(&self) -> u64 {
        self.dropped_while_down.load(Ordering::SeqCst)
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if self.down.load(Ordering::SeqCst) {
                self.dropped_while_down.fetch_add(1, Ordering::SeqCst);
                drop(stream);
                continue;
            }
            let partner = Arc::clone(&self);
            tokio::spawn(async move {
                // A reset fault ends the connection with an error: expected.
                let _ = http1::Builder::new()
                    .serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |request| Arc::clone(&partner).answer(request)),
                    )
                    .await;
            });
        }
    }

    async fn answer(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        // Down: kept-alive connections fail too, not only new ones.
        if self.down.load(Ordering::SeqCst) {
            self.dropped_while_down.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "soak partner is down",
            ));
        }
        if request.uri().path() == TOKEN_PATH {
            return Ok(self.token(request.uri().query().unwrap_or_default()));
        }
        if request.uri().path() != CALLBACK_PATH {
            return Ok(reply(StatusCode::NOT_FOUND, "{}".into()));
        }
        let bearer = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        let body = request
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
        let order_number = field("ParcelId");
        let (answer, latency, late_by) = {
            let mut state = self.state();
            let now = Instant::now();
            if now.duration_since(state.last_revocation) >= self.plan.revoke_every {
                state.access.clear();
                state.last_revocation = now;
            }
            let live = bearer.as_deref().is_some_and(|token| {
                state
                    .access
                    .iter()
                    .any(|(issued, until)| issued == token && *until > now)
            });
            let roll = state.rng.below(100);
            let plan = &self.plan;
            let first_post = state.posted.insert(order_number.clone());
            let flaky_roll = state.rng.below(100);
            let flaky_kind = state.rng.below(4);
            let flaky = state
                .flaky
                .filter(|f| flaky_roll < f.pct && (first_post || !f.first_posts_only));
            let answer = if !live {
                Answer::Unauthorized
            } else if scenario::refused(&order_number) {
                Answer::Refused
            } else if flaky.is_some() {
                [
                    Answer::ServerError,
                    Answer::Throttled,
                    Answer::Reset,
                    Answer::AcceptedLate,
                ][usize::try_from(flaky_kind).unwrap_or(0)]
            } else if roll < plan.server_error_pct {
                Answer::ServerError
            } else if roll < plan.server_error_pct + plan.throttle_pct {
                Answer::Throttled
            } else if roll < plan.server_error_pct + plan.throttle_pct + plan.reset_pct {
                Answer::Reset
            } else if roll
                < plan.server_error_pct + plan.throttle_pct + plan.reset_pct + plan.slow_pct
            {
                Answer::AcceptedLate
            } else {
                Answer::Accepted
            };
            let (low, high) = plan.latency_ms;
            let latency = Duration::from_millis(low + state.rng.below(high - low + 1));
            state.log.push(Post {
                order_number,
                tracking_number: field("TrackingNumber"),
                received_at: Utc::now(),
                answer,
            });
            let late_by = flaky.map_or(plan.slow_by, |f| f.hang);
            (answer, latency, late_by)
        };
        tokio::time::sleep(latency).await;
        let envelope = |code: &str, message: &str| {
            serde_json::json!({
                "Errors": [{"Code": code, "Message": message}],
                "TicketId": "00000000-0000-4000-8000-00000000500a",
            })
            .to_string()
        };
        Ok(match answer {
            Answer::Accepted => reply(StatusCode::OK, accepted()),
            Answer::AcceptedLate => {
                tokio::time::sleep(late_by).await;
                reply(StatusCode::OK, accepted())
            }
            Answer::Refused => reply(
                StatusCode::OK,
                r#"{"Success": false, "Message": "soak partner refuses this parcel"}"#.into(),
            ),
            Answer::ServerError => {
                let status = [
                    StatusCode::INTERNAL_SERVER_ERROR,
                    StatusCode::BAD_GATEWAY,
                    StatusCode::SERVICE_UNAVAILABLE,
                ][usize::try_from(self.state().rng.below(3)).unwrap_or(0)];
                reply(status, envelope("500", "soak partner failed"))
            }
            Answer::Throttled => {
                let mut response =
                    reply(StatusCode::TOO_MANY_REQUESTS, envelope("429", "slow down"));
                let seconds = 1 + self.state().rng.below(2);
                response.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from(seconds),
                );
                response
            }
            Answer::Reset => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "soak partner resets the connection",
                ));
            }
            Answer::Unauthorized => reply(
                StatusCode::UNAUTHORIZED,
                envelope("800F1401", "access token invalid or expired"),
            ),
        })
    }

    /// CK1's token endpoint: a refresh rotates the refresh token.
    fn token(&self, query: &str) -> Response<Full<Bytes>> {
        let get = |key: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        let mut state = self.state();
        let known = get("refresh_token")
            .is_some_and(|token| state.refresh_tokens.iter().any(|known| known == token));
        if get("client_id") != Some(CLIENT_ID)
            || get("client_secret") != Some(CLIENT_SECRET)
            || get("grant_type") != Some("refresh_token")
            || !known
        {
            return reply(
                StatusCode::BAD_REQUEST,
                r#"{"Code":"invalid_grant","Message":"the refresh token is invalid"}"#.into(),
            );
        }
        state.refreshes += 1;
        if get("refresh_token") != Some(state.refresh_tokens[0].as_str()) {
            state.stale_refreshes += 1;
        }
        let access = format!("soak-access-{}", state.refreshes);
        let refresh = format!("soak-refresh-{}", state.refreshes);
        state.refresh_tokens = [refresh.clone(), state.refresh_tokens[0].clone()];
        let now = Instant::now();
        state.access.retain(|(_, until)| *until > now);
        state
            .access
            .push((access.clone(), now + self.plan.token_lifetime));
        reply(
            StatusCode::OK,
            serde_json::json!({
                "AccessToken": access,
                "RefreshToken": refresh,
                "AccessTokenExpiresIn": self.plan.token_lifetime.as_secs(),
                "RefreshTokenExpiresIn": 2_592_000,
            })
            .to_string(),
        )
    }
}

fn accepted() -> String {
    r#"{"Success": true, "Message": "accepted by the soak partner", "RawResponse": "{}"}"#.into()
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
