//! The only code that talks to AWS: implementations of [`crate::ports`].

pub mod dynamodb;

pub use dynamodb::DynamoOrderStore;
