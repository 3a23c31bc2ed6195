//! Signing a delivery to the Standard Webhooks 1.0 spec: HMAC-SHA256 over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, written `v1,<base64>`; one
//! signature per live secret, space-separated, so a receiver holding either
//! the old or the new secret verifies every delivery during a rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookSecret;

/// The three headers of a signed delivery, by their Standard Webhooks names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `webhook-id`: the event's id, the same on every retry.
    pub id: String,
    /// `webhook-timestamp`: unix seconds of this attempt.
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
}

impl SignedHeaders {
    /// Header names and values, as a sender adds them.
    #[must_use]
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            ("webhook-id", self.id.clone()),
            ("webhook-timestamp", self.timestamp.to_string()),
            ("webhook-signature", self.signature.clone()),
        ]
    }
}

/// Signs `body` for the event `id` at `timestamp` with every secret in
/// `secrets` (the current one first).
#[must_use]
pub fn sign(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
    let signature = secrets
        .iter()
        .map(|secret| format!("v1,{}", STANDARD.encode(mac(secret, id, timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ");
    SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signature,
    }
}

fn mac(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.key())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification
    /// (`spec/standard-webhooks.md`, "Signature scheme").
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn spec_secret() -> WebhookSecret {
        // The spec's secret is 24 bytes; ours are 32, so it is built by hand.
        WebhookSecret::from_key(STANDARD.decode(&SPEC_SECRET[6..]).unwrap())
    }

    #[test]
    fn the_specifications_example_signs_as_the_specification_says() {
        let headers = sign(&[spec_secret()], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
        assert_eq!(headers.signature, SPEC_SIGNATURE);
    }

    #[test]
    fn during_a_rotation_both_secrets_sign_space_separated() {
        let new = WebhookSecret::generate().unwrap();
        let both = sign(
            &[new.clone(), spec_secret()],
            SPEC_ID,
            SPEC_TIMESTAMP,
            SPEC_BODY,
        );
        let (first, second) = both.signature.split_once(' ').expect("two signatures");
        assert_eq!(
            first,
            sign(&[new], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY).signature
        );
        assert_eq!(second, SPEC_SIGNATURE);
    }

    /// What a receiver does with the reference library: every signature we
    /// make, alone or beside a rotated-out secret's, verifies.
    #[test]
    fn the_standard_webhooks_library_verifies_what_we_sign() {
        let (current, previous) = (
            WebhookSecret::generate().unwrap(),
            WebhookSecret::generate().unwrap(),
        );
        let body = br#"{"type":"order.shipped","data":{"order_number":"mabang-1"}}"#;
        let now = chrono::Utc::now().timestamp();
        let signed = sign(&[current.clone(), previous.clone()], "evt_0123", now, body);
        let mut headers = http::HeaderMap::new();
        for (name, value) in signed.pairs() {
            headers.insert(name, value.parse().unwrap());
        }
        for secret in [&current, &previous] {
            let receiver = standardwebhooks::Webhook::new(&secret.expose()).unwrap();
            assert!(
                receiver.verify(body, &headers).is_ok(),
                "{}",
                signed.signature
            );
        }
        let stranger =
            standardwebhooks::Webhook::new(&WebhookSecret::generate().unwrap().expose()).unwrap();
        assert!(stranger.verify(body, &headers).is_err());
        assert!(
            standardwebhooks::Webhook::new(&current.expose())
                .unwrap()
                .verify(b"{}", &headers)
                .is_err()
        );
    }

    #[test]
    fn another_body_timestamp_or_id_signs_differently() {
        let secrets = [spec_secret()];
        for other in [
            sign(&secrets, SPEC_ID, SPEC_TIMESTAMP, b"{}"),
            sign(&secrets, SPEC_ID, SPEC_TIMESTAMP + 1, SPEC_BODY),
            sign(&secrets, "msg_other", SPEC_TIMESTAMP, SPEC_BODY),
        ] {
            assert_ne!(other.signature, SPEC_SIGNATURE);
        }
    }
}
