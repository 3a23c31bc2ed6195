//! [`WebhookPoster`] over HTTPS: one reqwest client (rustls, no redirects
//! followed) whose name resolver drops every address the [`Reach`] refuses,
//! so a name that resolves (or is re-pointed after the endpoint was checked)
//! to a private, loopback, link-local or metadata address is never connected
//! to. An address in the URL itself was checked when the endpoint was given
//! and is checked again when the endpoint is read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use shared::ports::WebhookPoster;
use shared::webhook::{EndpointUrl, MAX_EXCERPT_CHARS, PostResult, Reach, SignedHeaders};

use crate::https::HttpsSetupError;

/// How long a connection may take to open, within the post's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most bytes of an answer read (its excerpt is shorter).
const MAX_ANSWER_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone)]
pub struct HttpWebhookPoster {
    client: reqwest::Client,
}

impl HttpWebhookPoster {
    pub fn new(reach: Reach) -> Result<Self, HttpsSetupError> {
        let client = crate::https::reqwest_builder()?
            .dns_resolver(Arc::new(GuardedResolver { reach }))
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent("warehouse-orders-webhooks/1")
            .build()?;
        Ok(Self { client })
    }
}

impl WebhookPoster for HttpWebhookPoster {
    async fn post(
        &self,
        url: &EndpointUrl,
        headers: &SignedHeaders,
        body: &str,
        timeout: Duration,
    ) -> PostResult {
        let started = Instant::now();
        let mut request = self
            .client
            .post(url.as_str())
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let latency =
            |started: Instant| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return PostResult {
                    http_status: None,
                    excerpt: why(&err),
                    latency_ms: latency(started),
                    retry_after: None,
                };
            }
        };
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let status = response.status().as_u16();
        let mut answer = Vec::new();
        while answer.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        PostResult {
            http_status: Some(status),
            excerpt: String::from_utf8_lossy(&answer)
                .chars()
                .take(MAX_EXCERPT_CHARS)
                .collect(),
            latency_ms: latency(started),
            retry_after,
        }
    }
}

/// Why a post got no answer, without the URL (an ERP's, possibly with a
/// token in its query).
fn why(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "no answer within the timeout".into();
    }
    let mut message = String::from("no connection");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

/// Resolves as the system does, then keeps only the addresses the reach
/// admits; none left is an error naming why.
#[derive(Debug)]
struct GuardedResolver {
    reach: Reach,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let admitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match reach.admits(address.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused = Some(why);
                        false
                    }
                })
                .collect();
            if admitted.is_empty() {
                let why = refused.map_or_else(
                    || "resolves to no address".to_owned(),
                    |why| format!("the endpoint's name {why}"),
                );
                return Err(why.into());
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// One HTTP/1.1 exchange on a loopback port: it answers `answer` and
    /// counts the connections it got.
    async fn receiver(answer: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = vec![0_u8; 8192];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (format!("http://localhost:{port}/hook"), connections)
    }

    fn headers() -> SignedHeaders {
        SignedHeaders {
            id: "evt_1".into(),
            timestamp: 1,
            signature: "v1,x".into(),
        }
    }

    #[tokio::test]
    async fn a_local_receiver_is_posted_to_when_the_local_network_is_allowed() {
        let (url, _) = receiver("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
        let poster = HttpWebhookPoster::new(Reach::LocalNetwork).unwrap();
        let url = EndpointUrl::parse(&url, Reach::LocalNetwork).unwrap();
        let result = poster
            .post(&url, &headers(), "{}", Duration::from_secs(2))
            .await;
        assert_eq!(result.http_status, Some(204), "{result:?}");
    }

    /// The name is what a deployed endpoint could be re-pointed to: its
    /// addresses are refused before any connection is made.
    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_never_connected_to_when_deployed() {
        let (url, connections) = receiver("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let poster = HttpWebhookPoster::new(Reach::Internet).unwrap();
        // Parsed locally (plain http and localhost are refused when deployed):
        // what matters here is the resolver's own check.
        let url = EndpointUrl::parse(&url, Reach::LocalNetwork).unwrap();
        let result = poster
            .post(&url, &headers(), "{}", Duration::from_secs(2))
            .await;
        assert_eq!(result.http_status, None);
        assert!(result.excerpt.contains("loopback"), "{}", result.excerpt);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_followed() {
        let (url, connections) = receiver(
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        let poster = HttpWebhookPoster::new(Reach::LocalNetwork).unwrap();
        let url = EndpointUrl::parse(&url, Reach::LocalNetwork).unwrap();
        let result = poster
            .post(&url, &headers(), "{}", Duration::from_secs(2))
            .await;
        assert_eq!(result.http_status, Some(302));
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
