//! [`TokenSource`] for CK1's OAuth2: the credentials live in one Secrets
//! Manager secret as JSON; access tokens are refreshed at CK1's token endpoint
//! and written back so every dispatcher uses the newest pair.
//!
//! - **Per warm instance** the token is cached; a `tokio::sync::Mutex` held
//!   across a refresh makes refreshes single-flight within the process.
//! - **Across instances** a lock item in the partner-state table (a
//!   conditional `PutItem` with a short lease) lets one dispatcher refresh at
//!   a time. A lock, not a conditional write on the secret: Secrets Manager has
//!   no compare-and-set, and the race that matters happens *before* the write,
//!   at the token endpoint. When CK1 rotates refresh tokens, a second
//!   dispatcher that spent the same refresh token would get an error (or
//!   invalidate the first one's pair). So the lock holder re-reads the secret
//!   first and refreshes only if nobody did meanwhile; a dispatcher that finds
//!   the lock taken waits for the new token to appear in the secret.
//! - **Expiry.** `AccessTokenExpiresIn`'s unit is not documented (seconds?
//!   minutes?): it is read as seconds, the shorter reading, so a token is
//!   refreshed early rather than late, and at most `max_lifetime` after it was
//!   issued; a 401 refreshes it anyway.
//!
//! Nothing here logs or prints a token or secret: [`PartnerCredentials`] has
//! a redacting `Debug`, and errors carry neither URLs (the token URL's query
//! holds the client secret) nor bodies beyond CK1's error code and message.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use shared::ports::{AccessToken, StaticToken, TokenError, TokenSource};

/// The secret's JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// When to stop using `access_token` (already early: see the module doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PartnerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerCredentials")
            .field("client_id", &self.client_id)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish_non_exhaustive()
    }
}

impl PartnerCredentials {
    /// The stored access token, if it is still good at `now`.
    fn fresh_token(&self, now: DateTime<Utc>) -> Option<Cached> {
        let token = self.access_token.as_ref()?;
        let expires_at = self.access_token_expires_at?;
        (expires_at > now).then(|| Cached {
            token: AccessToken::new(token.clone()),
            expires_at,
        })
    }
}

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

#[derive(Debug, Clone)]
struct Cached {
    token: AccessToken,
    expires_at: DateTime<Utc>,
}

/// Tunables of [`OAuthTokens`].
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub token_url: String,
    /// The longest an access token is used, whatever its `ExpiresIn` says.
    pub max_lifetime: Duration,
    /// How long the cross-instance refresh lock is held at most.
    pub lock_lease: Duration,
    /// How long a dispatcher waits for another one's refresh.
    pub wait_for_other: Duration,
    pub timeout: Duration,
}

impl OAuthSettings {
    #[must_use]
    pub fn new(token_url: impl Into<String>) -> Self {
        Self {
            token_url: token_url.into(),
            max_lifetime: Duration::from_secs(12 * 3600),
            lock_lease: Duration::from_secs(30),
            wait_for_other: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// OAuth2 access tokens from the credentials in Secrets Manager.
#[derive(Debug)]
pub struct OAuthTokens {
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    dynamodb: aws_sdk_dynamodb::Client,
    state_table: String,
    http: reqwest::Client,
    settings: OAuthSettings,
    /// This instance's name on the lock item.
    owner: String,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

/// The lock item's key in the partner-state table.
const LOCK_ID: &str = "token-refresh-lock";

/// CK1's token answer (PascalCase).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    access_token_expires_in: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
    message: Option<String>,
    #[serde(default)]
    errors: Vec<TokenAnswerError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TokenAnswerError {
    code: Option<String>,
    message: Option<String>,
}

impl OAuthTokens {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        dynamodb: aws_sdk_dynamodb::Client,
        state_table: impl Into<String>,
        settings: OAuthSettings,
    ) -> Result<Self, TokenError> {
        let http = super::https::reqwest_builder()
            .map_err(|err| TokenError::Refresh(err.to_string()))?
            .connect_timeout(settings.timeout.min(Duration::from_secs(3)))
            .timeout(settings.timeout)
            .user_agent(concat!("warehouse-callback/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| TokenError::Refresh("cannot build the HTTP client".into()))?;
        let mut random = [0_u8; 8];
        getrandom::fill(&mut random).map_err(|err| TokenError::Refresh(err.to_string()))?;
        Ok(Self {
            secrets,
            secret_id: secret_id.into(),
            dynamodb,
            state_table: state_table.into(),
            http,
            settings,
            owner: shared::hex::encode(&random),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The secret's credentials (OAuth2 only).
    async fn read(&self) -> Result<PartnerCredentials, TokenError> {
        let secret = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|err| {
                TokenError::Vault(format!(
                    "reading the secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&err)
                ))
            })?;
        match SecretContent::parse(secret.secret_string().unwrap_or_default()) {
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
            .map_err(|err| {
                TokenError::Vault(format!(
                    "writing the refreshed token back: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&err)
                ))
            })?;
        Ok(())
    }

    /// Takes the fleet-wide refresh lock; `false` when another instance holds it.
    async fn lock(&self) -> Result<bool, TokenError> {
        let now = Utc::now();
        let until = now
            + chrono::Duration::from_std(self.settings.lock_lease)
                .unwrap_or(chrono::Duration::seconds(30));
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.state_table)
            .item("id", AttributeValue::S(LOCK_ID.into()))
            .item("owner", AttributeValue::S(self.owner.clone()))
            .item("until", AttributeValue::N(until.timestamp().to_string()))
            .condition_expression("attribute_not_exists(id) OR #until < :now OR #owner = :me")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(TokenError::Vault(format!(
                "taking the refresh lock: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&err)
            ))),
        }
    }

    async fn unlock(&self) {
        let result = self
            .dynamodb
            .delete_item()
            .table_name(&self.state_table)
            .key("id", AttributeValue::S(LOCK_ID.into()))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        if let Err(err) = result {
            // It expires by itself.
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err),
                "could not release the token refresh lock");
        }
    }

    /// A token newer than `stale` (or any good one when `stale` is `None`):
    /// from the secret if another instance refreshed, else refreshed here
    /// under the fleet-wide lock. The caller holds the instance's mutex.
    async fn renew(&self, stale: Option<&AccessToken>) -> Result<Cached, TokenError> {
        let replaced = |credentials: &PartnerCredentials| {
            credentials
                .fresh_token(Utc::now())
                .filter(|cached| stale.is_none_or(|stale| cached.token != *stale))
        };
        let deadline = tokio::time::Instant::now() + self.settings.wait_for_other;
        loop {
            let credentials = self.read().await?;
            if let Some(cached) = replaced(&credentials) {
                return Ok(cached);
            }
            if self.lock().await? {
                // Read again under the lock: the holder before us may have
                // written a new pair between our read and our lock.
                let result = match self.read().await {
                    Ok(credentials) => match replaced(&credentials) {
                        Some(cached) => Ok(cached),
                        None => self.refresh_at_partner(credentials).await,
                    },
                    Err(err) => Err(err),
                };
                self.unlock().await;
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::Refresh(
                    "another dispatcher is refreshing the token and has not finished".into(),
                ));
            }
            tracing::info!("another dispatcher is refreshing the partner token; waiting for it");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Spends the refresh token at CK1 and stores what comes back.
    async fn refresh_at_partner(
        &self,
        mut credentials: PartnerCredentials,
    ) -> Result<Cached, TokenError> {
        let url = reqwest::Url::parse_with_params(
            &self.settings.token_url,
            &[
                ("client_id", credentials.client_id.as_str()),
                ("client_secret", credentials.client_secret.as_str()),
                ("grant_type", "refresh_token"),
                ("refresh_token", credentials.refresh_token.as_str()),
            ],
        )
        .map_err(|_| TokenError::Refresh("the token URL is not a URL".into()))?;
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .map_err(|err| {
                TokenError::Refresh(if err.is_timeout() {
                    "the token endpoint did not answer in time".into()
                } else {
                    format!("could not reach the token endpoint ({})", kind(&err))
                })
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|err| {
            TokenError::Refresh(format!("reading the token answer ({})", kind(&err)))
        })?;
        let answer = match serde_json::from_slice::<TokenAnswer>(&bytes) {
            Ok(answer) if (200..300).contains(&status) && answer.access_token.is_some() => answer,
            other => return Err(TokenError::Refresh(refusal(status, other.ok().as_ref()))),
        };
        let access_token = answer.access_token.clone().unwrap_or_default();
        let now = Utc::now();
        let lifetime = answer
            .access_token_expires_in
            .as_ref()
            .and_then(|value| {
                value
                    .as_u64()
                    .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .map_or(self.settings.max_lifetime, Duration::from_secs)
            .min(self.settings.max_lifetime);
        // Refresh ahead: after 80 % of the lifetime.
        let ahead = lifetime.mul_f64(0.8);
        let expires_at =
            now + chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::seconds(60));
        credentials.access_token = Some(access_token.clone());
        credentials.access_token_expires_at = Some(expires_at);
        if let Some(refresh_token) = answer.refresh_token.filter(|t| !t.is_empty()) {
            credentials.refresh_token = refresh_token;
        }
        if let Err(err) = self.write(&credentials).await {
            // The new pair lives in this instance only: if the refresh token
            // rotated, the next refresh elsewhere fails until an operator acts.
            tracing::error!(error = %err, "the refreshed partner token could not be stored");
            return Err(err);
        }
        tracing::info!(expires_at = %expires_at, lifetime_s = lifetime.as_secs(),
            "partner access token refreshed and stored");
        Ok(Cached {
            token: AccessToken::new(access_token),
            expires_at,
        })
    }
}

/// What a refused refresh said, without any credential.
fn refusal(status: u16, answer: Option<&TokenAnswer>) -> String {
    let mut text = format!("the token endpoint answered HTTP {status}");
    if let Some(answer) = answer {
        let first = answer.errors.first();
        let code = answer
            .code
            .as_ref()
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
            .or_else(|| first.and_then(|e| e.code.clone()));
        let message = answer
            .message
            .clone()
            .or_else(|| first.and_then(|e| e.message.clone()));
        if let Some(code) = code {
            text.push_str(&format!(" (code {code})"));
        }
        if let Some(message) = message {
            text.push_str(": ");
            text.extend(message.chars().take(200));
        }
    }
    if (200..300).contains(&status) {
        text.push_str(" without an AccessToken");
    }
    text
}

/// What kind of transport error, without the URL (its query holds secrets).
fn kind(err: &reqwest::Error) -> &'static str {
    if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "bad answer"
    } else {
        "request failed"
    }
}

impl TokenSource for OAuthTokens {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| c.expires_at > Utc::now()) {
            return Ok(cached.token.clone());
        }
        let fresh = self.renew(None).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, TokenError> {
        let mut cache = self.cache.lock().await;
        // Another task of this instance already replaced it.
        if let Some(cached) = cache
            .as_ref()
            .filter(|c| c.token != *rejected && c.expires_at > Utc::now())
        {
            return Ok(cached.token.clone());
        }
        *cache = None;
        let fresh = self.renew(Some(rejected)).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }
}

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
        let secrets = aws_sdk_secretsmanager::Client::new(aws);
        let secret = secrets
            .get_secret_value()
            .secret_id(&config.secret_id)
            .send()
            .await
            .map_err(|err| {
                TokenError::Vault(format!(
                    "reading the secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&err)
                ))
            })?;
        match SecretContent::parse(secret.secret_string().unwrap_or_default()) {
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
                let mut settings = OAuthSettings::new(token_url.clone());
                settings.timeout = config.timeout;
                settings.wait_for_other = config.timeout;
                if let Some(max) = config.max_lifetime {
                    settings.max_lifetime = max;
                }
                Ok(Self::OAuth(Box::new(OAuthTokens::new(
                    secrets,
                    config.secret_id.clone(),
                    aws_sdk_dynamodb::Client::new(aws),
                    state_table.clone(),
                    settings,
                )?)))
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

    #[test]
    fn a_refusal_names_the_code_and_message_only() {
        let answer: TokenAnswer =
            serde_json::from_str(r#"{"Code":"invalid_grant","Message":"refresh token expired"}"#)
                .unwrap();
        assert_eq!(
            refusal(400, Some(&answer)),
            "the token endpoint answered HTTP 400 (code invalid_grant): refresh token expired"
        );
    }
}
