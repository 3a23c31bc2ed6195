//! An endpoint's signing secret, as Standard Webhooks writes it:
//! `whsec_` followed by the base64 of the key bytes. The service generates
//! every secret, so only its own form is parsed back (from storage).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::random::{RandomnessError, fill};

const PREFIX: &str = "whsec_";
/// Key bytes of a secret the service issues: 256 bits, HMAC-SHA256's block
/// strength and more than the 24 bytes the Standard Webhooks libraries
/// generate themselves.
const KEY_BYTES: usize = 32;

/// A signing secret. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Text that is not a secret this service issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is \"whsec_\" and the base64 of {KEY_BYTES} bytes")]
pub struct NotASecret;

impl WebhookSecret {
    /// A new secret from the system's randomness.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut key = vec![0_u8; KEY_BYTES];
        fill(&mut key)?;
        Ok(Self { key })
    }

    /// Reads a secret back from its text form.
    pub fn parse(text: &str) -> Result<Self, NotASecret> {
        let key = text
            .strip_prefix(PREFIX)
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .filter(|key| key.len() == KEY_BYTES)
            .ok_or(NotASecret)?;
        Ok(Self { key })
    }

    /// `whsec_…`: shown to the endpoint's owner once, and stored.
    #[must_use]
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// A secret of other key bytes: the specification's own test vector.
    #[cfg(test)]
    pub(super) fn from_key(key: Vec<u8>) -> Self {
        Self { key }
    }

    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_reads_back_from_its_text() {
        let secret = WebhookSecret::generate().unwrap();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"), "{text}");
        assert_eq!(WebhookSecret::parse(&text), Ok(secret));
    }

    #[test]
    fn two_secrets_differ_and_neither_shows_in_debug() {
        let (one, two) = (
            WebhookSecret::generate().unwrap(),
            WebhookSecret::generate().unwrap(),
        );
        assert_ne!(one, two);
        let printed = format!("{one:?}");
        assert!(!printed.contains(&one.expose()[6..12]), "{printed}");
    }

    #[test]
    fn text_without_the_prefix_or_of_another_length_is_no_secret() {
        for text in ["", "whsec_", "c2VjcmV0", "whsec_c2VjcmV0", "whsec_!!!!"] {
            assert_eq!(WebhookSecret::parse(text), Err(NotASecret), "{text}");
        }
    }
}
