//! The soak's ERP: a webhook receiver on loopback that checks every delivery
//! with the `standardwebhooks` crate (the reference implementation, not the
//! service's signer), logs it, and answers by its own seeded faults: a share
//! of 5xx, of answers after the dispatcher's 5 s timeout, of connection
//! resets, and stretches of being down. It never answers 410 (that would
//! disable the endpoint). It runs inside the soak, so it outlives the
//! service's SIGKILLs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::Request;
use hyper::body::Incoming;
use partner::{Reply, reply};
use tokio::net::TcpListener;

use crate::rng::Rng;

/// Where the ERP takes its webhooks.
pub const WEBHOOK_PATH: &str = "/erp/webhooks";
/// A slow answer comes this long after the post: past the dispatcher's 5 s
/// post timeout (`shared::webhook::POST_TIMEOUT`), having processed it.
pub const SLOW_BY: Duration = Duration::from_secs(6);

/// How often each fault happens, in percent of the posts that reach the ERP.
#[derive(Debug, Clone, Copy)]
pub struct ErpFaults {
    /// 500, 502 or 503, the delivery not processed.
    pub server_error_pct: u64,
    /// Processed, answered 200 only after [`SLOW_BY`].
    pub slow_pct: u64,
    /// The connection closed without an answer, the delivery not processed.
    pub reset_pct: u64,
}

/// What the ERP did with one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErpAnswer {
    /// Processed; 200 in time.
    Accepted,
    /// Processed; the 200 came after the dispatcher's timeout.
    AcceptedLate,
    ServerError,
    Reset,
    /// The signature did not verify: 400, not processed.
    Unverified,
}

impl ErpAnswer {
    /// The ERP holds the event after this post.
    pub fn processed(self) -> bool {
        matches!(self, Self::Accepted | Self::AcceptedLate)
    }

    pub const ALL: [Self; 5] = [
        Self::Accepted,
        Self::AcceptedLate,
        Self::ServerError,
        Self::Reset,
        Self::Unverified,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::AcceptedLate => "accepted after the dispatcher's timeout",
            Self::ServerError => "5xx",
            Self::Reset => "connection reset",
            Self::Unverified => "signature did not verify (400)",
        }
    }
}

/// One post the ERP received, as its log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `webhook-id`.
    pub webhook_id: String,
    /// The body's `type`, `data.order_number` and `data.sequence`.
    pub event_type: String,
    pub order_number: String,
    pub sequence: u64,
    pub received_at: DateTime<Utc>,
    pub verified: bool,
    pub answer: ErpAnswer,
}

/// A delivery as it arrived: the signature checked, the body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub webhook_id: String,
    pub event_type: String,
    pub order_number: String,
    pub sequence: u64,
    pub verified: bool,
}

/// Checks `body` under `headers` with the endpoint's secret (`None`: not
/// subscribed yet, so nothing verifies) and reads what the ERP records.
pub fn arrive(
    secret: Option<&standardwebhooks::Webhook>,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Arrival {
    let verified = secret.is_some_and(|secret| secret.verify(body, headers).is_ok());
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    Arrival {
        webhook_id: headers
            .get("webhook-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        event_type: json["type"].as_str().unwrap_or_default().to_owned(),
        order_number: json["data"]["order_number"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        sequence: json["data"]["sequence"].as_u64().unwrap_or(0),
        verified,
    }
}

struct State {
    secret: Option<Arc<standardwebhooks::Webhook>>,
    log: Vec<Receipt>,
    rng: Rng,
}

/// The ERP's shared state.
#[derive(Debug)]
pub struct Erp {
    faults: ErpFaults,
    state: Mutex<State>,
    down: AtomicBool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("subscribed", &self.secret.is_some())
            .field("receipts", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl Erp {
    pub fn new(faults: ErpFaults, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            faults,
            state: Mutex::new(State {
                secret: None,
                log: Vec::new(),
                rng: Rng::new(seed ^ 0x0e4b_00e4_b00e),
            }),
            down: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The secret the subscription returned (`whsec_…`).
    pub fn subscribe(&self, secret: &str) -> Result<(), standardwebhooks::WebhookError> {
        self.state().secret = Some(Arc::new(standardwebhooks::Webhook::new(secret)?));
        Ok(())
    }

    /// Down: every connection is closed as soon as it is accepted, and
    /// kept-alive ones fail their next request.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn log(&self) -> Vec<Receipt> {
        self.state().log.clone()
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let admitting = Arc::clone(&self);
        let admit = move || !admitting.down.load(Ordering::SeqCst);
        partner::serve(listener, admit, move |request| {
            Arc::clone(&self).answer(request)
        })
        .await;
    }

    async fn answer(self: Arc<Self>, request: Request<Incoming>) -> Result<Reply, std::io::Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the soak's ERP is down",
            ));
        }
        if request.uri().path() != WEBHOOK_PATH {
            return Ok(reply(404, "{}"));
        }
        let headers = request.headers().clone();
        let body = partner::read_body(request)
            .await
            .map_err(std::io::Error::other)?;
        let (answer, status) = {
            let mut state = self.state();
            let arrival = arrive(state.secret.as_deref(), &headers, &body);
            let (answer, status) = self.decide(&mut state.rng, arrival.verified);
            state.log.push(Receipt {
                webhook_id: arrival.webhook_id,
                event_type: arrival.event_type,
                order_number: arrival.order_number,
                sequence: arrival.sequence,
                received_at: Utc::now(),
                verified: arrival.verified,
                answer,
            });
            (answer, status)
        };
        match answer {
            ErpAnswer::Reset => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the soak's ERP resets the connection",
            )),
            ErpAnswer::AcceptedLate => {
                tokio::time::sleep(SLOW_BY).await;
                Ok(reply(status, "{}"))
            }
            _ => Ok(reply(status, "{}")),
        }
    }

    /// The answer to one verified (or not) post, and its status code.
    fn decide(&self, rng: &mut Rng, verified: bool) -> (ErpAnswer, u16) {
        let roll = rng.below(100);
        let faults = &self.faults;
        if !verified {
            return (ErpAnswer::Unverified, 400);
        }
        if roll < faults.server_error_pct {
            let status = [500, 502, 503][usize::try_from(rng.below(3)).unwrap_or(0)];
            (ErpAnswer::ServerError, status)
        } else if roll < faults.server_error_pct + faults.slow_pct {
            (ErpAnswer::AcceptedLate, 200)
        } else if roll < faults.server_error_pct + faults.slow_pct + faults.reset_pct {
            (ErpAnswer::Reset, 0)
        } else {
            (ErpAnswer::Accepted, 200)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret as the service issues them: `whsec_` and base64 of 24 bytes.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn signed(secret: &str, id: &str, body: &str) -> hyper::HeaderMap {
        let now = Utc::now().timestamp();
        let signature = standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign(id, now, body.as_bytes())
            .unwrap();
        let mut headers = hyper::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    const BODY: &str = r#"{"type":"order.shipped","timestamp":"2026-12-06T10:00:00.000Z","data":{"order_number":"soak-000001","status":"shipped","sequence":7}}"#;

    async fn erp(faults: ErpFaults) -> (Arc<Erp>, String) {
        let erp = Erp::new(faults, 1);
        erp.subscribe(SECRET).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{WEBHOOK_PATH}", listener.local_addr().unwrap());
        tokio::spawn(Arc::clone(&erp).serve(listener));
        (erp, url)
    }

    async fn post(url: &str, headers: hyper::HeaderMap) -> Result<u16, reqwest::Error> {
        // Plain HTTP only, but reqwest's rustls needs a provider chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut request = reqwest::Client::new().post(url).body(BODY);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.to_str().unwrap());
        }
        Ok(request.send().await?.status().as_u16())
    }

    const NO_FAULTS: ErpFaults = ErpFaults {
        server_error_pct: 0,
        slow_pct: 0,
        reset_pct: 0,
    };

    #[test]
    fn a_delivery_signed_with_the_endpoint_secret_verifies_and_is_read() {
        let arrival = arrive(
            Some(&standardwebhooks::Webhook::new(SECRET).unwrap()),
            &signed(SECRET, "evt_1", BODY),
            BODY.as_bytes(),
        );
        assert_eq!(
            arrival,
            Arrival {
                webhook_id: "evt_1".into(),
                event_type: "order.shipped".into(),
                order_number: "soak-000001".into(),
                sequence: 7,
                verified: true,
            }
        );
    }

    #[test]
    fn another_secret_a_changed_body_or_no_subscription_does_not_verify() {
        let other = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";
        let webhook = standardwebhooks::Webhook::new(SECRET).unwrap();
        let headers = signed(other, "evt_1", BODY);
        assert!(!arrive(Some(&webhook), &headers, BODY.as_bytes()).verified);
        let headers = signed(SECRET, "evt_1", BODY);
        let changed = BODY.replace("\"sequence\":7", "\"sequence\":8");
        assert!(!arrive(Some(&webhook), &headers, changed.as_bytes()).verified);
        assert!(!arrive(None, &headers, BODY.as_bytes()).verified);
    }

    #[tokio::test]
    async fn the_erp_logs_each_post_and_answers_200_when_it_verifies_400_when_not() {
        let (erp, url) = erp(NO_FAULTS).await;
        assert_eq!(
            post(&url, signed(SECRET, "evt_1", BODY)).await.unwrap(),
            200
        );
        let forged = signed("whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", "evt_2", BODY);
        assert_eq!(post(&url, forged).await.unwrap(), 400);
        let log = erp.log();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].verified, log[0].answer, log[0].sequence),
            (true, ErpAnswer::Accepted, 7)
        );
        assert_eq!(
            (log[1].verified, log[1].answer),
            (false, ErpAnswer::Unverified)
        );
    }

    #[tokio::test]
    async fn while_down_the_erp_answers_nothing_and_logs_nothing() {
        let (erp, url) = erp(NO_FAULTS).await;
        erp.set_down(true);
        assert!(post(&url, signed(SECRET, "evt_1", BODY)).await.is_err());
        erp.set_down(false);
        assert_eq!(
            post(&url, signed(SECRET, "evt_1", BODY)).await.unwrap(),
            200
        );
        assert_eq!(erp.log().len(), 1);
    }

    #[tokio::test]
    async fn every_fault_comes_in_its_share_and_none_is_a_410() {
        let faults = ErpFaults {
            server_error_pct: 30,
            slow_pct: 0,
            reset_pct: 30,
        };
        let erp = Erp::new(faults, 7);
        let mut rng = Rng::new(7);
        let answers: Vec<(ErpAnswer, u16)> =
            (0..2_000).map(|_| erp.decide(&mut rng, true)).collect();
        let share = |answer: ErpAnswer| {
            answers.iter().filter(|(a, _)| *a == answer).count() as f64 / answers.len() as f64
        };
        assert!((0.25..0.35).contains(&share(ErpAnswer::ServerError)));
        assert!((0.25..0.35).contains(&share(ErpAnswer::Reset)));
        assert!((0.35..0.45).contains(&share(ErpAnswer::Accepted)));
        assert!(answers.iter().all(|(_, status)| *status != 410));
        assert!(
            answers
                .iter()
                .filter(|(a, _)| *a == ErpAnswer::ServerError)
                .all(|(_, status)| [500, 502, 503].contains(status))
        );
    }

    #[tokio::test]
    async fn a_reset_closes_the_connection_after_logging_the_post() {
        let faults = ErpFaults {
            reset_pct: 100,
            ..NO_FAULTS
        };
        let (erp, url) = erp(faults).await;
        assert!(post(&url, signed(SECRET, "evt_1", BODY)).await.is_err());
        assert_eq!(erp.log()[0].answer, ErpAnswer::Reset);
        assert!(!erp.log()[0].answer.processed());
    }
}
