//! The fault-injecting partner: CK1's callback endpoint and OAuth2 token
//! endpoint, answering by a seeded fault plan and logging every post it
//! receives, so the reconciliation can compare the partner's view with the
//! orders'. It runs inside the soak, so it outlives the service's SIGKILLs.
//! The server, the replies and CK1's OAuth2 are the `partner` crate's (the
//! tests' partner is built on it too); the faults are the soak's own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hyper::Request;
use hyper::body::Incoming;
use partner::{Credentials, Reply, TokenEndpoint, reply};
use tokio::net::TcpListener;

use crate::rng::Rng;
use crate::scenario;

pub use partner::{CALLBACK_PATH, TOKEN_PATH};
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
    /// Accepts the refresh token before the current one too: a dispatcher
    /// killed between our rotation and its write to the secret still holds it.
    oauth: TokenEndpoint,
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
            plan: plan.clone(),
            state: Mutex::new(State {
                log: Vec::new(),
                rng: Rng::new(seed ^ 0x005e_ed0f_fa17),
                oauth: TokenEndpoint::new(
                    Credentials {
                        client_id: CLIENT_ID,
                        client_secret: CLIENT_SECRET,
                        first_refresh_token: FIRST_REFRESH_TOKEN,
                    },
                    plan.token_lifetime,
                )
                .accepting_previous(),
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
        self.state().oauth.refreshes()
    }

    /// Refreshes with the refresh token before the current one: a dispatcher
    /// that did not store what the last refresh returned.
    pub fn stale_refreshes(&self) -> u64 {
        self.state().oauth.stale_refreshes()
    }

    pub fn dropped_while_down(&self) -> u64 {
        self.dropped_while_down.load(Ordering::SeqCst)
    }

    /// Serves on `listener` until the task is dropped.
    /// Serves on `listener` until the task is dropped; while down, every
    /// connection is closed as soon as it is accepted.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let admitting = Arc::clone(&self);
        let admit = move || {
            let down = admitting.down.load(Ordering::SeqCst);
            if down {
                admitting.dropped_while_down.fetch_add(1, Ordering::SeqCst);
            }
            !down
        };
        partner::serve(listener, admit, move |request| {
            Arc::clone(&self).answer(request)
        })
        .await;
    }

    async fn answer(self: Arc<Self>, request: Request<Incoming>) -> Result<Reply, std::io::Error> {
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
            return Ok(reply(404, "{}"));
        }
        let bearer = partner::bearer(&request);
        let body = partner::read_body(request)
            .await
            .map_err(std::io::Error::other)?;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
        let order_number = field("ParcelId");
        let (answer, latency, late_by) = {
            let mut state = self.state();
            let now = Instant::now();
            if now.duration_since(state.last_revocation) >= self.plan.revoke_every {
                state.oauth.revoke();
                state.last_revocation = now;
            }
            let live = state
                .oauth
                .authorize(bearer.as_deref(), CALLBACK_PATH)
                .is_none();
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
            Answer::Accepted => reply(200, ACCEPTED),
            Answer::AcceptedLate => {
                tokio::time::sleep(late_by).await;
                reply(200, ACCEPTED)
            }
            Answer::Refused => reply(
                200,
                r#"{"Success": false, "Message": "soak partner refuses this parcel"}"#,
            ),
            Answer::ServerError => {
                let status =
                    [500, 502, 503][usize::try_from(self.state().rng.below(3)).unwrap_or(0)];
                reply(status, envelope("500", "soak partner failed"))
            }
            Answer::Throttled => {
                let mut response = reply(429, envelope("429", "slow down"));
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
            Answer::Unauthorized => {
                reply(401, envelope("800F1401", "access token invalid or expired"))
            }
        })
    }

    /// CK1's token endpoint: a refresh rotates the refresh token.
    fn token(&self, query: &str) -> Reply {
        self.state().oauth.refresh(query)
    }
}

const ACCEPTED: &str =
    r#"{"Success": true, "Message": "accepted by the soak partner", "RawResponse": "{}"}"#;
