//! A minimal Lambda Runtime API (the `AWS_LAMBDA_RUNTIME_API` endpoint a
//! bootstrap talks to), enough to time a cold start: it notes when the
//! function first asks for work (`GET …/invocation/next`), hands out one event,
//! and notes when the answer (`…/response` or `…/error`) or an init error
//! arrives. Later `next` calls wait forever, as they do in Lambda between
//! invocations.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
const REQUEST_ID: &str = "00000000-0000-4000-8000-000000000001";

/// How the function's first invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(String),
    Error(String),
    InitError(String),
}

/// What the stub saw, with the instants it saw it at.
#[derive(Debug, Default)]
struct Seen {
    first_next: Option<Instant>,
    outcome: Option<(Instant, Outcome)>,
}

/// One stub, serving one function process.
#[derive(Debug)]
pub struct RuntimeStub {
    pub address: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    done: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeStub {
    /// Starts a stub on 127.0.0.1:<free port> that hands out `event` once.
    pub async fn start(event: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let done = Arc::new(Notify::new());
        let event = Bytes::from(event);
        let server = {
            let seen = Arc::clone(&seen);
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let seen = Arc::clone(&seen);
                    let done = Arc::clone(&done);
                    let event = event.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            answer(request, Arc::clone(&seen), Arc::clone(&done), event.clone())
                        });
                        // The function is killed mid-request at the end; that is expected.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Ok(Self {
            address,
            seen,
            done,
            server,
        })
    }

    /// Waits until the first invocation ended; the instants of the first
    /// `next` (when there was one) and of the end, and how it ended.
    pub async fn finished(&self) -> (Option<Instant>, Instant, Outcome) {
        loop {
            let notified = self.done.notified();
            {
                let seen = self.seen.lock().expect("stub state");
                if let Some((at, outcome)) = &seen.outcome {
                    return (seen.first_next, *at, outcome.clone());
                }
            }
            notified.await;
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
    done: Arc<Notify>,
    event: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == NEXT {
        let first = {
            let mut seen = seen.lock().expect("stub state");
            let first = seen.first_next.is_none();
            if first {
                seen.first_next = Some(arrived);
            }
            first
        };
        if !first {
            // Between invocations Lambda simply does not answer.
            std::future::pending::<()>().await;
        }
        let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/json")
            .header("Lambda-Runtime-Aws-Request-Id", REQUEST_ID)
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
            )
            .body(Full::new(event));
        return Ok(response.unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR)));
    }
    if request.method() != Method::POST {
        return Ok(plain(StatusCode::NOT_FOUND));
    }
    let outcome = |body: String| {
        if path == INIT_ERROR {
            Some(Outcome::InitError(body))
        } else if path.ends_with("/response") {
            Some(Outcome::Response(body))
        } else if path.ends_with("/error") {
            Some(Outcome::Error(body))
        } else {
            None
        }
    };
    let body = partner::read_body(request)
        .await
        .map(|body| String::from_utf8_lossy(&body).into_owned())
        .unwrap_or_default();
    let Some(outcome) = outcome(body) else {
        return Ok(plain(StatusCode::NOT_FOUND));
    };
    {
        let mut seen = seen.lock().expect("stub state");
        if seen.outcome.is_none() {
            seen.outcome = Some((arrived, outcome));
        }
    }
    done.notify_waiters();
    Ok(plain(StatusCode::ACCEPTED))
}

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = status;
    response
}
