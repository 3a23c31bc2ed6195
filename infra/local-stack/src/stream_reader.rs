//! Reads a table's stream as its consumers in AWS do (the EventBridge pipe
//! and Lambda's event source mapping): every shard, a parent to its end
//! before its children, each shard's records in order. What is done with the
//! records is the [`Consumer`]'s: [`crate::outbox_pipe`] sends them to the
//! callback queue, [`crate::stream_mapping`] hands them to the webhook
//! fan-out. Both read the orders table's stream side by side, each with its
//! own positions, as a stream's two readers do.
//!
//! A shard's position moves past a record only once the consumer says it is
//! handled, so a failure re-reads from the first record not handled and
//! nothing is skipped (at least once). With a checkpoint file the positions
//! survive a restart (even a SIGKILL): only what was handled after the last
//! save is handled again.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Error;

/// Records asked for per GetRecords (the API's maximum).
const READ_LIMIT: i32 = 1000;
/// How often the shard list is read again to find new shards.
const LIST_EVERY: Duration = Duration::from_secs(1);
/// Pause after a failed pump, so an emulator that is down is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

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

/// Which stream to read and where to keep the positions.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// The table whose stream is read (its latest stream).
    pub table_name: String,
    /// Where shard positions are kept between runs; `None`: a new reader
    /// starts at the trim horizon of every shard.
    pub checkpoint: Option<PathBuf>,
    /// Pause between polls when no record was read.
    pub idle_pause: Duration,
}

/// What a reader does with the records of a shard.
pub trait Consumer: Send {
    /// What the reader is called in its logs ("outbox pipe").
    fn name(&self) -> &'static str;

    /// Handles a page of one shard's records, in order, telling `cursor`
    /// each record handled. On `Ok` the shard's position moves past the
    /// page; on an error it stays after the last record told to `cursor`,
    /// and the rest is read again on the next pump. Returns how many records
    /// it passed on (sent, published).
    fn consume(
        &mut self,
        records: &[Record],
        stream_arn: &str,
        cursor: &mut Cursor<'_>,
    ) -> impl Future<Output = Result<usize, Error>> + Send;
}

/// A consumer's hold on its shard's position.
#[derive(Debug)]
pub struct Cursor<'a> {
    shard_id: &'a str,
    shard: &'a mut ShardState,
    moved: bool,
}

impl Cursor<'_> {
    /// The shard being read.
    #[must_use]
    pub fn shard_id(&self) -> &str {
        self.shard_id
    }

    /// The records up to `sequence_number` are handled: a re-read starts
    /// after it.
    pub fn handled(&mut self, sequence_number: &str) {
        self.shard.after = Some(sequence_number.to_owned());
        self.moved = true;
    }
}

/// The reader: call [`StreamReader::run`] to play it until dropped, or
/// [`StreamReader::pump_once`] to step it.
#[derive(Debug)]
pub struct StreamReader<C> {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    config: ReaderConfig,
    consumer: C,
    /// The stream being read, once DescribeTable has named it.
    stream_arn: Option<String>,
    /// What the checkpoint file held, until the stream it names is known.
    restored: Option<Checkpoint>,
    shards: BTreeMap<String, ShardState>,
    listed_at: Option<Instant>,
    /// The last pump read no record: [`StreamReader::run`] may pause.
    idle: bool,
}

/// Where the reader is in one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    parent: Option<String>,
    /// The last record handled; `None`: nothing yet, so the shard is read
    /// from its trim horizon.
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

impl<C: Consumer> StreamReader<C> {
    /// A reader with clients built from `aws` (see [`streams_client`] for
    /// the streams endpoint); reads `config.checkpoint` when it exists.
    pub fn with_consumer(
        aws: &SdkConfig,
        config: ReaderConfig,
        consumer: C,
    ) -> Result<Self, Error> {
        let restored = match &config.checkpoint {
            Some(path) => load_checkpoint(path)?,
            None => None,
        };
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::new(aws),
            streams: streams_client(aws),
            config,
            consumer,
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
                        "{}: pump failed; retrying from the last record handled",
                        self.consumer.name()
                    );
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
    }

    /// One pass over the stream: one GetRecords on every shard that may be
    /// read now, each followed by the consumer's handling. Returns how many
    /// records the consumer passed on. On an error the shard's position stays
    /// at the last record handled, so the next pump hands over the rest again.
    pub async fn pump_once(&mut self) -> Result<usize, Error> {
        let stream_arn = self.stream_arn().await?;
        if self
            .listed_at
            .is_none_or(|listed| listed.elapsed() >= LIST_EVERY)
        {
            self.list_shards(&stream_arn).await?;
        }
        let mut passed = 0;
        self.idle = true;
        for shard_id in self.readable_shards() {
            passed += self.pump_shard(&stream_arn, &shard_id).await?;
        }
        Ok(passed)
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
                    "the checkpoint is for another stream; starting at the trim horizon"
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

    /// One GetRecords on the shard and the consumer's handling of it.
    async fn pump_shard(&mut self, stream_arn: &str, shard_id: &str) -> Result<usize, Error> {
        let Some((records, next)) = self.read(stream_arn, shard_id).await? else {
            return Ok(0);
        };
        self.idle &= records.is_empty();
        let shard = self
            .shards
            .get_mut(shard_id)
            .ok_or_else(|| Error::Aws(format!("shard {shard_id} is not listed").into()))?;
        let mut cursor = Cursor {
            shard_id,
            shard,
            moved: false,
        };
        let result = self
            .consumer
            .consume(&records, stream_arn, &mut cursor)
            .await;
        let mut moved = cursor.moved;
        let shard = self.shard(shard_id)?;
        match &result {
            Ok(_) => {
                if let Some(last) = records
                    .last()
                    .and_then(|record| record.dynamodb())
                    .and_then(|stream| stream.sequence_number())
                {
                    moved |= shard.after.as_deref() != Some(last);
                    shard.after = Some(last.to_owned());
                }
                // A closed shard answers its last page without a next
                // iterator. DynamoDB Local sometimes answers so for an open
                // one too: then the shard is listed again and re-opened.
                let finished = next.is_none() && shard.closed;
                moved |= finished != shard.finished;
                shard.finished = finished;
                let ended = next.is_none();
                shard.iterator = next;
                if ended {
                    self.listed_at = None;
                }
            }
            // Re-opened after the last record handled on the next pump.
            Err(_) => shard.iterator = None,
        }
        if moved {
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
                        "the last position was trimmed; reading from the trim horizon"
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
            "the stream does not know the shard; listing the shards again"
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

/// The record as a pipe's filter and input template and a Lambda function
/// see it: the Lambda-style DynamoDB stream record. Fields the record lacks
/// are left out, not null, so that `exists` patterns see them as absent.
pub fn record_json(record: &Record, stream_arn: &str) -> Value {
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
pub fn attribute_json(value: &AttributeValue) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;

    impl Consumer for Nothing {
        fn name(&self) -> &'static str {
            "nothing"
        }

        async fn consume(
            &mut self,
            _: &[Record],
            _: &str,
            _: &mut Cursor<'_>,
        ) -> Result<usize, Error> {
            Ok(0)
        }
    }

    #[test]
    fn a_child_shard_waits_for_its_parent_to_be_read_to_its_end() {
        let aws = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let config = ReaderConfig {
            table_name: "t".into(),
            checkpoint: None,
            idle_pause: Duration::from_millis(100),
        };
        let mut reader = StreamReader::with_consumer(&aws, config, Nothing).unwrap();
        let child = |parent: &str| ShardState {
            parent: Some(parent.into()),
            ..ShardState::default()
        };
        reader.shards.insert("a".into(), ShardState::default());
        reader.shards.insert("b".into(), child("a"));
        reader.shards.insert("c".into(), child("gone"));
        assert_eq!(reader.readable_shards(), ["a", "c"]);
        reader.shards.get_mut("a").unwrap().finished = true;
        assert_eq!(reader.readable_shards(), ["b", "c"]);
    }
}
