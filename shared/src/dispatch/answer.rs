//! The partner's answer rules: what an HTTP answer to a callback post means
//! (delivered, refused for good, or worth retrying, and why), and what of
//! its body goes into the ledger. Pure: the schedule decides when a retry
//! comes, `dispatch::settle` records it.

use std::time::Duration;

use serde::Deserialize;

use crate::ports::PartnerReply;
use crate::record::callback::PartnerAnswer;

/// The reason of every retry caused by the partner refusing our credentials.
pub const CREDENTIALS_REJECTED: &str = "the partner rejected our credentials";

/// Why a post is to be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// The partner rejected our credentials (401/403), or no token could be
    /// had: an operator's problem, not the shipment's.
    Credentials,
    /// No answer, a timeout, a 408, a 429 or a 5xx.
    Unavailable,
    /// A 2xx whose `Success` we could not read: it may or may not have been
    /// taken.
    Unreadable,
    /// Nothing was posted: getting the token took most of the lease, or the
    /// credentials' store was out of reach (the try is given back).
    NotPosted,
}

/// What one post came to, before the schedule says when a retry is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Refused for good, and why.
    Rejected(String),
    /// Worth another post; `retry_after` is the partner's `Retry-After`.
    Retry {
        cause: RetryCause,
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Verdict {
    /// A retry with no word from the partner on when.
    #[must_use]
    pub fn retry(cause: RetryCause, reason: String) -> Self {
        Self::Retry {
            cause,
            reason,
            retry_after: None,
        }
    }
}

/// The partner's answer body: spec 001's `{Success, Message, RawResponse}`
/// or CK1's error envelope `{Errors: [{Code, Message}], TicketId, …}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerBody {
    success: Option<bool>,
    message: Option<String>,
    raw_response: Option<String>,
    #[serde(default)]
    errors: Vec<EnvelopeError>,
    ticket_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnvelopeError {
    code: Option<String>,
    message: Option<String>,
}

/// What an HTTP answer means, and what it said.
#[must_use]
pub fn judge(reply: &PartnerReply) -> (Verdict, PartnerAnswer) {
    let answer = read_answer(&reply.body);
    let message = answer.message.clone().unwrap_or_default();
    let status = reply.status;
    let retry = |cause, reason| Verdict::Retry {
        cause,
        reason,
        retry_after: reply.retry_after,
    };
    let verdict = match status {
        200..=299 => match answer.success {
            Some(true) => Verdict::Delivered,
            Some(false) => {
                Verdict::Rejected(format!("the partner answered Success: false: {message}"))
            }
            // A 2xx we cannot read may or may not have been taken: ask again.
            None => retry(
                RetryCause::Unreadable,
                format!("HTTP {status} without a readable Success"),
            ),
        },
        // Our credentials, not the shipment: never a failure for good.
        401 | 403 => retry(
            RetryCause::Credentials,
            format!("{CREDENTIALS_REJECTED} (HTTP {status}{})", suffix(&message)),
        ),
        408 | 429 | 500..=599 => retry(
            RetryCause::Unavailable,
            format!("HTTP {status}{}", suffix(&message)),
        ),
        _ => Verdict::Rejected(format!("HTTP {status}{}", suffix(&message))),
    };
    (verdict, answer)
}

/// The ledger's copy of an answer body (the raw text when it is not JSON).
fn read_answer(body: &str) -> PartnerAnswer {
    let Ok(parsed) = serde_json::from_str::<AnswerBody>(body) else {
        return PartnerAnswer {
            raw_response: (!body.is_empty()).then(|| body.to_owned()),
            ..PartnerAnswer::default()
        };
    };
    let first = parsed.errors.first();
    PartnerAnswer {
        success: parsed.success,
        message: parsed
            .message
            .clone()
            .or_else(|| first.and_then(|e| e.message.clone())),
        raw_response: parsed.raw_response.clone(),
        code: first.and_then(|e| e.code.clone()),
        ticket_id: parsed.ticket_id.clone(),
    }
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> PartnerReply {
        PartnerReply {
            status,
            retry_after: None,
            body: body.to_owned(),
        }
    }

    #[test]
    fn a_401_or_403_is_retried_as_rejected_credentials_never_failed() {
        for status in [401, 403] {
            let (verdict, _) = judge(&reply(status, ""));
            assert!(
                matches!(&verdict, Verdict::Retry { cause: RetryCause::Credentials, reason, .. }
                    if reason.starts_with(CREDENTIALS_REJECTED)),
                "{status}: {verdict:?}"
            );
        }
    }

    #[test]
    fn the_error_envelope_gives_code_message_and_ticket() {
        let (verdict, answer) = judge(&reply(
            500,
            r#"{"Errors":[{"Code":"800F1533","Message":"boom"}],"TicketId":"t-9","UtcDateTime":"x"}"#,
        ));
        assert_eq!(answer.code.as_deref(), Some("800F1533"));
        assert_eq!(answer.message.as_deref(), Some("boom"));
        assert_eq!(answer.ticket_id.as_deref(), Some("t-9"));
        assert_eq!(
            verdict,
            Verdict::retry(RetryCause::Unavailable, "HTTP 500: boom".into())
        );
    }

    #[test]
    fn a_400_envelope_fails_with_the_partners_message() {
        let (verdict, _) = judge(&reply(
            400,
            r#"{"Errors":[{"Code":"C1","Message":"bad field"}],"TicketId":"t"}"#,
        ));
        assert_eq!(verdict, Verdict::Rejected("HTTP 400: bad field".into()));
    }

    #[test]
    fn a_2xx_without_a_readable_success_is_retried_with_the_partners_retry_after() {
        let wait = Duration::from_secs(7);
        let (verdict, answer) = judge(&PartnerReply {
            retry_after: Some(wait),
            ..reply(200, "not json")
        });
        assert_eq!(
            verdict,
            Verdict::Retry {
                cause: RetryCause::Unreadable,
                reason: "HTTP 200 without a readable Success".into(),
                retry_after: Some(wait),
            }
        );
        assert_eq!(answer.raw_response.as_deref(), Some("not json"));
    }
}
