//! The post step: the body goes to the partner with the current token; on a
//! 401 a fresh token is had and the body posted once more, in the same
//! attempt (the claim counted one post: the partner refused the first
//! without looking at it).
//!
//! Getting a token may wait (for another dispatcher's refresh, for the token
//! endpoint): a post is started only while the lease outlasts the partner
//! timeout, and the invocation the post's timeout and its record
//! ([`super::deadline`]). A post started later could not have its answer
//! recorded, and another delivery could post the same shipment meanwhile.

use chrono::{DateTime, Utc};

use super::Dispatcher;
use crate::callback::body::CallbackBody;
use crate::callback::breaker::PostOutcome;
use crate::ports::{
    AccessToken, Clock, OrderStore, PartnerClient, PartnerReply, TokenError, TokenSource,
    TransportError,
};

/// What posting with a token gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostResult {
    /// The partner answered (after a refresh, the second answer).
    Answered(PartnerReply),
    /// The partner rejected the token (this 401), and no fresh one could be had.
    RefreshFailed(PartnerReply, TokenError),
    /// No HTTP answer came back.
    Unanswered(TransportError),
    /// No token could be had: nothing was posted.
    NoToken(TokenError),
    /// Nothing was posted: getting the token left too little of the lease
    /// (or of the invocation) for a post and its record.
    TooLate,
}

impl PostResult {
    /// What the breaker learns of the partner; `None`: nothing (no post).
    #[must_use]
    pub fn breaker_outcome(&self) -> Option<PostOutcome> {
        match self {
            // The token endpoint out of reach is the partner down, as an
            // unanswered post is; any other missing token says nothing of it.
            Self::Unanswered(_) | Self::NoToken(TokenError::Unreachable(_)) => {
                Some(PostOutcome::Down)
            }
            Self::NoToken(_) | Self::TooLate => None,
            Self::Answered(reply) | Self::RefreshFailed(reply, _) => Some(match reply.status {
                429 => PostOutcome::Throttled,
                408 | 500..=599 => PostOutcome::Down,
                _ => PostOutcome::Answered,
            }),
        }
    }

    /// Whether the try goes back to the schedule: nothing was posted, and
    /// for no fault of the partner's (the lease ran short, or the
    /// credentials' store was out of reach, only while the message is
    /// `within_span`: a store that never comes back must not hold it for ever).
    #[must_use]
    pub const fn gives_back_the_try(&self, within_span: bool) -> bool {
        match self {
            Self::TooLate => true,
            Self::NoToken(TokenError::Unavailable(_)) => within_span,
            _ => false,
        }
    }

    fn from(result: Result<PartnerReply, TransportError>) -> Self {
        result.map_or_else(Self::Unanswered, Self::Answered)
    }
}

impl<S: OrderStore, P: PartnerClient, C: Clock, T: TokenSource> Dispatcher<S, P, C, T> {
    /// Posts `body` if it can be answered by `until` (the lease's end, or
    /// the invocation's last moment to record).
    pub(super) async fn post(
        &self,
        body: &CallbackBody,
        key: &str,
        until: Option<DateTime<Utc>>,
    ) -> PostResult {
        let token = match self.tokens.token().await {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(error = %err, "no partner access token; the callback will be retried");
                return PostResult::NoToken(err);
            }
        };
        if self.too_late(until) {
            return PostResult::TooLate;
        }
        let result = self.partner.post_callback(body, key, &token).await;
        match result {
            Ok(reply) if reply.status == 401 => {
                self.post_refreshed(body, key, until, &token, reply).await
            }
            result => PostResult::from(result),
        }
    }

    /// The partner rejected `token` with `rejected` (a 401): a fresh token,
    /// and the post once more.
    async fn post_refreshed(
        &self,
        body: &CallbackBody,
        key: &str,
        until: Option<DateTime<Utc>>,
        token: &AccessToken,
        rejected: PartnerReply,
    ) -> PostResult {
        tracing::info!("the partner rejected the access token (401); refreshing it");
        match self.tokens.refresh(token).await {
            Ok(fresh) => {
                if self.too_late(until) {
                    return PostResult::TooLate;
                }
                tracing::info!("partner access token refreshed after a 401; posting again");
                PostResult::from(self.partner.post_callback(body, key, &fresh).await)
            }
            Err(err) => {
                tracing::error!(error = %err, "the partner access token could not be refreshed");
                PostResult::RefreshFailed(rejected, err)
            }
        }
    }

    /// Whether a post started now could outlast `until`.
    fn too_late(&self, until: Option<DateTime<Utc>>) -> bool {
        !super::deadline::affords(self.clock.now(), self.policy.post_timeout, until)
    }
}
