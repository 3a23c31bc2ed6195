//! CK1's OAuth2, played: `POST /oauth2/token?client_id=…&client_secret=…&
//! grant_type=refresh_token&refresh_token=…` answers a new access token
//! that expires after a set time and a new refresh token; the old refresh
//! token is spent. A callback whose bearer is not a live access token gets
//! CK1's 401 envelope.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Reply, query_param, reply};

/// The client credentials the partner accepts, and the refresh token a
/// person obtained once (README): where a dispatcher starts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: &'static str,
    pub client_secret: &'static str,
    pub first_refresh_token: &'static str,
}

/// The token endpoint's state. Its `Debug` shows counts only.
pub struct TokenEndpoint {
    credentials: Credentials,
    lifetime: Duration,
    /// The refresh token before the current one is accepted too.
    accept_previous: bool,
    /// The current refresh token and the one before it.
    refresh_tokens: [String; 2],
    /// Access tokens issued, with when they expire.
    issued: Vec<(String, Instant)>,
    refreshes: u64,
    stale_refreshes: u64,
    spent_refresh_tokens: u64,
    rejected: u64,
}

impl std::fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("client_id", &self.credentials.client_id)
            .field("issued", &self.issued.len())
            .field("refreshes", &self.refreshes)
            .finish_non_exhaustive()
    }
}

impl TokenEndpoint {
    /// Access tokens live `lifetime`; only the current refresh token works.
    #[must_use]
    pub fn new(credentials: Credentials, lifetime: Duration) -> Self {
        let first = credentials.first_refresh_token.to_owned();
        Self {
            credentials,
            lifetime,
            accept_previous: false,
            refresh_tokens: [first.clone(), first],
            issued: Vec::new(),
            refreshes: 0,
            stale_refreshes: 0,
            spent_refresh_tokens: 0,
            rejected: 0,
        }
    }

    /// Accepts the refresh token before the current one too (and counts its
    /// use, [`Self::stale_refreshes`]): a dispatcher killed between the
    /// rotation and its write to the secret still holds it (real CK1 does
    /// not say whether it rotates; see docs/reliability.md).
    #[must_use]
    pub fn accepting_previous(mut self) -> Self {
        self.accept_previous = true;
        self
    }

    /// Answers a token request with query string `query`.
    pub fn refresh(&mut self, query: &str) -> Reply {
        let get = |key: &str| query_param(query, key);
        if get("client_id") != Some(self.credentials.client_id)
            || get("client_secret") != Some(self.credentials.client_secret)
        {
            return reply(
                400,
                r#"{"Code":"invalid_client","Message":"unknown client"}"#,
            );
        }
        let presented = get("refresh_token");
        let current = presented == Some(self.refresh_tokens[0].as_str());
        let previous = self.accept_previous && presented == Some(self.refresh_tokens[1].as_str());
        if get("grant_type") != Some("refresh_token") || !(current || previous) {
            self.spent_refresh_tokens += 1;
            return reply(
                400,
                r#"{"Code":"invalid_grant","Message":"the refresh token is invalid"}"#,
            );
        }
        if !current {
            self.stale_refreshes += 1;
        }
        self.refreshes += 1;
        let access = format!("access-{}", self.refreshes);
        let refresh = format!("refresh-{}", self.refreshes);
        self.refresh_tokens = [refresh.clone(), self.refresh_tokens[0].clone()];
        let now = Instant::now();
        self.issued.retain(|(_, until)| *until > now);
        self.issued.push((access.clone(), now + self.lifetime));
        reply(
            200,
            json!({
                "AccessToken": access,
                "RefreshToken": refresh,
                "AccessTokenExpiresIn": self.lifetime.as_secs(),
                "RefreshTokenExpiresIn": 2_592_000,
            })
            .to_string(),
        )
    }

    /// `None` when `bearer` is a live access token; CK1's 401 otherwise
    /// (counted, [`Self::rejected`]).
    pub fn authorize(&mut self, bearer: Option<&str>, path: &str) -> Option<Reply> {
        let now = Instant::now();
        let live = bearer.is_some_and(|token| {
            self.issued
                .iter()
                .any(|(issued, until)| issued == token && *until > now)
        });
        if live {
            return None;
        }
        self.rejected += 1;
        Some(reply(
            401,
            json!({
                "Errors": [{"Code": "800F1401", "Message": "access token invalid or expired"}],
                "TicketId": "00000000-0000-4000-8000-000000000401",
                "RequestUri": path,
            })
            .to_string(),
        ))
    }

    /// Expires every access token issued so far.
    pub fn revoke(&mut self) {
        self.issued.clear();
    }

    /// Successful refreshes.
    #[must_use]
    pub fn refreshes(&self) -> u64 {
        self.refreshes
    }

    /// Refreshes that presented the refresh token before the current one.
    #[must_use]
    pub fn stale_refreshes(&self) -> u64 {
        self.stale_refreshes
    }

    /// Refreshes refused because their refresh token was spent or unknown.
    #[must_use]
    pub fn spent_refresh_tokens(&self) -> u64 {
        self.spent_refresh_tokens
    }

    /// Callbacks answered 401.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: Credentials = Credentials {
        client_id: "c",
        client_secret: "s",
        first_refresh_token: "r-0",
    };

    fn query(refresh_token: &str) -> String {
        format!(
            "client_id=c&client_secret=s&grant_type=refresh_token&refresh_token={refresh_token}"
        )
    }

    #[test]
    fn a_refresh_rotates_the_refresh_token_and_spends_the_old_one() {
        let mut endpoint = TokenEndpoint::new(CREDENTIALS, Duration::from_secs(60));
        assert_eq!(endpoint.refresh(&query("r-0")).status(), 200);
        assert_eq!(endpoint.refresh(&query("r-0")).status(), 400);
        assert_eq!(endpoint.spent_refresh_tokens(), 1);
        assert_eq!(endpoint.refresh(&query("refresh-1")).status(), 200);
        assert_eq!(endpoint.refreshes(), 2);
    }

    #[test]
    fn the_previous_refresh_token_works_once_accepted() {
        let mut endpoint =
            TokenEndpoint::new(CREDENTIALS, Duration::from_secs(60)).accepting_previous();
        assert_eq!(endpoint.refresh(&query("r-0")).status(), 200);
        assert_eq!(endpoint.refresh(&query("r-0")).status(), 200);
        assert_eq!(endpoint.stale_refreshes(), 1);
    }

    #[test]
    fn only_a_live_access_token_passes() {
        let mut endpoint = TokenEndpoint::new(CREDENTIALS, Duration::from_secs(60));
        assert_eq!(endpoint.refresh(&query("r-0")).status(), 200);
        assert!(endpoint.authorize(Some("access-1"), "/").is_none());
        assert_eq!(
            endpoint
                .authorize(Some("access-2"), "/")
                .map(|r| r.status()),
            Some(hyper::StatusCode::UNAUTHORIZED)
        );
        endpoint.revoke();
        assert!(endpoint.authorize(Some("access-1"), "/").is_some());
        assert_eq!(endpoint.rejected(), 2);
    }

    #[test]
    fn unknown_client_credentials_are_refused() {
        let mut endpoint = TokenEndpoint::new(CREDENTIALS, Duration::from_secs(60));
        let wrong = "client_id=c&client_secret=x&grant_type=refresh_token&refresh_token=r-0";
        assert_eq!(endpoint.refresh(wrong).status(), 400);
        assert_eq!(endpoint.refreshes(), 0);
    }
}
