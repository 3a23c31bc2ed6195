//! A local stand-in for the template's `CallbackOutboxPipe`, the EventBridge
//! pipe from the orders table's stream to the callback queue, as
//! [`crate::sqs_poller`] stands in for the SQS event source mapping.
//!
//! It does the pipe's part: reads every shard of the table's stream (a parent
//! to its end before its children), keeps the records the pipe's filter keeps,
//! shapes each with the pipe's input template and sends them to the queue in
//! batches of at most ten. Like the pipe it is at-least-once: a shard's
//! position moves past a record only once its message was sent, so a failed
//! send is sent again and nothing is skipped. With a checkpoint file the
//! positions survive a restart (even a SIGKILL): only what was sent after the
//! last save is sent again.
//!
//! The filter and the input template are read from `infra/template.yaml` and
//! evaluated here (the subset of the pattern and template languages the
//! template uses; anything else is refused when the pipe is configured), so
//! what runs locally cannot drift from what is deployed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Error;
use crate::provision::Provisioned;
use crate::template::{PipeSpec, Template};

/// The template's outbox pipe.
pub const CALLBACK_OUTBOX_PIPE: &str = "CallbackOutboxPipe";

/// SendMessageBatch takes at most this many entries.
const SEND_BATCH_MAX: usize = 10;
/// Records asked for per GetRecords (the API's maximum).
const READ_LIMIT: i32 = 1000;
/// How often the shard list is read again to find new shards.
const LIST_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed pump, so an emulator that is down is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Tries for the entries of one batch that the queue did not accept.
const SEND_ATTEMPTS: usize = 3;

/// The AWS variable that points DynamoDB Streams somewhere else; locally it
/// defaults to DynamoDB Local's endpoint, which serves the streams API too.
const STREAMS_ENDPOINT: &str = "AWS_ENDPOINT_URL_DYNAMODB_STREAMS";
const DYNAMODB_ENDPOINT: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// A DynamoDB Streams client from the shared configuration: at
/// `AWS_ENDPOINT_URL_DYNAMODB_STREAMS` when set, else at
/// `AWS_ENDPOINT_URL_DYNAMODB` when that is set (DynamoDB Local), else AWS's.
pub fn streams_client(aws: &SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(aws);
    if std::env::var_os(STREAMS_ENDPOINT).is_none()
        && let Ok(url) = std::env::var(DYNAMODB_ENDPOINT)
    {
        config = config.endpoint_url(url);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}

/// What the pipe reads, how it filters and shapes, and where it sends.
#[derive(Debug, Clone)]
pub struct PipeConfig {
    /// The table whose stream is the source (its latest stream is read).
    pub table_name: String,
    pub queue_url: String,
    /// Messages per SendMessageBatch (the pipe's `BatchSize`, at most 10).
    pub batch_size: usize,
    pub filter: EventFilter,
    /// `None`: the message is the whole record, as the pipe sends it.
    pub input_template: Option<InputTemplate>,
    /// Where shard positions are kept between runs; `None`: a new pipe starts
    /// at the trim horizon of every shard.
    pub checkpoint: Option<PathBuf>,
    /// Pause between polls when nothing was sent.
    pub idle_pause: Duration,
}

impl PipeConfig {
    /// The template's pipe `logical_id` over the provisioned resources.
    pub fn from_template(
        template: &Template,
        logical_id: &str,
        resources: &Provisioned,
    ) -> Result<Self, Error> {
        Self::from_spec(&template.pipe(logical_id)?, resources)
    }

    /// The project template's `CallbackOutboxPipe` over `resources`.
    pub fn callback_outbox(resources: &Provisioned) -> Result<Self, Error> {
        Self::from_template(&Template::project()?, CALLBACK_OUTBOX_PIPE, resources)
    }

    pub fn from_spec(spec: &PipeSpec, resources: &Provisioned) -> Result<Self, Error> {
        let invalid = |what: String| Error::Template(format!("{}: {what}", spec.logical_id));
        // A new pipe at LATEST would skip what is already in the stream; the
        // local stand-in only plays the position the outbox needs.
        if spec.starting_position != "TRIM_HORIZON" {
            return Err(invalid(format!(
                "StartingPosition {} is not played locally (only TRIM_HORIZON)",
                spec.starting_position
            )));
        }
        let batch_size = match spec.batch_size {
            None => SEND_BATCH_MAX,
            Some(size) => usize::try_from(size)
                .ok()
                .filter(|size| (1..=SEND_BATCH_MAX).contains(size))
                .ok_or_else(|| invalid(format!("BatchSize {size} is not 1..=10 (SQS target)")))?,
        };
        Ok(Self {
            table_name: resources.table(&spec.source_table)?.to_owned(),
            queue_url: resources.queue_url(&spec.target_queue)?.to_owned(),
            batch_size,
            filter: EventFilter::parse(&spec.filter_patterns)?,
            input_template: spec
                .input_template
                .as_deref()
                .map(InputTemplate::parse)
                .transpose()?,
            checkpoint: None,
            idle_pause: Duration::from_millis(100),
        })
    }

    /// Keeps shard positions in `path` (created when missing).
    pub fn with_checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }
}

/// The pipe: call [`OutboxPipe::run`] to play it until dropped, or
/// [`OutboxPipe::pump_once`] to step it.
#[derive(Debug)]
pub struct OutboxPipe {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    config: PipeConfig,
    /// The stream being read, once DescribeTable has named it.
    stream_arn: Option<String>,
    /// What the checkpoint file held, until the stream it names is known.
    restored: Option<Checkpoint>,
    shards: BTreeMap<String, ShardState>,
    listed_at: Option<Instant>,
    /// The last pump read no record: [`OutboxPipe::run`] may pause.
    idle: bool,
}

/// Where the pipe is in one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ShardState {
    parent: Option<String>,
    /// The last record handled (sent, or left out by the filter); `None`:
    /// nothing yet, so the shard is read from its trim horizon.
    after: Option<String>,
    /// DescribeStream gave the shard an ending sequence number.
    #[serde(default)]
    closed: bool,
    /// Closed and read to its end: its children may be read.
    finished: bool,
    /// The open iterator; never saved (iterators expire after 15 minutes).
    #[serde(skip)]
    iterator: Option<String>,
}

/// The checkpoint file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    stream_arn: String,
    shards: BTreeMap<String, ShardState>,
}

impl OutboxPipe {
    /// A pipe with clients built from `aws` (see [`streams_client`] for the
    /// streams endpoint); reads `config.checkpoint` when it exists.
    pub fn new(aws: &SdkConfig, config: PipeConfig) -> Result<Self, Error> {
        let restored = match &config.checkpoint {
            Some(path) => load_checkpoint(path)?,
            None => None,
        };
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::new(aws),
            streams: streams_client(aws),
            sqs: aws_sdk_sqs::Client::new(aws),
            config,
            stream_arn: None,
            restored,
            shards: BTreeMap::new(),
            listed_at: None,
            idle: true,
        })
    }

    /// Polls forever, until the task is dropped: right away after a pump
    /// that read records, after `idle_pause` when there were none, after a
    /// second when a pump failed (errors are logged, never fatal).
    pub async fn run(mut self) {
        loop {
            match self.pump_once().await {
                Ok(0) if self.idle => tokio::time::sleep(self.config.idle_pause).await,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(
                        table = %self.config.table_name,
                        error = %DisplayErrorContext(&err),
                        "outbox pipe: pump failed; retrying from the last sent record"
                    );
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
    }

    /// One pass over the stream: one GetRecords on every shard that may be
    /// read now, each followed by the sends it calls for. Returns how many
    /// messages were sent. On an error the shard's position stays at the last
    /// record sent, so the next pump sends the rest again.
    pub async fn pump_once(&mut self) -> Result<usize, Error> {
        let stream_arn = self.stream_arn().await?;
        if self
            .listed_at
            .is_none_or(|listed| listed.elapsed() >= LIST_EVERY)
        {
            self.list_shards(&stream_arn).await?;
        }
        let mut sent = 0;
        self.idle = true;
        for shard_id in self.readable_shards() {
            sent += self.pump_shard(&stream_arn, &shard_id).await?;
        }
        Ok(sent)
    }

    /// The table's latest stream (DescribeTable, once), and the checkpoint's
    /// positions if they are positions in that stream.
    async fn stream_arn(&mut self) -> Result<String, Error> {
        if let Some(arn) = &self.stream_arn {
            return Ok(arn.clone());
        }
        let output = self
            .dynamodb
            .describe_table()
            .table_name(&self.config.table_name)
            .send()
            .await
            .map_err(Error::aws)?;
        let arn = output
            .table()
            .and_then(|table| table.latest_stream_arn())
            .ok_or_else(|| {
                Error::Template(format!(
                    "table {} has no stream: provision it from the template",
                    self.config.table_name
                ))
            })?
            .to_owned();
        if let Some(checkpoint) = self.restored.take() {
            if checkpoint.stream_arn == arn {
                self.shards = checkpoint.shards;
            } else {
                tracing::warn!(
                    table = %self.config.table_name,
                    saved = %checkpoint.stream_arn,
                    current = %arn,
                    "outbox pipe: the checkpoint is for another stream; starting at the trim horizon"
                );
            }
        }
        self.stream_arn = Some(arn.clone());
        Ok(arn)
    }

    /// DescribeStream, every page: adds new shards, forgets the ones the
    /// stream no longer lists (trimmed: their records are gone).
    async fn list_shards(&mut self, stream_arn: &str) -> Result<(), Error> {
        let mut listed = BTreeSet::new();
        let mut start: Option<String> = None;
        loop {
            let output = self
                .streams
                .describe_stream()
                .stream_arn(stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(Error::aws)?;
            let Some(description) = output.stream_description() else {
                break;
            };
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                listed.insert(id.to_owned());
                let state = self
                    .shards
                    .entry(id.to_owned())
                    .or_insert_with(|| ShardState {
                        parent: shard.parent_shard_id().map(str::to_owned),
                        ..ShardState::default()
                    });
                state.closed = shard
                    .sequence_number_range()
                    .and_then(|range| range.ending_sequence_number())
                    .is_some();
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        self.shards.retain(|id, _| listed.contains(id));
        self.listed_at = Some(Instant::now());
        Ok(())
    }

    /// The shards not yet read to their end whose parent is (or is gone).
    fn readable_shards(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, shard)| !shard.finished)
            .filter(|(_, shard)| {
                shard
                    .parent
                    .as_ref()
                    .and_then(|parent| self.shards.get(parent))
                    .is_none_or(|parent| parent.finished)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// One GetRecords on the shard and the sends for what it returned.
    async fn pump_shard(&mut self, stream_arn: &str, shard_id: &str) -> Result<usize, Error> {
        let Some((records, next)) = self.read(stream_arn, shard_id).await? else {
            return Ok(0);
        };
        self.idle &= records.is_empty();
        let position = |pipe: &Self| {
            pipe.shards
                .get(shard_id)
                .map(|shard| (shard.after.clone(), shard.finished))
        };
        let before = position(self);
        let result = self.deliver(shard_id, &records, stream_arn).await;
        let shard = self.shard(shard_id)?;
        match &result {
            Ok(_) => {
                // A closed shard answers its last page without a next
                // iterator. DynamoDB Local sometimes answers so for an open
                // one too: then the shard is listed again and re-opened.
                shard.finished = next.is_none() && shard.closed;
                let ended = next.is_none();
                shard.iterator = next;
                if ended {
                    self.listed_at = None;
                }
            }
            // Re-opened from the last record sent on the next pump.
            Err(_) => shard.iterator = None,
        }
        if position(self) != before {
            self.save_checkpoint(stream_arn)?;
        }
        result
    }

    /// The next page of the shard's records and the iterator after it,
    /// opening the iterator at the shard's position first when needed;
    /// `None` when the shard is gone.
    async fn read(
        &mut self,
        stream_arn: &str,
        shard_id: &str,
    ) -> Result<Option<(Vec<Record>, Option<String>)>, Error> {
        // An expired or trimmed iterator is re-opened once, right away:
        // both say where the iterator was, not that a record is gone.
        for _ in 0..2 {
            let iterator = match self.shard(shard_id)?.iterator.clone() {
                Some(iterator) => iterator,
                None => match self.open(stream_arn, shard_id).await? {
                    Some(iterator) => iterator,
                    None => return Ok(None),
                },
            };
            match self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(READ_LIMIT)
                .send()
                .await
            {
                Ok(output) => {
                    return Ok(Some((
                        output.records.unwrap_or_default(),
                        output.next_shard_iterator,
                    )));
                }
                Err(err) => match err.as_service_error() {
                    Some(GetRecordsError::ExpiredIteratorException(_)) => {
                        self.shard(shard_id)?.iterator = None;
                    }
                    // Re-opened after the last record handled; `open` goes to
                    // the trim horizon only if that record itself is trimmed.
                    // (DynamoDB Local also answers so for an iterator opened
                    // on an empty shard.)
                    Some(GetRecordsError::TrimmedDataAccessException(_)) => {
                        self.shard(shard_id)?.iterator = None;
                    }
                    Some(GetRecordsError::ResourceNotFoundException(_)) => {
                        self.relist(shard_id);
                        return Ok(None);
                    }
                    _ => return Err(Error::aws(err)),
                },
            }
        }
        Err(Error::Aws(
            format!("shard {shard_id}: still unreadable after re-opening its iterator").into(),
        ))
    }

    /// GetShardIterator just after the last record handled, or at the trim
    /// horizon; `None` when the shard is gone.
    async fn open(&mut self, stream_arn: &str, shard_id: &str) -> Result<Option<String>, Error> {
        let after = self.shard(shard_id)?.after.clone();
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard_id);
        let request = match &after {
            Some(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence_number),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        match request.send().await {
            Ok(output) => Ok(output.shard_iterator),
            Err(err) => match err.as_service_error() {
                Some(GetShardIteratorError::TrimmedDataAccessException(_)) if after.is_some() => {
                    tracing::warn!(
                        shard = shard_id,
                        "outbox pipe: the last position was trimmed; reading from the trim horizon"
                    );
                    self.shard(shard_id)?.after = None;
                    Box::pin(self.open(stream_arn, shard_id)).await
                }
                Some(GetShardIteratorError::ResourceNotFoundException(_)) => {
                    self.relist(shard_id);
                    Ok(None)
                }
                _ => Err(Error::aws(err)),
            },
        }
    }

    /// Sends a message for each record the filter keeps, in batches, moving
    /// the shard's position past each batch once it is sent, and past the
    /// records left out at the end. Returns how many messages were sent.
    async fn deliver(
        &mut self,
        shard_id: &str,
        records: &[Record],
        stream_arn: &str,
    ) -> Result<usize, Error> {
        let mut sent = 0;
        let mut batch = Vec::with_capacity(self.config.batch_size);
        for record in records {
            let sequence_number = record
                .dynamodb()
                .and_then(|stream| stream.sequence_number())
                .ok_or_else(|| Error::Aws("a stream record without a sequence number".into()))?;
            let event = pipe_event(record, stream_arn);
            if self.config.filter.matches(&event) {
                batch.push(match &self.config.input_template {
                    Some(template) => template.render(&event)?,
                    None => event.to_string(),
                });
            }
            if batch.len() == self.config.batch_size {
                self.send(&batch).await?;
                sent += batch.len();
                batch.clear();
                self.shard(shard_id)?.after = Some(sequence_number.to_owned());
                self.save_checkpoint(stream_arn)?;
            }
        }
        if !batch.is_empty() {
            self.send(&batch).await?;
            sent += batch.len();
        }
        if let Some(last) = records
            .last()
            .and_then(|record| record.dynamodb())
            .and_then(|stream| stream.sequence_number())
        {
            self.shard(shard_id)?.after = Some(last.to_owned());
        }
        Ok(sent)
    }

    /// SendMessageBatch, sending again the entries the queue did not accept
    /// (only those: the others are not duplicated).
    async fn send(&self, bodies: &[String]) -> Result<(), Error> {
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        for _ in 0..SEND_ATTEMPTS {
            let entries = pending
                .iter()
                .map(|&index| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(&bodies[index])
                        .build()
                        .map_err(Error::aws)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .sqs
                .send_message_batch()
                .queue_url(&self.config.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(Error::aws)?;
            pending = output
                .failed()
                .iter()
                .filter_map(|failed| failed.id().parse().ok())
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            for failed in output.failed() {
                tracing::warn!(
                    queue = %self.config.queue_url,
                    code = failed.code(),
                    message = failed.message().unwrap_or_default(),
                    "outbox pipe: the queue did not accept a message"
                );
            }
        }
        Err(Error::Aws(
            format!(
                "the queue did not accept {} of {} messages",
                pending.len(),
                bodies.len()
            )
            .into(),
        ))
    }

    fn shard(&mut self, shard_id: &str) -> Result<&mut ShardState, Error> {
        self.shards
            .get_mut(shard_id)
            .ok_or_else(|| Error::Aws(format!("shard {shard_id} is not listed").into()))
    }

    /// The stream says it does not know the shard: list the shards again
    /// (a shard no longer listed is dropped and its children read; DynamoDB
    /// Local sometimes says so of a shard it still has, which is re-opened).
    fn relist(&mut self, shard_id: &str) {
        tracing::warn!(
            shard = shard_id,
            "outbox pipe: the stream does not know the shard; listing the shards again"
        );
        if let Some(shard) = self.shards.get_mut(shard_id) {
            shard.iterator = None;
        }
        self.listed_at = None;
    }

    /// Writes the positions to the checkpoint file, if there is one, through
    /// a temporary file and a rename, so a crash leaves the old or the new.
    fn save_checkpoint(&self, stream_arn: &str) -> Result<(), Error> {
        let Some(path) = &self.config.checkpoint else {
            return Ok(());
        };
        let checkpoint = Checkpoint {
            stream_arn: stream_arn.to_owned(),
            shards: self.shards.clone(),
        };
        let text = serde_json::to_vec_pretty(&checkpoint)
            .map_err(|err| Error::Io(std::io::Error::other(err)))?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }
}

fn load_checkpoint(path: &Path) -> Result<Option<Checkpoint>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Error::Template(format!("checkpoint {}: {err}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The record as the pipe sees it (the JSON its filter and input template
/// read): the Lambda-style DynamoDB stream record. Fields the record lacks are
/// left out, not null, so that `exists` patterns see them as absent.
fn pipe_event(record: &Record, stream_arn: &str) -> Value {
    let mut event = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            event.insert(key.to_owned(), value);
        }
    };
    put("eventID", record.event_id().map(Value::from));
    put(
        "eventName",
        record.event_name().map(|name| Value::from(name.as_str())),
    );
    put("eventVersion", record.event_version().map(Value::from));
    put("eventSource", record.event_source().map(Value::from));
    put("awsRegion", record.aws_region().map(Value::from));
    put(
        "dynamodb",
        record.dynamodb().map(|stream| {
            let mut fields = Map::new();
            if let Some(time) = stream.approximate_creation_date_time() {
                fields.insert(
                    "ApproximateCreationDateTime".into(),
                    Value::from(time.secs()),
                );
            }
            for (key, image) in [
                ("Keys", stream.keys()),
                ("NewImage", stream.new_image()),
                ("OldImage", stream.old_image()),
            ] {
                if let Some(image) = image {
                    fields.insert(key.into(), item_json(image));
                }
            }
            if let Some(sequence_number) = stream.sequence_number() {
                fields.insert("SequenceNumber".into(), Value::from(sequence_number));
            }
            if let Some(size) = stream.size_bytes() {
                fields.insert("SizeBytes".into(), Value::from(size));
            }
            if let Some(view) = stream.stream_view_type() {
                fields.insert("StreamViewType".into(), Value::from(view.as_str()));
            }
            Value::Object(fields)
        }),
    );
    put("eventSourceARN", Some(Value::from(stream_arn)));
    Value::Object(event)
}

fn item_json(item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect(),
    )
}

/// DynamoDB's JSON form of a value: `{"S": "…"}`, `{"N": "12"}`, …
fn attribute_json(value: &AttributeValue) -> Value {
    let base64 = |blob: &aws_sdk_dynamodbstreams::primitives::Blob| {
        Value::from(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::Ss(set) => json!({ "SS": set }),
        AttributeValue::Ns(set) => json!({ "NS": set }),
        AttributeValue::Bs(set) => json!({ "BS": set.iter().map(base64).collect::<Vec<_>>() }),
        AttributeValue::L(list) => {
            json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_json(map) }),
        _ => json!({}),
    }
}

/// The pipe's `FilterCriteria`: a record passes when any pattern matches it,
/// every record when there is none. Patterns use the part of the EventBridge
/// pattern language the template needs: nested objects, lists of exact
/// values, and `{"exists": true|false}`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern(Vec<(String, Rule)>);

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Nested(Pattern),
    AnyOf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Equals(Value),
    Exists(bool),
}

impl EventFilter {
    /// Parses the filter patterns (JSON text); refuses what it cannot play.
    pub fn parse(patterns: &[impl AsRef<str>]) -> Result<Self, Error> {
        let patterns = patterns
            .iter()
            .map(|text| {
                let text = text.as_ref();
                let value: Value = serde_json::from_str(text)
                    .map_err(|err| Error::Template(format!("filter pattern {text}: {err}")))?;
                Pattern::parse(&value)
                    .map_err(|why| Error::Template(format!("filter pattern {text}: {why}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Whether the pipe passes `event` (a record as [`pipe_event`] shapes it).
    pub fn matches(&self, event: &Value) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|pattern| pattern.matches(event))
    }
}

impl Pattern {
    fn parse(value: &Value) -> Result<Self, String> {
        let fields = value
            .as_object()
            .ok_or("a pattern is a JSON object")?
            .iter()
            .map(|(key, rule)| {
                let rule = match rule {
                    Value::Object(_) => Rule::Nested(Self::parse(rule)?),
                    Value::Array(matchers) => Rule::AnyOf(
                        matchers
                            .iter()
                            .map(Matcher::parse)
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(format!("{key}: expected an object or a list")),
                };
                Ok((key.clone(), rule))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self(fields))
    }

    fn matches(&self, event: &Value) -> bool {
        self.0.iter().all(|(key, rule)| {
            let field = event.get(key);
            match rule {
                // A missing object matches like an empty one: only
                // `exists: false` below it can match.
                Rule::Nested(pattern) => {
                    pattern.matches(field.unwrap_or(&Value::Object(Map::new())))
                }
                Rule::AnyOf(matchers) => matchers.iter().any(|matcher| matcher.matches(field)),
            }
        })
    }
}

impl Matcher {
    fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::Object(operator) => match operator.get("exists") {
                Some(Value::Bool(exists)) if operator.len() == 1 => Ok(Self::Exists(*exists)),
                _ => Err(format!(
                    "{value}: only exact values and exists are played locally"
                )),
            },
            Value::Array(_) => Err(format!("{value}: a list inside a list")),
            leaf => Ok(Self::Equals(leaf.clone())),
        }
    }

    /// `exists` and exact values apply to leaves (not objects); a list field
    /// matches when one of its elements does.
    fn matches(&self, field: Option<&Value>) -> bool {
        match (self, field) {
            (Self::Exists(exists), field) => {
                *exists == field.is_some_and(|value| !value.is_object())
            }
            (Self::Equals(expected), Some(Value::Array(values))) => values.contains(expected),
            (Self::Equals(expected), Some(value)) => value == expected,
            (Self::Equals(_), None) => false,
        }
    }
}

/// The target's `InputTemplate`: text with `<$.json.path>` placeholders.
/// A placeholder between double quotes takes the value's text (escaped for a
/// JSON string); one outside quotes takes the value as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Path { path: Vec<String>, quoted: bool },
}

impl InputTemplate {
    /// Parses the template; refuses reserved variables (`<aws.pipes.…>`)
    /// and paths beyond plain dot notation, which are not played locally.
    pub fn parse(template: &str) -> Result<Self, Error> {
        let refuse = |why: String| Error::Template(format!("input template {template}: {why}"));
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            if after.starts_with("aws.") {
                return Err(refuse("reserved variables are not played locally".into()));
            }
            let Some(path) = after.strip_prefix("$.") else {
                text.push_str(&rest[..=open]);
                rest = after;
                continue;
            };
            let close = path
                .find('>')
                .ok_or_else(|| refuse("a placeholder without its '>'".into()))?;
            let segments: Vec<String> = path[..close].split('.').map(str::to_owned).collect();
            if segments.iter().any(|segment| {
                segment.is_empty()
                    || !segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            }) {
                return Err(refuse(format!(
                    "$.{} is not a plain dot path",
                    &path[..close]
                )));
            }
            let quoted = rest[..open].ends_with('"') && path[close + 1..].starts_with('"');
            text.push_str(&rest[..open]);
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Path {
                path: segments,
                quoted,
            });
            rest = &path[close + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// The message body for `event`; an error when a path is not in it.
    pub fn render(&self, event: &Value) -> Result<String, Error> {
        let mut body = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => body.push_str(text),
                Part::Path { path, quoted } => {
                    let value = path
                        .iter()
                        .try_fold(event, |value, key| value.get(key))
                        .ok_or_else(|| {
                            Error::Template(format!(
                                "input template: $.{} is not in the record",
                                path.join(".")
                            ))
                        })?;
                    if *quoted {
                        let text = match value {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        };
                        let escaped = Value::String(text).to_string();
                        body.push_str(&escaped[1..escaped.len() - 1]);
                    } else {
                        body.push_str(&value.to_string());
                    }
                }
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord};

    use super::*;

    const OUTBOX_PATTERN: &str = r#"{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"outbox":{"N":[{"exists":true}]}}}}"#;
    const OUTBOX_TEMPLATE: &str = r#"{"order_number": "<$.dynamodb.Keys.order_number.S>", "generation": "<$.dynamodb.NewImage.outbox.N>"}"#;

    fn record(name: OperationType, outbox: Option<AttributeValue>) -> Value {
        let mut stream = StreamRecord::builder()
            .keys("order_number", AttributeValue::S("ON-1".into()))
            .new_image("order_number", AttributeValue::S("ON-1".into()))
            .new_image("status", AttributeValue::S("shipped".into()))
            .sequence_number("100");
        if let Some(outbox) = outbox {
            stream = stream.new_image("outbox", outbox);
        }
        let record = Record::builder()
            .event_id("e-1")
            .event_name(name)
            .event_source("aws:dynamodb")
            .dynamodb(stream.build())
            .build();
        pipe_event(
            &record,
            "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x",
        )
    }

    fn outbox_filter() -> EventFilter {
        EventFilter::parse(&[OUTBOX_PATTERN]).unwrap()
    }

    #[test]
    fn the_outbox_filter_keeps_inserts_and_modifies_that_set_the_outbox() {
        let filter = outbox_filter();
        let outbox = || Some(AttributeValue::N("3".into()));
        assert!(filter.matches(&record(OperationType::Insert, outbox())));
        assert!(filter.matches(&record(OperationType::Modify, outbox())));
    }

    #[test]
    fn the_outbox_filter_drops_removes_writes_without_outbox_and_other_types() {
        let filter = outbox_filter();
        assert!(!filter.matches(&record(
            OperationType::Remove,
            Some(AttributeValue::N("3".into()))
        )));
        assert!(!filter.matches(&record(OperationType::Modify, None)));
        assert!(!filter.matches(&record(
            OperationType::Modify,
            Some(AttributeValue::S("3".into()))
        )));
    }

    #[test]
    fn exists_false_matches_an_absent_field_and_lists_match_any_element() {
        let filter =
            EventFilter::parse(&[r#"{"a":{"b":[{"exists":false}]},"tags":["x"]}"#]).unwrap();
        assert!(filter.matches(&json!({"tags": ["y", "x"]})));
        assert!(!filter.matches(&json!({"tags": ["y"]})));
        assert!(!filter.matches(&json!({"a": {"b": 1}, "tags": "x"})));
        assert!(
            EventFilter::parse(&[] as &[&str])
                .unwrap()
                .matches(&json!({}))
        );
    }

    #[test]
    fn operators_the_local_pipe_cannot_play_are_refused() {
        assert!(EventFilter::parse(&[r#"{"a":[{"prefix":"x"}]}"#]).is_err());
        assert!(EventFilter::parse(&[r#"{"a":"x"}"#]).is_err());
        assert!(InputTemplate::parse("<aws.pipes.pipe-arn>").is_err());
        assert!(InputTemplate::parse("<$.a.b[0]>").is_err());
    }

    #[test]
    fn the_outbox_template_makes_a_body_of_two_strings() {
        let template = InputTemplate::parse(OUTBOX_TEMPLATE).unwrap();
        let body = template
            .render(&record(
                OperationType::Insert,
                Some(AttributeValue::N("12".into())),
            ))
            .unwrap();
        assert_eq!(body, r#"{"order_number": "ON-1", "generation": "12"}"#);
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, json!({"order_number": "ON-1", "generation": "12"}));
    }

    #[test]
    fn quoted_placeholders_are_escaped_and_unquoted_ones_are_json() {
        let template = InputTemplate::parse(r#"{"s": "<$.s>", "o": <$.o>, "t": "a <b"}"#).unwrap();
        let body = template
            .render(&json!({"s": "say \"hi\"", "o": {"k": [1]}}))
            .unwrap();
        assert_eq!(body, r#"{"s": "say \"hi\"", "o": {"k":[1]}, "t": "a <b"}"#);
        assert!(template.render(&json!({"s": "x"})).is_err());
    }

    #[test]
    fn the_record_is_shaped_as_the_pipe_sees_it() {
        let event = record(OperationType::Insert, Some(AttributeValue::N("1".into())));
        assert_eq!(event["eventName"], "INSERT");
        assert_eq!(event["dynamodb"]["Keys"]["order_number"]["S"], "ON-1");
        assert_eq!(event["dynamodb"]["NewImage"]["outbox"]["N"], "1");
        assert_eq!(event["dynamodb"]["SequenceNumber"], "100");
        assert!(event["dynamodb"].get("OldImage").is_none());
        assert_eq!(
            attribute_json(&AttributeValue::M(
                [(
                    "l".to_owned(),
                    AttributeValue::L(vec![AttributeValue::Bool(true)])
                )]
                .into()
            )),
            json!({"M": {"l": {"L": [{"BOOL": true}]}}})
        );
    }

    #[test]
    fn the_template_pipe_is_played_with_its_own_filter_and_template() {
        let mut resources = Provisioned::default();
        resources
            .tables
            .insert("OrdersTable".into(), "p-OrdersTable".into());
        resources
            .queue_urls
            .insert("CallbackQueue".into(), "http://q".into());
        let config = PipeConfig::callback_outbox(&resources).unwrap();
        assert_eq!(config.table_name, "p-OrdersTable");
        assert_eq!(config.queue_url, "http://q");
        assert_eq!(config.batch_size, 10);
        assert_eq!(config.filter, outbox_filter());
        assert_eq!(
            config.input_template,
            Some(InputTemplate::parse(OUTBOX_TEMPLATE).unwrap())
        );
    }

    #[test]
    fn a_child_shard_waits_for_its_parent_to_be_read_to_its_end() {
        let aws = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let config = PipeConfig {
            table_name: "t".into(),
            queue_url: "q".into(),
            batch_size: 10,
            filter: outbox_filter(),
            input_template: None,
            checkpoint: None,
            idle_pause: Duration::from_millis(100),
        };
        let mut pipe = OutboxPipe::new(&aws, config).unwrap();
        let child = |parent: &str| ShardState {
            parent: Some(parent.into()),
            ..ShardState::default()
        };
        pipe.shards.insert("a".into(), ShardState::default());
        pipe.shards.insert("b".into(), child("a"));
        pipe.shards.insert("c".into(), child("gone"));
        assert_eq!(pipe.readable_shards(), ["a", "c"]);
        pipe.shards.get_mut("a").unwrap().finished = true;
        assert_eq!(pipe.readable_shards(), ["b", "c"]);
    }
}
