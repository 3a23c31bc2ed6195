//! [`CallbackQueue`] on an SQS queue. The message body is the order number;
//! the dispatcher reads everything else from the order itself, so a message
//! can never carry stale data.

use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};

use crate::domain::OrderNumber;
use crate::error::QueueError;
use crate::ports::CallbackQueue;

/// The body of a callback message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackMessage {
    pub order_number: OrderNumber,
}

#[derive(Debug, Clone)]
pub struct SqsCallbackQueue {
    client: Client,
    queue_url: String,
}

impl SqsCallbackQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl CallbackQueue for SqsCallbackQueue {
    async fn enqueue(&self, order_number: &OrderNumber) -> Result<(), QueueError> {
        let body = serde_json::json!({ "order_number": order_number }).to_string();
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|err| QueueError(Box::new(err)))?;
        Ok(())
    }
}
