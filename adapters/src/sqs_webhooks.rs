//! [`DeliveryQueue`] over SQS: one message per webhook delivery, its body the
//! [`DeliveryTicket`] as JSON, sent in batches of at most ten.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use shared::ports::{DeliveryQueue, QueueError};
use shared::webhook::DeliveryTicket;

/// SendMessageBatch takes at most this many entries.
const BATCH: usize = 10;

#[derive(Debug, Clone)]
pub struct SqsDeliveryQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeliveryQueue {
    #[must_use]
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl DeliveryQueue for SqsDeliveryQueue {
    async fn send(&self, tickets: &[DeliveryTicket]) -> Result<(), QueueError> {
        for batch in tickets.chunks(BATCH) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(index, ticket)| {
                    let body =
                        serde_json::to_string(ticket).map_err(|err| QueueError(err.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|err| QueueError(err.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|err| {
                    QueueError(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string())
                })?;
            // A batch is answered entry by entry: any refused one fails the
            // whole send, which the stream then retries (a delivery sent twice
            // is dropped by its claim).
            if let Some(refused) = sent.failed().first() {
                return Err(QueueError(format!(
                    "the queue refused a delivery: {}",
                    refused.message().unwrap_or(refused.code())
                )));
            }
        }
        Ok(())
    }

    async fn retry_in(&self, receipt: &str, delay: std::time::Duration) -> Result<(), QueueError> {
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
}
