//! The local stack: what `make run` and the integration tests use to run the
//! Lambda functions on a developer machine, against DynamoDB Local and the SQS
//! emulator started by `infra/local/emulators.sh`.
//!
//! - [`template`] reads the tables, queues and pipes out of `infra/template.yaml`;
//! - [`provision`] creates them on the emulators under a name prefix;
//! - [`sqs_poller`] plays the SQS event source mappings (the callback and the
//!   webhook dispatchers); [`stream_reader`] reads the orders table's stream
//!   for its two readers: [`outbox_pipe`] plays the EventBridge pipe to the
//!   callback queue, [`stream_mapping`] the Lambda event source mapping to the
//!   webhook fan-out;
//! - [`gateway`] plays API Gateway: HTTP in, a v2 event through `lambda_http`,
//!   the function's handler, HTTP out;
//! - [`rearm`] re-arms, on `make run`'s start, the callbacks whose queue
//!   messages the SQS emulator lost when it stopped;
//! - [`receiver`] is an ERP's webhook endpoint on this machine, verifying
//!   with the `standardwebhooks` crate (`webhook-receiver`);
//! - [`Stack`] wires the functions to provisioned resources; [`log`] is
//!   `make run`'s log filter.

pub mod gateway;
pub mod log;
pub mod outbox_pipe;
pub mod partner;
pub mod provision;
pub mod rearm;
pub mod receiver;
pub mod sqs_poller;
pub mod stack;
pub mod stream_mapping;
pub mod stream_reader;
pub mod template;

pub use stack::Stack;

/// What can go wrong while setting up the local stack.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("infra/template.yaml: {0}")]
    Template(String),
    #[error("emulator request failed: {0}")]
    Aws(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Config(#[from] shared::config::ConfigError),
    /// A function run by a local event source failed a record or panicked.
    #[error("{0}")]
    Function(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    fn aws(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Aws(Box::new(err))
    }
}
