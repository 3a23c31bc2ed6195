//! The outside of the core: the only code that talks to AWS or HTTP. It
//! implements the core's [`shared::ports`], and holds what every function
//! needs at its edge (HTTP answers, log set-up).
//!
//! # Where to change what
//!
//! | to change… | look in |
//! | --- | --- |
//! | how an order is stored in DynamoDB (item layout, conditions, the outbox columns, claims) | [`dynamodb`] |
//! | the polling indexes' queries (change feed, callback-status index) | `dynamodb_feed.rs` |
//! | the API key table | [`dynamodb_keys`] |
//! | an order's state read from a stream image (what webhook events are made from) | [`dynamodb_state`] |
//! | webhook endpoints, deliveries and the event log (one table) | [`dynamodb_webhooks`] |
//! | the webhook delivery queue (one message per delivery) | [`sqs_webhooks`] |
//! | posting a signed webhook: no redirects, every resolved address checked | [`webhook_http`] |
//! | the circuit breaker's item | [`breaker_dynamodb`] |
//! | label objects (PutObject, presigned links) | [`s3`] |
//! | consumed-capacity metrics | [`capacity`] |
//! | metric lines (CloudWatch EMF), the one place that writes them | [`emf`] |
//! | the HTTPS client the SDK and the partner client share (rustls, roots); every AWS call's budget (timeouts, retries) | [`https`] |
//! | posting a callback to the partner | [`partner_http`] |
//! | the partner's token source as configured (static or OAuth2) | [`partner_tokens`] |
//! | the partner's credentials in Secrets Manager; the refresh lock item; CK1's token endpoint | [`token_vault`], [`token_lock`], [`token_endpoint`] |
//! | the callback queue: its message body, retry delays, moves to the dead-letter queue | [`sqs`] |
//! | status codes, the `{code, data, message}` envelope, reading request headers; the HTTP functions' answer deadline | [`api`] |
//! | a consistent read of one item; telling a refused call (a failed condition) from a failed one | [`sdk`] |
//! | log format and levels | [`logging`] |
//! | reading a function's settings from its environment (every problem listed) | [`settings`] |
//! | a function's cold start: logs, settings, SDK clients | [`startup`] |

pub mod api;
pub mod breaker_dynamodb;
pub mod capacity;
pub mod dynamodb;
mod dynamodb_due;
mod dynamodb_feed;
pub mod dynamodb_keys;
pub mod dynamodb_state;
pub mod dynamodb_webhooks;
pub mod emf;
pub mod https;
pub mod invocation;
pub mod logging;
pub mod partner_http;
pub mod partner_tokens;
pub mod s3;
pub mod sdk;
pub mod settings;
pub mod sqs;
pub mod sqs_webhooks;
pub mod startup;
pub mod token_endpoint;
pub mod token_lock;
pub mod token_vault;
pub mod webhook_http;

pub use breaker_dynamodb::DynamoBreakerStore;
pub use dynamodb::DynamoOrderStore;
pub use dynamodb_keys::DynamoKeyStore;
pub use partner_http::HttpPartner;
pub use partner_tokens::{OAuthTokens, PartnerTokens, TokenConfig};
pub use s3::S3LabelStore;
pub use sqs::{CallbackMessage, DEAD_LETTERED_ATTRIBUTE, SqsCallbackQueue};
pub use token_vault::SecretContent;
