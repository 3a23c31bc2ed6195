//! Request signatures for clients configured to sign, like Stripe's:
//! `X-Signature-Timestamp: <unix seconds>` and
//! `X-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>`.
//! The timestamp bounds replays to a ±300 s window; the comparison is
//! constant-time.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from our clock.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this key must sign its requests: send X-Signature-Timestamp and X-Signature")]
    Missing,
    #[error("X-Signature-Timestamp must be unix seconds")]
    BadTimestamp,
    #[error("X-Signature-Timestamp is more than {TOLERANCE_SECONDS} s from the server's clock")]
    OutsideWindow,
    #[error("X-Signature does not match the body")]
    Mismatch,
}

/// `v1=<hex>` for `body` at `timestamp`: what a client sends.
#[must_use]
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body)
        .map(|mac| super::key::hex(&mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("v1={digest}")
}

/// The MAC state after the signed payload. HMAC takes keys of any length, so
/// this is `None` only in theory.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Checks the signature headers' values against `body`.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now.timestamp() - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideWindow);
    }
    let expected = signature
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(decode_hex);
    let mut matched = false;
    for candidate in expected {
        // verify_slice compares in constant time.
        matched |=
            mac(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(&candidate).is_ok());
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
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

    #[test]
    fn a_fresh_signature_over_the_body_is_accepted() {
        let now = Utc::now();
        let signature = sign(SECRET, now.timestamp(), b"{}");
        assert_eq!(
            verify(
                SECRET,
                Some(&now.timestamp().to_string()),
                Some(&signature),
                b"{}",
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_or_an_old_timestamp_is_refused() {
        let now = Utc::now();
        let ts = now.timestamp();
        let signature = sign(SECRET, ts, b"{}");
        assert_eq!(
            verify(SECRET, Some(&ts.to_string()), Some(&signature), b"{ }", now),
            Err(SignatureError::Mismatch)
        );
        let old = ts - 301;
        assert_eq!(
            verify(
                SECRET,
                Some(&old.to_string()),
                Some(&sign(SECRET, old, b"{}")),
                b"{}",
                now
            ),
            Err(SignatureError::OutsideWindow)
        );
        assert_eq!(
            verify(SECRET, None, None, b"{}", now),
            Err(SignatureError::Missing)
        );
    }
}
