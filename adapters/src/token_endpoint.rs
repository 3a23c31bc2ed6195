//! CK1's token endpoint ([`shared::token_refresh::TokenEndpoint`]): a `POST`
//! with the client and the refresh token in the query, a PascalCase answer.
//!
//! Errors carry neither URLs (the token URL's query holds the client secret)
//! nor bodies beyond CK1's error code and message.

use std::time::Duration;

use serde::Deserialize;

use shared::ports::TokenError;
use shared::token_refresh::{Grant, PartnerCredentials, TokenEndpoint};

/// The endpoint at `token_url`.
#[derive(Debug, Clone)]
pub struct HttpTokenEndpoint {
    http: reqwest::Client,
    token_url: String,
}

impl HttpTokenEndpoint {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(token_url: impl Into<String>, timeout: Duration) -> Result<Self, TokenError> {
        let http = super::https::reqwest_builder()
            .map_err(|err| TokenError::Refresh(err.to_string()))?
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .user_agent(concat!("warehouse-callback/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| TokenError::Refresh("cannot build the HTTP client".into()))?;
        Ok(Self {
            http,
            token_url: token_url.into(),
        })
    }
}

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

impl TokenEndpoint for HttpTokenEndpoint {
    async fn refresh(&self, credentials: &PartnerCredentials) -> Result<Grant, TokenError> {
        let url = reqwest::Url::parse_with_params(
            &self.token_url,
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
                TokenError::Unreachable(if err.is_timeout() {
                    "the token endpoint did not answer in time".into()
                } else {
                    format!("could not reach the token endpoint ({})", kind(&err))
                })
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|err| {
            TokenError::Unreachable(format!("reading the token answer ({})", kind(&err)))
        })?;
        let answer = match serde_json::from_slice::<TokenAnswer>(&bytes) {
            Ok(answer) if (200..300).contains(&status) && answer.access_token.is_some() => answer,
            other if status == 408 || status >= 500 => {
                return Err(TokenError::Unreachable(refusal(
                    status,
                    other.ok().as_ref(),
                )));
            }
            other => return Err(TokenError::Refresh(refusal(status, other.ok().as_ref()))),
        };
        Ok(Grant {
            access_token: answer.access_token.unwrap_or_default(),
            expires_in: answer
                .access_token_expires_in
                .as_ref()
                .and_then(|value| {
                    value
                        .as_u64()
                        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                })
                .map(Duration::from_secs),
            refresh_token: answer.refresh_token,
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

#[cfg(test)]
mod tests {
    use super::*;

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
