//! A local stand-in for Lambda's SQS event source mapping: receives a batch,
//! hands it to the function as the `SqsEvent` Lambda would send, and deletes
//! what the function did not report as failed (`ReportBatchItemFailures`).
//!
//! Running the real handler through the same batch contract as in AWS is the
//! point: redelivery, visibility changes and redrive to the DLQ then behave
//! locally as they do deployed.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::Engine as _;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::Error;

/// A function as the event source mapping sees it: a batch in, the failed
/// items out.
pub type SqsFunction =
    Arc<dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync>;

/// DeleteMessageBatch takes at most this many entries.
const DELETE_CHUNK: usize = 10;

/// Pause after a failed poll, so an emulator that is down is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Which queue to poll and how, as the event source mapping is configured.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub queue_url: String,
    pub queue_arn: String,
    /// Messages per batch (ReceiveMessage caps it at 10).
    pub batch_size: i32,
    /// Long-polling wait; short so that a stopping stack is not held up.
    pub wait_time_seconds: i32,
    pub region: String,
    /// Batches handled at once: the event source's `MaximumConcurrency`, so
    /// one slow answer holds up only its own batch, as in AWS.
    pub concurrency: usize,
    /// Overrides the queue's visibility timeout for received messages
    /// (`make soak`: a killed dispatcher's batch comes back sooner, as its
    /// retry schedule is compressed too); `None` keeps the template's.
    pub visibility_timeout: Option<i32>,
}

impl PollerConfig {
    /// A config with the mapping's defaults: batches of 10, 1 s long polls,
    /// one batch at a time.
    pub fn new(
        queue_url: impl Into<String>,
        queue_arn: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            queue_url: queue_url.into(),
            queue_arn: queue_arn.into(),
            batch_size: 10,
            wait_time_seconds: 1,
            region: region.into(),
            concurrency: 1,
            visibility_timeout: None,
        }
    }

    /// Handles up to `concurrency` batches at once.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }
}

/// Polls forever, until the task is dropped, handling up to
/// `config.concurrency` batches at once, as the mapping's maximum
/// concurrency allows. One receive is out at a time, and only while a
/// handler is free: a queue at rest costs one long poll a second whatever the
/// concurrency (20 webhook dispatchers idle like one), and a backlog is
/// received as fast as batches finish. Errors are logged, never fatal: a
/// local stack should outlive a hiccup.
pub async fn run(sqs: aws_sdk_sqs::Client, config: PollerConfig, function: SqsFunction) {
    run_until(sqs, config, function, std::future::pending()).await;
}

/// [`run`] until `stop` completes, then returns once the batches in hand
/// are handled. It stops between receives, never during one: a long poll
/// dropped on the client's side still takes the messages that arrive while
/// the emulator waits, and hides them for the visibility timeout (a test
/// that aborted its poller and queued more lost one message so).
pub async fn run_until(
    sqs: aws_sdk_sqs::Client,
    config: PollerConfig,
    function: SqsFunction,
    stop: impl Future<Output = ()>,
) {
    let free = Arc::new(Semaphore::new(config.concurrency));
    let config = Arc::new(config);
    let mut stop = std::pin::pin!(stop);
    loop {
        let handler = tokio::select! {
            biased;
            () = &mut stop => break,
            handler = Arc::clone(&free).acquire_owned() => match handler {
                Ok(handler) => handler,
                Err(_) => return,
            },
        };
        match receive(&sqs, &config).await {
            // With long polling the receive itself paces the loop; without
            // it, an empty queue would turn this into a busy loop.
            Ok(messages) if messages.is_empty() => {
                if config.wait_time_seconds == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(messages) => {
                let (sqs, config, function) =
                    (sqs.clone(), Arc::clone(&config), Arc::clone(&function));
                tokio::spawn(async move {
                    let _handler = handler;
                    if let Err(err) = handle(&sqs, &config, &function, &messages).await {
                        tracing::warn!(queue = %config.queue_url, error = %DisplayErrorContext(&err), "SQS delete failed");
                    }
                });
            }
            Err(err) => {
                tracing::warn!(queue = %config.queue_url, error = %DisplayErrorContext(&err), "SQS poll failed");
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    // Every handler free again: the batches in hand are handled.
    let all = u32::try_from(config.concurrency).unwrap_or(u32::MAX);
    let _handled = free.acquire_many(all).await;
}

/// One receive and its batch, handled: what a test drives step by step.
/// Returns how many messages the batch had (0: nothing came in the long poll).
pub async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    config: &PollerConfig,
    function: &SqsFunction,
) -> Result<usize, Error> {
    let messages = receive(sqs, config).await?;
    if !messages.is_empty() {
        handle(sqs, config, function, &messages).await?;
    }
    Ok(messages.len())
}

/// One ReceiveMessage: up to a batch, waiting up to the long-poll time,
/// with the messages' system attributes, as the mapping receives.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    config: &PollerConfig,
) -> Result<Vec<Message>, Error> {
    let received = sqs
        .receive_message()
        .queue_url(&config.queue_url)
        .max_number_of_messages(config.batch_size)
        .wait_time_seconds(config.wait_time_seconds)
        .set_visibility_timeout(config.visibility_timeout)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(Error::aws)?;
    Ok(received.messages.unwrap_or_default())
}

/// Runs `function` on a received batch (never empty: Lambda never invokes a
/// function with an empty batch) and deletes the messages it handled.
async fn handle(
    sqs: &aws_sdk_sqs::Client,
    config: &PollerConfig,
    function: &SqsFunction,
    messages: &[Message],
) -> Result<(), Error> {
    let event = sqs_event(messages, config)?;
    // Spawned so that a panicking handler fails its batch instead of the
    // poller; the call itself is inside the task too, in case it panics
    // before returning its future.
    let handler = Arc::clone(function);
    let failures = match tokio::spawn(async move { handler(event).await }).await {
        Ok(response) => response
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect::<Vec<_>>(),
        Err(err) => {
            tracing::warn!(queue = %config.queue_url, error = %err, "the SQS handler panicked; the whole batch failed");
            return Ok(());
        }
    };

    let ids: Vec<String> = messages
        .iter()
        .map(|message| message.message_id().unwrap_or_default().to_owned())
        .collect();
    let Some(handled) = to_delete(&ids, &failures) else {
        tracing::warn!(
            queue = %config.queue_url,
            ?failures,
            "batchItemFailures names an empty or unknown itemIdentifier; the whole batch failed"
        );
        return Ok(());
    };
    let handled: HashSet<String> = handled.into_iter().collect();
    let receipts: Vec<&str> = messages
        .iter()
        .filter(|message| message.message_id().is_some_and(|id| handled.contains(id)))
        .filter_map(Message::receipt_handle)
        .collect();
    delete(sqs, config, &receipts).await
}

/// The message ids to delete, given the batch's ids and the identifiers the
/// function reported as failed; `None` when the report is invalid (an empty
/// identifier or one not in the batch), which Lambda treats as the whole
/// batch failing.
fn to_delete(received: &[String], failures: &[String]) -> Option<Vec<String>> {
    if failures
        .iter()
        .any(|failed| failed.is_empty() || !received.contains(failed))
    {
        return None;
    }
    Some(
        received
            .iter()
            .filter(|id| !id.is_empty() && !failures.contains(id))
            .cloned()
            .collect(),
    )
}

/// Deletes the messages of `receipts` (their function settled them), ten a
/// request.
pub async fn delete(
    sqs: &aws_sdk_sqs::Client,
    config: &PollerConfig,
    receipts: &[&str],
) -> Result<(), Error> {
    for chunk in receipts.chunks(DELETE_CHUNK) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(index, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(*receipt)
                    .build()
                    .map_err(Error::aws)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = sqs
            .delete_message_batch()
            .queue_url(&config.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(Error::aws)?;
        // A message that cannot be deleted comes back later: worth a warning,
        // not worth failing the poll over.
        for failed in output.failed() {
            tracing::warn!(
                queue = %config.queue_url,
                code = failed.code(),
                message = failed.message().unwrap_or_default(),
                "could not delete a handled message"
            );
        }
    }
    Ok(())
}

/// The event Lambda would send for `messages`, built from its documented JSON
/// shape because the `aws_lambda_events` structs are `#[non_exhaustive]`.
pub fn sqs_event(messages: &[Message], config: &PollerConfig) -> Result<SqsEvent, Error> {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|message| sqs_record(message, config))
        .collect();
    serde_json::from_value(json!({ "Records": records })).map_err(|err| {
        Error::Template(format!(
            "the local SQS poller built an invalid event: {err}"
        ))
    })
}

fn sqs_record(message: &Message, config: &PollerConfig) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
        .collect();
    let base64 = |blob: &aws_sdk_sqs::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    let message_attributes: serde_json::Map<String, serde_json::Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let attribute = json!({
                "stringValue": value.string_value(),
                "binaryValue": value.binary_value().map(base64),
                "stringListValues": value.string_list_values(),
                "binaryListValues": value.binary_list_values().iter().map(base64).collect::<Vec<_>>(),
                "dataType": value.data_type(),
            });
            (name.clone(), attribute)
        })
        .collect();
    let mut record = json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": config.queue_arn,
        "awsRegion": config.region,
    });
    // Lambda includes it only when the message has attributes.
    if let (Some(md5), Some(fields)) = (message.md5_of_message_attributes(), record.as_object_mut())
    {
        fields.insert("md5OfMessageAttributes".to_owned(), json!(md5));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn deletes_everything_when_nothing_failed() {
        assert_eq!(to_delete(&ids(&["a", "b"]), &[]), Some(ids(&["a", "b"])));
    }

    #[test]
    fn keeps_the_reported_failures() {
        assert_eq!(
            to_delete(&ids(&["a", "b", "c"]), &ids(&["b", "b"])),
            Some(ids(&["a", "c"]))
        );
        assert_eq!(to_delete(&ids(&["a"]), &ids(&["a"])), Some(vec![]));
    }

    #[test]
    fn an_empty_or_unknown_identifier_fails_the_whole_batch() {
        assert_eq!(to_delete(&ids(&["a", "b"]), &ids(&["a", ""])), None);
        assert_eq!(to_delete(&ids(&["a", "b"]), &ids(&["z"])), None);
    }

    #[test]
    fn builds_the_records_lambda_sends() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body(r#"{"orderId":"o-1"}"#)
            .md5_of_body("md5")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .build();
        let config = PollerConfig::new(
            "http://localhost/q",
            "arn:aws:sqs:eu-west-1:000000000000:q",
            "eu-west-1",
        );
        let event = sqs_event(&[message], &config).expect("a valid event");
        let record = &event.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(record.receipt_handle.as_deref(), Some("r-1"));
        assert_eq!(record.body.as_deref(), Some(r#"{"orderId":"o-1"}"#));
        assert_eq!(record.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(record.attributes["SentTimestamp"], "1700000000000");
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some(config.queue_arn.as_str())
        );
        assert_eq!(record.aws_region.as_deref(), Some("eu-west-1"));
    }
}
