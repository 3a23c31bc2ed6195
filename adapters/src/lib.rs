//! The outside of the core: the only code that talks to AWS or HTTP.
//!
//! - Implementations of [`shared::ports`]: [`dynamodb`] (orders; polling's
//!   feed in `dynamodb_feed`), [`dynamodb_keys`] (API keys),
//!   [`breaker_dynamodb`] (the callback circuit breaker), [`s3`] (labels),
//!   [`partner_http`] (callbacks to the partner) and [`partner_tokens`]
//!   (its OAuth2 tokens, credentials from Secrets Manager).
//! - [`https`]: the one HTTPS client (reqwest on rustls) the SDK and the
//!   partner client share; [`capacity`]: consumed DynamoDB capacity as EMF.
//! - [`sqs`]: the callback queue's message.
//! - [`api`]: the one place that turns core errors into HTTP status codes and
//!   the `{code, data, message}` envelope.
//! - [`logging`]: the functions' log set-up.

pub mod api;
pub mod breaker_dynamodb;
pub mod capacity;
pub mod dynamodb;
mod dynamodb_feed;
pub mod dynamodb_keys;
pub mod https;
pub mod logging;
pub mod partner_http;
pub mod partner_tokens;
pub mod s3;
pub mod sqs;

pub use breaker_dynamodb::DynamoBreakerStore;
pub use dynamodb::DynamoOrderStore;
pub use dynamodb_keys::DynamoKeyStore;
pub use partner_http::HttpPartner;
pub use partner_tokens::{
    OAuthSettings, OAuthTokens, PartnerCredentials, PartnerTokens, SecretContent, TokenConfig,
};
pub use s3::S3LabelStore;
pub use sqs::CallbackMessage;
