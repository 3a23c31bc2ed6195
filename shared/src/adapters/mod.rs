//! The only code that talks to AWS: implementations of [`crate::ports`].

pub mod dynamodb;
mod dynamodb_feed;
pub mod dynamodb_keys;
pub mod https;
pub mod partner_http;
pub mod sqs;

pub use dynamodb::DynamoOrderStore;
pub use dynamodb_keys::DynamoKeyStore;
pub use partner_http::HttpPartner;
pub use sqs::CallbackMessage;
