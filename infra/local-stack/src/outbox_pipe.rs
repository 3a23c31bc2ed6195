//! A local stand-in for the template's `CallbackOutboxPipe`, the EventBridge
//! pipe from the orders table's stream to the callback queue, as
//! [`crate::sqs_poller`] stands in for the SQS event source mapping.
//!
//! The [`StreamReader`] reads the stream; this does the pipe's part: keeps
//! the records the pipe's filter keeps, shapes each with the pipe's input
//! template and sends them to the queue in batches of at most ten. Like the
//! pipe it is at-least-once: a shard's position moves past a record only once
//! its message was sent, so a failed send is sent again and nothing is
//! skipped.
//!
//! The filter and the input template are read from `infra/template.yaml` and
//! evaluated here (the subset of the pattern and template languages the
//! template uses; anything else is refused when the pipe is configured), so
//! what runs locally cannot drift from what is deployed.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::Record;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::{Map, Value};

use crate::Error;
use crate::provision::Provisioned;
pub use crate::stream_reader::streams_client;
use crate::stream_reader::{Consumer, Cursor, ReaderConfig, StreamReader, record_json};
use crate::template::{PipeSpec, Template};

/// The template's outbox pipe.
pub const CALLBACK_OUTBOX_PIPE: &str = "CallbackOutboxPipe";

/// SendMessageBatch takes at most this many entries.
const SEND_BATCH_MAX: usize = 10;
/// Tries for the entries of one batch that the queue did not accept.
const SEND_ATTEMPTS: usize = 3;

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

/// The pipe's target side: filter, template, queue.
#[derive(Debug)]
pub struct OutboxTarget {
    sqs: aws_sdk_sqs::Client,
    config: PipeConfig,
}

/// The pipe: the stream read by a [`StreamReader`], sent on by [`OutboxTarget`].
pub type OutboxPipe = StreamReader<OutboxTarget>;

impl OutboxPipe {
    /// A pipe with clients built from `aws`; reads `config.checkpoint` when
    /// it exists.
    pub fn new(aws: &SdkConfig, config: PipeConfig) -> Result<Self, Error> {
        let reader = ReaderConfig {
            table_name: config.table_name.clone(),
            checkpoint: config.checkpoint.clone(),
            idle_pause: config.idle_pause,
        };
        let target = OutboxTarget {
            sqs: aws_sdk_sqs::Client::new(aws),
            config,
        };
        StreamReader::with_consumer(aws, reader, target)
    }
}

impl Consumer for OutboxTarget {
    fn name(&self) -> &'static str {
        "outbox pipe"
    }

    async fn consume(
        &mut self,
        records: &[Record],
        stream_arn: &str,
        cursor: &mut Cursor<'_>,
    ) -> Result<usize, Error> {
        self.deliver(records, stream_arn, cursor).await
    }
}

impl OutboxTarget {
    /// Sends a message for each record the filter keeps, in batches, moving
    /// the shard's position past each batch once it is sent, and past the
    /// records left out at the end. Returns how many messages were sent.
    async fn deliver(
        &self,
        records: &[Record],
        stream_arn: &str,
        cursor: &mut Cursor<'_>,
    ) -> Result<usize, Error> {
        let mut sent = 0;
        let mut batch = Vec::with_capacity(self.config.batch_size);
        for record in records {
            let sequence_number = record
                .dynamodb()
                .and_then(|stream| stream.sequence_number())
                .ok_or_else(|| Error::Aws("a stream record without a sequence number".into()))?;
            let event = record_json(record, stream_arn);
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
                cursor.handled(sequence_number);
            }
        }
        if !batch.is_empty() {
            self.send(&batch).await?;
            sent += batch.len();
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

    /// Whether the pipe passes `event` (a record as [`record_json`] shapes it).
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
    use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, StreamRecord};
    use serde_json::json;

    use super::*;
    use crate::stream_reader::attribute_json;

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
        record_json(
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
}
