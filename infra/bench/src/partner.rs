//! The platform-callback partner for the dispatch benchmark: answers every
//! POST with `Success: true` after a fixed delay (a partner's own work), and
//! keeps what it received so the raw baseline can post the very same requests.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Request;
use hyper::body::{Bytes, Incoming};
use local_stack::stack::CallbackSettings;
use partner::{CALLBACK_PATH, Reply, TOKEN_PATH};
use tokio::net::TcpListener;

const ACCEPTED: &str = r#"{"Success": true, "Message": "ok", "RawResponse": "{\"code\":0}"}"#;

/// A request as the partner received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Bytes,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug)]
pub struct Partner {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Partner {
    /// Starts a partner on 127.0.0.1:<free port> answering after `delay`.
    pub async fn start(delay: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}{CALLBACK_PATH}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let received = Arc::clone(&received);
            tokio::spawn(partner::serve(
                listener,
                || true,
                move |request| answer(request, Arc::clone(&received), delay),
            ))
        };
        Ok(Self {
            url,
            received,
            server,
        })
    }

    /// CK1's token endpoint beside the callback (unused with a static
    /// token; set so nothing points at the real one).
    #[must_use]
    pub fn token_url(&self) -> String {
        self.url.replace(CALLBACK_PATH, TOKEN_PATH)
    }

    /// Everything received so far, emptying the record.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().expect("partner state"))
    }
}

async fn answer(
    request: Request<Incoming>,
    received: Arc<Mutex<Vec<Received>>>,
    delay: Duration,
) -> Result<Reply, Infallible> {
    let authorization = partner::header(&request, "authorization");
    let idempotency_key = partner::header(&request, "idempotency-key");
    let body = partner::read_body(request).await.unwrap_or_default();
    received.lock().expect("partner state").push(Received {
        body,
        authorization,
        idempotency_key,
    });
    tokio::time::sleep(delay).await;
    Ok(partner::reply(200, ACCEPTED))
}

impl Partner {
    /// The dispatcher's settings for posting to this partner: a static
    /// token, no breaker, the deployed timeout and schedule.
    #[must_use]
    pub fn callback_settings(&self) -> CallbackSettings {
        CallbackSettings {
            url: self.url.clone(),
            token: "bench-partner-token".into(),
            oauth: None,
            breaker: None,
            timeout: Duration::from_secs(10),
            retry_delays: None,
            max_posts: None,
        }
    }
}
