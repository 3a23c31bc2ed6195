//! Errors of the core, one enum per layer. The `adapters` crate's `api` is the
//! one place that turns them into HTTP answers.

use serde::{Deserialize, Serialize};

use crate::domain::OrderNumber;

/// One problem with a request, located by its JSON path (`receiver.country_code`,
/// `items[1].qty`, `$` for the body as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Longest piece of a client's text an answer's message quotes (an order
/// number in a path may be 10 KB long).
const MAX_QUOTED_CHARS: usize = 100;

/// `text` as an answer may quote it: at most 100 characters (`MAX_QUOTED_CHARS`).
#[must_use]
pub fn quoted(text: &str) -> String {
    clip(text.to_owned(), MAX_QUOTED_CHARS)
}

/// `text` cut to `max` characters, marked with `…` where it was cut.
pub(crate) fn clip(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text,
        Some((end, _)) => {
            let mut clipped = text;
            clipped.truncate(end);
            clipped.push('…');
            clipped
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure of the order store. Never the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, connection errors: retrying later can succeed.
    #[error("the order store is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("the order store request failed")]
    Failed(#[source] BoxError),
    /// The change would make the item larger than DynamoDB's 400 KB.
    #[error("the order has reached the storage limit of {limit} bytes")]
    ItemTooLarge { limit: usize },
    #[error("stored order {order_number} cannot be read: {reason}")]
    Corrupt {
        order_number: String,
        reason: String,
    },
}

/// The label store failed. Never the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("the label store is unavailable")]
pub struct LabelError(#[source] pub BoxError);

/// Why an order was not accepted, or not found.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the request has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("the body is {size} bytes; the limit is {limit} bytes")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("real-time validation found {} problem(s)", .0.len())]
    Unprocessable(Vec<FieldError>),
    #[error("order {0} already exists with different content")]
    Conflict(OrderNumber),
    /// The number is another client's: said without comparing anything.
    #[error("order number {0} is taken")]
    NumberTaken(OrderNumber),
    #[error("order {} does not exist", quoted(.0))]
    NotFound(String),
    #[error("client_code {body:?} is not the client of this API key")]
    ForeignClient { body: String },
    #[error(transparent)]
    Labels(#[from] LabelError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
