//! The partner's credentials in one Secrets Manager secret
//! ([`shared::token_refresh::TokenVault`]), and what a secret may hold.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use shared::ports::{StaticToken, TokenError};
use shared::token_refresh::{PartnerCredentials, TokenVault};

/// What the secret holds: OAuth2 credentials, or a plain bearer token.
#[derive(Debug)]
pub enum SecretContent {
    OAuth(PartnerCredentials),
    Static(StaticToken),
}

impl SecretContent {
    /// JSON with a `refresh_token` is OAuth2; anything else is the bearer token
    /// itself (the setting before OAuth2), or `{"access_token": …}`.
    #[must_use]
    pub fn parse(secret: &str) -> Self {
        if let Ok(credentials) = serde_json::from_str::<PartnerCredentials>(secret) {
            return Self::OAuth(credentials);
        }
        #[derive(Deserialize)]
        struct Bearer {
            access_token: String,
        }
        match serde_json::from_str::<Bearer>(secret) {
            Ok(bearer) => Self::Static(StaticToken::new(bearer.access_token)),
            Err(_) => Self::Static(StaticToken::new(secret.trim())),
        }
    }
}

/// The secret `secret_id`.
#[derive(Debug, Clone)]
pub struct SecretsVault {
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsVault {
    pub fn new(secrets: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            secrets,
            secret_id: secret_id.into(),
        }
    }

    /// What the secret holds now.
    ///
    /// # Errors
    /// The secret cannot be read.
    pub async fn content(&self) -> Result<SecretContent, TokenError> {
        let secret = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|err| {
                if transient(&err) {
                    TokenError::Unavailable(context("reading the secret", &err))
                } else {
                    failed("reading the secret", &err)
                }
            })?;
        Ok(SecretContent::parse(
            secret.secret_string().unwrap_or_default(),
        ))
    }
}

impl TokenVault for SecretsVault {
    async fn read(&self) -> Result<PartnerCredentials, TokenError> {
        match self.content().await? {
            SecretContent::OAuth(credentials) => Ok(credentials),
            SecretContent::Static(_) => Err(TokenError::Vault(
                "the secret no longer holds OAuth2 credentials".into(),
            )),
        }
    }

    async fn write(&self, credentials: &PartnerCredentials) -> Result<(), TokenError> {
        let json =
            serde_json::to_string(credentials).map_err(|err| TokenError::Vault(err.to_string()))?;
        // Idempotent when the SDK retries the same write.
        let request_token = shared::hex::encode(&Sha256::digest(json.as_bytes()));
        self.secrets
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(json)
            .client_request_token(&request_token[..64])
            .send()
            .await
            .map_err(|err| failed("writing the refreshed token back", &err))?;
        Ok(())
    }
}

/// A failed Secrets Manager call, with the SDK's context (never the secret).
fn failed(doing: &str, err: &impl std::error::Error) -> TokenError {
    TokenError::Vault(context(doing, err))
}

fn context(doing: &str, err: &impl std::error::Error) -> String {
    format!(
        "{doing}: {}",
        aws_sdk_secretsmanager::error::DisplayErrorContext(err)
    )
}

/// Whether a call may succeed when simply made again: throttled, failed on
/// Secrets Manager's side, or unanswered (past the SDK's own retries).
fn transient<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some("ThrottlingException" | "InternalServiceError" | "InternalFailure")
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_string_secret_is_a_static_token() {
        assert!(matches!(
            SecretContent::parse("abc123\n"),
            SecretContent::Static(_)
        ));
    }

    #[test]
    fn json_with_a_refresh_token_is_oauth() {
        let content =
            SecretContent::parse(r#"{"client_id":"c","client_secret":"s","refresh_token":"r"}"#);
        assert!(matches!(content, SecretContent::OAuth(c) if c.refresh_token == "r"));
    }
}
