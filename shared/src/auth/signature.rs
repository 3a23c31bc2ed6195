//! Request signatures for clients configured to sign:
//! `X-Signature-Timestamp: <unix seconds>` and
//! `X-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{METHOD}.{path}.{body}")>`,
//! where `path` is the request path with its query string as sent
//! (`/apicenter/api/order/A/cancel`, `/x?a=1`). Binding method and path stops a
//! captured signature from being replayed on another route or order; the
//! timestamp bounds replays of the same request to a ±300 s window. At most
//! two signatures (key rotation) are tried, over one MAC of the request; the
//! comparison is constant-time.

use chrono::{DateTime, Utc};

use crate::domain::SignedRequest;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from our clock.
pub const TOLERANCE_SECONDS: u64 = 300;
/// Most `v1=` signatures one `X-Signature` may carry (old and new secret).
pub const MAX_CANDIDATES: usize = 2;
/// Longest `X-Signature` read: two signatures and their separator fit with room.
pub const MAX_HEADER_BYTES: usize = 256;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this key must sign its requests: send X-Signature-Timestamp and X-Signature")]
    Missing,
    #[error("X-Signature-Timestamp must be unix seconds")]
    BadTimestamp,
    #[error("X-Signature-Timestamp is more than {TOLERANCE_SECONDS} s from the server's clock")]
    OutsideWindow,
    #[error(
        "X-Signature may carry at most {MAX_CANDIDATES} signatures in {MAX_HEADER_BYTES} bytes"
    )]
    TooMany,
    #[error(
        "X-Signature does not match the request: sign \"{{timestamp}}.{{METHOD}}.{{path}}.{{body}}\""
    )]
    Mismatch,
}

/// What a signature covers besides its timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// `GET`, `POST`, … as sent.
    pub method: &'a str,
    /// The request path with its query string as sent, without scheme or host.
    pub path: &'a str,
    pub body: &'a [u8],
}

/// `v1=<hex>` for a request at `timestamp`: what a client sends.
#[must_use]
pub fn sign(secret: &str, timestamp: i64, method: &str, path: &str, body: &[u8]) -> String {
    let request = Signed { method, path, body };
    let digest = mac(secret, timestamp, &request)
        .map(|mac| crate::hex::encode(&mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("v1={digest}")
}

/// The MAC state after the signed payload. HMAC takes keys of any length, so
/// this is `None` only in theory.
fn mac(secret: &str, timestamp: i64, request: &Signed<'_>) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(request.method.as_bytes());
    mac.update(b".");
    mac.update(request.path.as_bytes());
    mac.update(b".");
    mac.update(request.body);
    Some(mac)
}

/// Checks the signature headers' values against the request.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    request: &Signed<'_>,
    now: DateTime<Utc>,
) -> Result<SignedRequest, SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // Any i64 may arrive: a difference that overflows is far outside the window.
    let skew = now
        .timestamp()
        .checked_sub(timestamp)
        .map(i64::unsigned_abs);
    if skew.is_none_or(|skew| skew > TOLERANCE_SECONDS) {
        return Err(SignatureError::OutsideWindow);
    }
    if signature.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::TooMany);
    }
    let candidates: Vec<&str> = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .collect();
    if candidates.len() > MAX_CANDIDATES {
        return Err(SignatureError::TooMany);
    }
    // One pass over the body, however many candidates.
    let mac = mac(secret, timestamp, request).ok_or(SignatureError::Mismatch)?;
    let mut matched = false;
    for candidate in candidates.into_iter().filter_map(decode_hex) {
        // verify_slice compares in constant time.
        matched |= mac.clone().verify_slice(&candidate).is_ok();
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let window = i64::try_from(TOLERANCE_SECONDS).unwrap_or(i64::MAX);
    Ok(SignedRequest {
        digest: crate::hex::encode(&mac.finalize().into_bytes()),
        valid_until: DateTime::from_timestamp(timestamp.saturating_add(window), 0).unwrap_or(now),
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const CANCEL: &str = "/apicenter/api/order/A/cancel";

    fn post<'a>(path: &'a str, body: &'a [u8]) -> Signed<'a> {
        Signed {
            method: "POST",
            path,
            body,
        }
    }

    fn check(
        signature: &str,
        ts: i64,
        request: &Signed<'_>,
    ) -> Result<SignedRequest, SignatureError> {
        verify(
            SECRET,
            Some(&ts.to_string()),
            Some(signature),
            request,
            Utc::now(),
        )
    }

    #[test]
    fn a_fresh_signature_over_the_request_is_accepted() {
        let ts = Utc::now().timestamp();
        let signature = sign(SECRET, ts, "POST", CANCEL, b"{}");
        assert!(check(&signature, ts, &post(CANCEL, b"{}")).is_ok());
    }

    #[test]
    fn the_api_guide_example_is_what_sign_computes() {
        // docs/api.md, "Authentication and tenants": the worked example, read
        // from the page itself so that the page cannot drift.
        let guide = include_str!("../../../docs/api.md");
        let signature = sign(
            "whsec_example",
            1_764_460_800,
            "POST",
            "/apicenter/api/order/mabang-test002/cancel",
            br#"{"reason":"customer changed their mind"}"#,
        );
        assert_eq!(
            signature,
            "v1=727dd412fc9b2a101fa6b886f673ed71950c2713a918d881cd939975520d4202"
        );
        assert!(
            guide.contains(&format!("X-Signature: {signature}")),
            "docs/api.md shows another signature for its worked example"
        );
    }

    #[test]
    fn a_changed_body_or_an_old_timestamp_is_refused() {
        let ts = Utc::now().timestamp();
        let signature = sign(SECRET, ts, "POST", CANCEL, b"{}");
        assert_eq!(
            check(&signature, ts, &post(CANCEL, b"{ }")),
            Err(SignatureError::Mismatch)
        );
        let old = ts - 301;
        assert_eq!(
            check(
                &sign(SECRET, old, "POST", CANCEL, b"{}"),
                old,
                &post(CANCEL, b"{}")
            ),
            Err(SignatureError::OutsideWindow)
        );
        assert_eq!(
            verify(SECRET, None, None, &post(CANCEL, b"{}"), Utc::now()),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_signature_for_one_route_method_or_query_is_refused_on_another() {
        let ts = Utc::now().timestamp();
        let signature = sign(SECRET, ts, "GET", "/apicenter/api/order/A", b"");
        for (method, path) in [
            ("POST", "/apicenter/api/order/A"),
            ("GET", "/apicenter/api/order/B"),
            ("GET", "/apicenter/api/order/A?x=1"),
            ("POST", "/apicenter/api/order/A/cancel"),
        ] {
            let request = Signed {
                method,
                path,
                body: b"",
            };
            assert_eq!(
                check(&signature, ts, &request),
                Err(SignatureError::Mismatch),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn a_request_is_named_by_what_it_signs_whatever_candidates_came_with_it() {
        let ts = Utc::now().timestamp();
        let good = sign(SECRET, ts, "POST", CANCEL, b"{}");
        let old = sign("whsec_old", ts, "POST", CANCEL, b"{}");
        let alone = check(&good, ts, &post(CANCEL, b"{}")).unwrap();
        let paired = check(&format!("{old}, {good}"), ts, &post(CANCEL, b"{}")).unwrap();
        let other = check(
            &sign(SECRET, ts, "POST", CANCEL, b"{ }"),
            ts,
            &post(CANCEL, b"{ }"),
        )
        .unwrap();
        assert_eq!(alone, paired);
        assert_ne!(alone.digest, other.digest);
        assert_eq!(alone.valid_until.timestamp(), ts + 300);
    }

    #[test]
    fn two_candidates_allow_a_secret_rotation() {
        let ts = Utc::now().timestamp();
        let good = sign(SECRET, ts, "POST", CANCEL, b"{}");
        let old = sign("whsec_old", ts, "POST", CANCEL, b"{}");
        assert!(check(&format!("{old}, {good}"), ts, &post(CANCEL, b"{}")).is_ok());
    }

    #[test]
    fn more_than_two_candidates_are_refused_even_when_one_matches() {
        let ts = Utc::now().timestamp();
        let good = sign(SECRET, ts, "POST", CANCEL, b"{}");
        let three = format!("v1=00,v1=11,{good}");
        assert_eq!(
            check(&three, ts, &post(CANCEL, b"{}")),
            Err(SignatureError::TooMany)
        );
    }

    #[test]
    fn an_oversized_signature_header_is_refused_unread() {
        let ts = Utc::now().timestamp();
        let many = vec!["v1=00"; 5000].join(",");
        let body = vec![b'x'; 256 * 1024];
        let started = std::time::Instant::now();
        assert_eq!(
            check(&many, ts, &post(CANCEL, &body)),
            Err(SignatureError::TooMany)
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
    }

    #[test]
    fn a_timestamp_at_the_edge_of_i64_is_outside_the_window_not_a_panic() {
        for ts in [i64::MIN, i64::MAX] {
            assert_eq!(
                check("v1=00", ts, &post(CANCEL, b"")),
                Err(SignatureError::OutsideWindow)
            );
        }
    }
}
