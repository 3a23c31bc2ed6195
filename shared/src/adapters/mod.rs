//! The only code that talks to AWS: implementations of [`crate::ports`].

pub mod breaker_dynamodb;
pub mod capacity;
pub mod dynamodb;
mod dynamodb_feed;
pub mod dynamodb_keys;
pub mod https;
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
