//! The only code that talks to AWS: implementations of [`crate::ports`].

pub mod dynamodb;
pub mod partner_http;
pub mod sqs;

pub use dynamodb::DynamoOrderStore;
pub use partner_http::HttpPartner;
pub use sqs::{CallbackMessage, SqsCallbackQueue};
