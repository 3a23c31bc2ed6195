//! The dispatcher's [`TokenSource`], as configured: a static bearer token,
//! or CK1's OAuth2 refresh ([`shared::token_refresh`]) over the secret
//! ([`crate::token_vault`]), the lock item in the partner-state table
//! ([`crate::token_lock`]) and CK1's token endpoint
//! ([`crate::token_endpoint`]).
//!
//! Nothing here logs or prints a token or secret.

use std::time::Duration;

use shared::ports::{AccessToken, StaticToken, SystemClock, TokenError, TokenSource};
use shared::token_refresh::{RefreshSettings, TokenRefresh};

use crate::token_endpoint::HttpTokenEndpoint;
use crate::token_lock::DynamoRefreshLock;
use crate::token_vault::{SecretContent, SecretsVault};

/// OAuth2 access tokens from the credentials in Secrets Manager.
pub type OAuthTokens =
    TokenRefresh<SecretsVault, DynamoRefreshLock, HttpTokenEndpoint, SystemClock>;

/// The dispatcher's token source, as configured: what the secret holds.
#[derive(Debug)]
pub enum PartnerTokens {
    Static(StaticToken),
    OAuth(Box<OAuthTokens>),
}

/// Where [`PartnerTokens::from_secret`] finds what it needs.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub secret_id: String,
    /// CK1's token endpoint (needed for OAuth2 credentials).
    pub token_url: Option<String>,
    /// The partner-state table (the refresh lock).
    pub state_table: Option<String>,
    pub max_lifetime: Option<Duration>,
    pub timeout: Duration,
}

impl PartnerTokens {
    /// Reads the secret once (at start-up): OAuth2 credentials make an
    /// [`OAuthTokens`], anything else is a static bearer token.
    ///
    /// # Errors
    /// The secret cannot be read, or OAuth2 credentials come without a token
    /// URL or state table.
    pub async fn from_secret(
        aws: &aws_config::SdkConfig,
        config: &TokenConfig,
    ) -> Result<Self, TokenError> {
        let vault = SecretsVault::new(
            aws_sdk_secretsmanager::Client::new(aws),
            config.secret_id.clone(),
        );
        match vault.content().await? {
            SecretContent::Static(token) => {
                tracing::info!("partner credentials: a static bearer token");
                Ok(Self::Static(token))
            }
            SecretContent::OAuth(credentials) => {
                let (Some(token_url), Some(state_table)) = (&config.token_url, &config.state_table)
                else {
                    return Err(TokenError::Vault(
                        "OAuth2 credentials need CALLBACK_TOKEN_URL and PARTNER_STATE_TABLE".into(),
                    ));
                };
                tracing::info!(client_id = %credentials.client_id,
                    "partner credentials: OAuth2, refreshed at the token endpoint");
                let defaults = RefreshSettings::default();
                let settings = RefreshSettings {
                    max_lifetime: config.max_lifetime.unwrap_or(defaults.max_lifetime),
                    wait_for_other: config.timeout,
                    ..defaults
                };
                Ok(Self::OAuth(Box::new(TokenRefresh::new(
                    vault,
                    DynamoRefreshLock::new(aws_sdk_dynamodb::Client::new(aws), state_table)?,
                    HttpTokenEndpoint::new(token_url, config.timeout)?,
                    SystemClock,
                    settings,
                ))))
            }
        }
    }
}

impl TokenSource for PartnerTokens {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        match self {
            Self::Static(token) => token.token().await,
            Self::OAuth(tokens) => tokens.token().await,
        }
    }

    async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        match self {
            Self::Static(token) => token.refresh(rejected).await,
            Self::OAuth(tokens) => tokens.refresh(rejected).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::token_refresh::PartnerCredentials;

    #[test]
    fn debug_of_credentials_shows_no_secret() {
        let credentials = PartnerCredentials {
            client_id: "client".into(),
            client_secret: "very-secret".into(),
            refresh_token: "refresh-secret".into(),
            access_token: Some("access-secret".into()),
            access_token_expires_at: None,
        };
        let debug = format!(
            "{credentials:?} {:?} {:?} {:?}",
            SecretContent::OAuth(credentials.clone()),
            SecretContent::parse(r#"{"access_token": "access-secret"}"#),
            PartnerTokens::Static(StaticToken::new("access-secret")),
        );
        assert!(!debug.contains("very-secret") && !debug.contains("refresh-secret"));
        assert!(!debug.contains("access-secret"), "{debug}");
        assert!(debug.contains("client"), "{debug}");
    }
}
