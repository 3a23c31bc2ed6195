//! The callback queue: its message body and [`SqsCallbackQueue`], the
//! [`CallbackQueue`] port over SQS. The outbox (the orders table's stream,
//! through an EventBridge Pipe) writes the message; the dispatcher reads it.
//! It names the order and the callback generation only: the dispatcher reads
//! everything else from the order itself, so a message never carries stale data.

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use serde::{Deserialize, Deserializer};

use shared::domain::OrderNumber;
use shared::ports::{CallbackQueue, QueueError};

/// The message attribute on what the dispatcher moves to the dead-letter
/// queue: a message that carries it and arrives on the callback queue again
/// was redriven by an operator.
pub const DEAD_LETTERED_ATTRIBUTE: &str = "dead_lettered_by";

/// The callback queue and its dead-letter queue, over SQS.
#[derive(Debug, Clone)]
pub struct SqsCallbackQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    dead_letter_queue_url: String,
}

impl SqsCallbackQueue {
    #[must_use]
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            dead_letter_queue_url: dead_letter_queue_url.into(),
        }
    }
}

impl CallbackQueue for SqsCallbackQueue {
    async fn retry_in(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string()))
    }

    async fn dead_letter(&self, body: &str) -> Result<(), QueueError> {
        let marker = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("callback-dispatch")
            .build()
            .map_err(|err| QueueError(err.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(body)
            .message_attributes(DEAD_LETTERED_ATTRIBUTE, marker)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string()))
    }
}

/// The body of a callback message:
/// `{"order_number": "…", "generation": "3"}` (the pipe's input template
/// writes the generation as a string; a number is accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallbackMessage {
    pub order_number: OrderNumber,
    #[serde(deserialize_with = "generation")]
    pub generation: u64,
}

fn generation<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Generation {
        Number(u64),
        Text(String),
    }
    match Generation::deserialize(deserializer)? {
        Generation::Number(number) => Ok(number),
        Generation::Text(text) => text
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("generation {text:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pipes_message_and_refuses_one_without_its_generation() {
        let piped: CallbackMessage =
            serde_json::from_str(r#"{"order_number":"o-1","generation":"3"}"#).unwrap();
        assert_eq!(piped.generation, 3);
        let number: CallbackMessage =
            serde_json::from_str(r#"{"order_number":"o-1","generation":3}"#).unwrap();
        assert_eq!(number.generation, 3);
        assert!(serde_json::from_str::<CallbackMessage>(r#"{"order_number":"o-1"}"#).is_err());
        assert!(
            serde_json::from_str::<CallbackMessage>(r#"{"order_number":"o-1","generation":"x"}"#)
                .is_err()
        );
    }
}
