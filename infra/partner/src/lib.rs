//! CK1's side of spec 001, played on loopback: what every local partner
//! shares, so that each (the tests' scripted one in `tests/src/partner.rs`,
//! the soak's fault-injecting one, the bench's) keeps only its own answers.
//!
//! - [`serve`]: the HTTP/1 server on a listener, one task per connection;
//! - [`reply`], [`header`], [`query_param`], [`read_body`]: the JSON
//!   answers and what a request carries;
//! - [`TokenEndpoint`]: CK1's OAuth2 token endpoint (parameters in the query
//!   string, PascalCase answer), access tokens that expire, a refresh token
//!   that rotates on every refresh, and CK1's 401 envelope for a callback
//!   without a live token.

mod oauth;

pub use oauth::{Credentials, TokenEndpoint};

use std::future::Future;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The partner's callback endpoint.
pub const CALLBACK_PATH: &str = "/v1/outboundOrders/PlatformOrder/Callback";
/// CK1's token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// What a partner answers.
pub type Reply = Response<Full<Bytes>>;

/// Serves on `listener` until the task is dropped. `admit` decides, per
/// accepted connection, whether to serve it or close it at once (a partner
/// that is down); `answer` answers each request, and an error from it ends
/// the connection without an answer (a reset).
pub async fn serve<A, F, Fut, E>(listener: TcpListener, admit: A, answer: F)
where
    A: Fn() -> bool,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Reply, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if !admit() {
            drop(stream);
            continue;
        }
        let answer = answer.clone();
        tokio::spawn(async move {
            // A client that hangs up, or an answer that resets, ends only
            // this connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

/// A JSON answer.
///
/// # Panics
/// On a status code outside 100–999 (a bug in the partner's script).
#[must_use]
pub fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).expect("a status code");
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A request header as text, when it is text.
#[must_use]
pub fn header<B>(request: &Request<B>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// A request's whole body.
///
/// # Errors
/// When the body cannot be read to its end (the client went away).
pub async fn read_body<B: Body>(request: Request<B>) -> Result<Bytes, B::Error> {
    Ok(request.into_body().collect().await?.to_bytes())
}

/// The bearer token of `Authorization`, if any.
#[must_use]
pub fn bearer<B>(request: &Request<B>) -> Option<String> {
    header(request, "authorization")
        .and_then(|value| value.strip_prefix("Bearer ").map(str::to_owned))
}

/// `key`'s value in a query string (`a=1&b=2`), undecoded.
#[must_use]
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_parameter_is_found_by_its_key() {
        let query = "client_id=c&grant_type=refresh_token&refresh_token=r-1";
        assert_eq!(query_param(query, "refresh_token"), Some("r-1"));
        assert_eq!(query_param(query, "client_secret"), None);
    }
}
