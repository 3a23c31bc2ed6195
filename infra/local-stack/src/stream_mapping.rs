//! A local stand-in for a Lambda event source mapping on a table's stream
//! (the template's `WebhookOrderChanges`: the orders stream to the webhook
//! fan-out), as [`crate::sqs_poller`] stands in for the SQS ones.
//!
//! The [`StreamReader`] reads the stream beside the outbox pipe, with its
//! own positions; this hands each shard's records to the function in
//! batches of the mapping's `BatchSize`, as the DynamoDB stream `Event`
//! Lambda sends (old and new images). With `ReportBatchItemFailures` the
//! function names the records that failed: the shard's position stays before
//! the first of them, and the next pump hands the batch over again from it,
//! as Lambda does. After `MaximumRetryAttempts` tries the batch's range goes
//! to the `OnFailure` queue (Lambda's message: shard and sequence numbers)
//! and the reader moves on.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::Record;
use serde_json::{Value, json};

use crate::Error;
use crate::provision::Provisioned;
use crate::stream_reader::{Consumer, Cursor, ReaderConfig, StreamReader, record_json};
use crate::template::{MappingSource, MappingSpec, Template};

/// The template's mapping from the orders stream to the webhook fan-out.
pub const WEBHOOK_ORDER_CHANGES: &str = "WebhookOrderChanges";

/// Lambda's default and largest batch for a DynamoDB stream.
const DEFAULT_BATCH: usize = 100;
const MAX_BATCH: usize = 10_000;

/// A function as a stream mapping sees it: a batch in, the failed records out.
pub type StreamFunction =
    Arc<dyn Fn(Event) -> Pin<Box<dyn Future<Output = DynamoDbEventResponse> + Send>> + Send + Sync>;

/// What the mapping reads and how it hands records over.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    pub reader: ReaderConfig,
    /// Records per invocation (`BatchSize`).
    pub batch_size: usize,
    /// `ReportBatchItemFailures`: the response names the records to retry;
    /// without it only a panic fails a batch.
    pub reports_item_failures: bool,
    /// Tries of a failing batch before it goes to `on_failure_queue_url`;
    /// `None`: tried until it passes (Lambda's -1).
    pub maximum_retry_attempts: Option<u64>,
    pub on_failure_queue_url: Option<String>,
}

impl MappingConfig {
    /// The project template's `WebhookOrderChanges` over `resources`.
    pub fn webhook_order_changes(resources: &Provisioned) -> Result<Self, Error> {
        Self::from_spec(
            &Template::project()?.mapping(WEBHOOK_ORDER_CHANGES)?,
            resources,
        )
    }

    pub fn from_spec(spec: &MappingSpec, resources: &Provisioned) -> Result<Self, Error> {
        let invalid = |what: String| Error::Template(format!("{}: {what}", spec.logical_id));
        let MappingSource::Stream { table } = &spec.source else {
            return Err(invalid("not a stream mapping".into()));
        };
        if spec.starting_position.as_deref() != Some("TRIM_HORIZON") {
            return Err(invalid(format!(
                "StartingPosition {:?} is not played locally (only TRIM_HORIZON)",
                spec.starting_position
            )));
        }
        let batch_size = match spec.batch_size {
            None => DEFAULT_BATCH,
            Some(size) => usize::try_from(size)
                .ok()
                .filter(|size| (1..=MAX_BATCH).contains(size))
                .ok_or_else(|| invalid(format!("BatchSize {size} is not 1..=10000")))?,
        };
        Ok(Self {
            reader: ReaderConfig {
                table_name: resources.table(table)?.to_owned(),
                checkpoint: None,
                idle_pause: Duration::from_millis(100),
            },
            batch_size,
            reports_item_failures: spec.reports_item_failures,
            maximum_retry_attempts: spec.maximum_retry_attempts,
            on_failure_queue_url: spec
                .on_failure_queue
                .as_deref()
                .map(|queue| resources.queue_url(queue).map(str::to_owned))
                .transpose()?,
        })
    }

    /// Keeps shard positions in `path` (created when missing).
    #[must_use]
    pub fn with_checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.reader.checkpoint = Some(path.into());
        self
    }
}

/// The function side of the mapping.
pub struct FunctionTarget {
    function: StreamFunction,
    config: MappingConfig,
    sqs: aws_sdk_sqs::Client,
    /// The first record of the batch that keeps failing, and its tries.
    failing: Option<(String, u64)>,
}

impl std::fmt::Debug for FunctionTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionTarget")
            .field("config", &self.config)
            .field("failing", &self.failing)
            .finish_non_exhaustive()
    }
}

/// The mapping: the stream read by a [`StreamReader`], handed to the function.
pub type StreamMapping = StreamReader<FunctionTarget>;

impl StreamMapping {
    /// A mapping with clients built from `aws`, invoking `function`.
    pub fn new(
        aws: &SdkConfig,
        config: MappingConfig,
        function: StreamFunction,
    ) -> Result<Self, Error> {
        let reader = config.reader.clone();
        let target = FunctionTarget {
            function,
            config,
            sqs: aws_sdk_sqs::Client::new(aws),
            failing: None,
        };
        StreamReader::with_consumer(aws, reader, target)
    }
}

impl Consumer for FunctionTarget {
    fn name(&self) -> &'static str {
        "stream mapping"
    }

    async fn consume(
        &mut self,
        records: &[Record],
        stream_arn: &str,
        cursor: &mut Cursor<'_>,
    ) -> Result<usize, Error> {
        let mut passed = 0;
        for batch in records.chunks(self.config.batch_size) {
            let Some(failed) = self.invoke(batch, stream_arn).await? else {
                if let Some(last) = batch.last().and_then(sequence_number) {
                    cursor.handled(last);
                }
                passed += batch.len();
                self.failing = None;
                continue;
            };
            if let Some(before) = failed
                .checked_sub(1)
                .and_then(|i| sequence_number(&batch[i]))
            {
                cursor.handled(before);
            }
            passed += failed;
            let rest = &batch[failed..];
            let first = sequence_number(&rest[0]).unwrap_or_default().to_owned();
            let tries = match &self.failing {
                Some((sequence, tries)) if *sequence == first => tries + 1,
                _ => 1,
            };
            self.failing = Some((first.clone(), tries));
            if self
                .config
                .maximum_retry_attempts
                .is_some_and(|attempts| tries > attempts)
            {
                self.give_up(rest, stream_arn, cursor).await?;
                self.failing = None;
                continue;
            }
            return Err(Error::Function(format!(
                "the function failed record {first} (try {tries}); handed over again from it"
            )));
        }
        Ok(passed)
    }
}

impl FunctionTarget {
    /// Invokes the function on `batch`; the index of the first record to
    /// retry, `None` when the batch passed.
    async fn invoke(&self, batch: &[Record], stream_arn: &str) -> Result<Option<usize>, Error> {
        let records: Vec<Value> = batch.iter().map(|r| record_json(r, stream_arn)).collect();
        let event: Event =
            serde_json::from_value(json!({ "Records": records })).map_err(|err| {
                Error::Template(format!(
                    "the local stream mapping built an invalid event: {err}"
                ))
            })?;
        // Spawned so that a panicking function fails its batch, not the reader.
        let function = Arc::clone(&self.function);
        let Ok(response) = tokio::spawn(async move { function(event).await }).await else {
            tracing::warn!("the stream function panicked; the whole batch failed");
            return Ok(Some(0));
        };
        if !self.config.reports_item_failures {
            return Ok(None);
        }
        // An empty or unknown identifier fails the whole batch, as in Lambda.
        Ok(response
            .batch_item_failures
            .iter()
            .map(|failure| {
                let id = failure.item_identifier.as_deref().unwrap_or_default();
                batch
                    .iter()
                    .position(|record| !id.is_empty() && sequence_number(record) == Some(id))
                    .unwrap_or(0)
            })
            .min())
    }

    /// Retries spent: the range goes to the on-failure queue (Lambda's
    /// `DDBStreamBatchInfo`) and the reader moves past it.
    async fn give_up(
        &self,
        rest: &[Record],
        stream_arn: &str,
        cursor: &mut Cursor<'_>,
    ) -> Result<(), Error> {
        let (Some(first), Some(last)) = (
            rest.first().and_then(sequence_number),
            rest.last().and_then(sequence_number),
        ) else {
            return Ok(());
        };
        tracing::error!(
            shard = cursor.shard_id(),
            first,
            last,
            "stream mapping: retries exhausted; the batch goes to the on-failure destination"
        );
        if let Some(queue_url) = &self.config.on_failure_queue_url {
            let body = json!({
                "requestContext": {"condition": "RetryAttemptsExhausted"},
                "DDBStreamBatchInfo": {
                    "shardId": cursor.shard_id(),
                    "startSequenceNumber": first,
                    "endSequenceNumber": last,
                    "batchSize": rest.len(),
                    "streamArn": stream_arn,
                },
            });
            self.sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(body.to_string())
                .send()
                .await
                .map_err(Error::aws)?;
        }
        cursor.handled(last);
        Ok(())
    }
}

fn sequence_number(record: &Record) -> Option<&str> {
    record
        .dynamodb()
        .and_then(|stream| stream.sequence_number())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_mapping_is_played_with_the_templates_batch_and_retries() {
        let mut resources = Provisioned::default();
        resources
            .tables
            .insert("OrdersTable".into(), "p-OrdersTable".into());
        resources
            .queue_urls
            .insert("WebhookFanOutDeadLetterQueue".into(), "http://dlq".into());
        let config = MappingConfig::webhook_order_changes(&resources).unwrap();
        assert_eq!(config.reader.table_name, "p-OrdersTable");
        assert_eq!(config.batch_size, 100);
        assert!(config.reports_item_failures);
        assert_eq!(config.maximum_retry_attempts, Some(50));
        assert_eq!(config.on_failure_queue_url.as_deref(), Some("http://dlq"));
    }
}
