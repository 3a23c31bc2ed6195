//! Reads the tables, queues and pipes out of `infra/template.yaml`, so the
//! local stack and the tests run against exactly what `sam deploy` creates.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_norway::Value;

use crate::Error;

/// A DynamoDB table as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (name, type) pairs.
    pub attributes: Vec<(String, String)>,
    /// (name, HASH|RANGE) pairs.
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<IndexSpec>,
    /// `StreamSpecification.StreamViewType`: the table has a stream when set.
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

/// An SQS queue as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u64>,
    pub retention_period: Option<u64>,
    /// The dead-letter queue's logical id and the receive count that moves a
    /// message there.
    pub redrive: Option<(String, u64)>,
}

/// An EventBridge pipe from a table's stream to a queue, as the template
/// declares it: what the local stand-in ([`crate::outbox_pipe`]) needs to
/// play it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeSpec {
    pub logical_id: String,
    /// The table whose `StreamArn` is the pipe's source.
    pub source_table: String,
    /// The queue whose `Arn` is the pipe's target.
    pub target_queue: String,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub batch_size: Option<u64>,
    /// The dead-letter queue's logical id.
    pub dead_letter_queue: Option<String>,
    /// `FilterCriteria.Filters[].Pattern`, each a JSON event pattern.
    pub filter_patterns: Vec<String>,
    /// `TargetParameters.InputTemplate`; without it the target gets the record.
    pub input_template: Option<String>,
}

/// A Lambda event source mapping as the template declares it: what the
/// local stand-ins ([`crate::stream_mapping`], [`crate::sqs_poller`]) need
/// to play it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSpec {
    pub logical_id: String,
    /// The table (`!GetAtt <Table>.StreamArn`) or queue (`!GetAtt <Queue>.Arn`) read.
    pub source: MappingSource,
    /// `TRIM_HORIZON` or `LATEST` (streams only).
    pub starting_position: Option<String>,
    pub batch_size: Option<u64>,
    /// `FunctionResponseTypes` has `ReportBatchItemFailures`.
    pub reports_item_failures: bool,
    /// `MaximumRetryAttempts` (streams only).
    pub maximum_retry_attempts: Option<u64>,
    /// `DestinationConfig.OnFailure.Destination`: a queue's logical id.
    pub on_failure_queue: Option<String>,
    /// `ScalingConfig.MaximumConcurrency`: a number, or the parameter it refers to.
    pub maximum_concurrency: Option<EnvValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingSource {
    Stream { table: String },
    Queue { queue: String },
}

/// A value of a function's `Environment.Variables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Written out (a number too: the template quotes them).
    Literal(String),
    /// `!Ref Name`: a parameter's value or a resource's physical id.
    Ref(String),
}

/// A Lambda function as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the cargo binary deployed.
    pub binary: String,
    /// `Globals.Function`'s variables and the function's own (which win), by name.
    pub environment: BTreeMap<String, EnvValue>,
    /// `LoggingConfig.SystemLogLevel` (the function's, else the globals',
    /// else Lambda's default `INFO`): whether Lambda writes its
    /// `platform.start` and `platform.report` records (bench: log bytes).
    pub system_log_level: String,
    /// `Timeout` (the function's, else the globals', else Lambda's 3 s):
    /// the local pollers give each batch this deadline, as Lambda does.
    pub timeout: Duration,
}

/// Lambda's timeout when a template says none.
const LAMBDA_DEFAULT_TIMEOUT_SECONDS: u64 = 3;

/// The template's resources (and its parameters' defaults).
#[derive(Debug, Clone)]
pub struct Template {
    resources: BTreeMap<String, Value>,
    parameters: BTreeMap<String, Value>,
    /// `Globals.Function`, which every function inherits.
    function_globals: Option<Value>,
}

impl Template {
    /// The repository's own template.
    pub fn project() -> Result<Self, Error> {
        Self::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
    }

    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::Template(format!("{}: {err}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        let document: Value =
            serde_norway::from_str(text).map_err(|err| Error::Template(err.to_string()))?;
        let resources = document
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| Error::Template("no Resources".into()))?
            .iter()
            .filter_map(|(id, body)| Some((id.as_str()?.to_owned(), body.clone())))
            .collect();
        let parameters = document
            .get("Parameters")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(name, body)| Some((name.as_str()?.to_owned(), body.clone())))
            .collect();
        let function_globals = document
            .get("Globals")
            .and_then(|globals| globals.get("Function"))
            .cloned();
        Ok(Self {
            resources,
            parameters,
            function_globals,
        })
    }

    /// A parameter's default as text (a number's too), e.g. `LogLevel`.
    #[must_use]
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        match self.parameters.get(name)?.get("Default")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The functions (`AWS::Serverless::Function`) with their environments:
    /// what a harness starting a function's binary must give it, read from
    /// where the deployed one gets it.
    pub fn functions(&self) -> Result<Vec<FunctionSpec>, Error> {
        self.of_type("AWS::Serverless::Function")
            .map(|(id, body)| {
                let binary = body
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| text(b.get("Binary")))
                    .ok_or_else(|| {
                        Error::Template(format!("{id}: no Metadata.BuildProperties.Binary"))
                    })?;
                let mut environment = BTreeMap::new();
                for scope in [self.function_globals.as_ref(), body.get("Properties")] {
                    let variables = scope
                        .and_then(|scope| scope.get("Environment"))
                        .and_then(|env| env.get("Variables"))
                        .and_then(Value::as_mapping)
                        .into_iter()
                        .flatten();
                    for (name, value) in variables {
                        let name = name.as_str().ok_or_else(|| {
                            Error::Template(format!("{id}: a variable name that is not text"))
                        })?;
                        let value = env_value(value).ok_or_else(|| {
                            Error::Template(format!("{id}: {name} is neither a literal nor a !Ref"))
                        })?;
                        environment.insert(name.to_owned(), value);
                    }
                }
                let system_log_level = [body.get("Properties"), self.function_globals.as_ref()]
                    .into_iter()
                    .flatten()
                    .find_map(|scope| text(scope.get("LoggingConfig")?.get("SystemLogLevel")))
                    .unwrap_or_else(|| "INFO".to_owned());
                let timeout = [body.get("Properties"), self.function_globals.as_ref()]
                    .into_iter()
                    .flatten()
                    .find_map(|scope| number(scope.get("Timeout")))
                    .unwrap_or(LAMBDA_DEFAULT_TIMEOUT_SECONDS);
                Ok(FunctionSpec {
                    logical_id: id.clone(),
                    binary,
                    environment,
                    system_log_level,
                    timeout: Duration::from_secs(timeout),
                })
            })
            .collect()
    }

    /// One function, by logical id.
    ///
    /// # Errors
    /// The template has no such function, or cannot be read.
    pub fn function(&self, logical_id: &str) -> Result<FunctionSpec, Error> {
        self.functions()?
            .into_iter()
            .find(|function| function.logical_id == logical_id)
            .ok_or_else(|| Error::Template(format!("no function {logical_id}")))
    }

    /// A numeric parameter's default, e.g. `DispatchConcurrency`.
    pub fn number_parameter(&self, name: &str) -> Result<u64, Error> {
        number(self.parameters.get(name).and_then(|p| p.get("Default")))
            .ok_or_else(|| Error::Template(format!("no numeric default for parameter {name}")))
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, body)| body.get("Type").and_then(Value::as_str) == Some(kind))
    }

    pub fn tables(&self) -> Result<Vec<TableSpec>, Error> {
        self.of_type("AWS::DynamoDB::Table")
            .map(|(id, body)| {
                let props = properties(id, body)?;
                Ok(TableSpec {
                    logical_id: id.clone(),
                    attributes: pairs(
                        props.get("AttributeDefinitions"),
                        "AttributeName",
                        "AttributeType",
                    ),
                    key_schema: pairs(props.get("KeySchema"), "AttributeName", "KeyType"),
                    indexes: list(props.get("GlobalSecondaryIndexes"))
                        .iter()
                        .map(|index| IndexSpec {
                            name: text(index.get("IndexName")).unwrap_or_default(),
                            key_schema: pairs(index.get("KeySchema"), "AttributeName", "KeyType"),
                            projection: index
                                .get("Projection")
                                .and_then(|p| text(p.get("ProjectionType")))
                                .unwrap_or_else(|| "ALL".into()),
                        })
                        .collect(),
                    stream_view_type: props
                        .get("StreamSpecification")
                        .and_then(|spec| text(spec.get("StreamViewType"))),
                })
            })
            .collect()
    }

    /// The pipes whose source is a DynamoDB table's stream and whose target a
    /// queue; any other kind of pipe is an error (nothing plays it locally).
    pub fn pipes(&self) -> Result<Vec<PipeSpec>, Error> {
        self.of_type("AWS::Pipes::Pipe")
            .map(|(id, body)| {
                let props = properties(id, body)?;
                let invalid = |what: &str| Error::Template(format!("{id}: {what}"));
                let source_table = props
                    .get("Source")
                    .and_then(get_att)
                    .filter(|(_, attribute)| attribute == "StreamArn")
                    .map(|(table, _)| table)
                    .ok_or_else(|| invalid("Source must be !GetAtt <Table>.StreamArn"))?;
                let target_queue = props
                    .get("Target")
                    .and_then(get_att)
                    .filter(|(_, attribute)| attribute == "Arn")
                    .map(|(queue, _)| queue)
                    .ok_or_else(|| invalid("Target must be !GetAtt <Queue>.Arn"))?;
                let source = props.get("SourceParameters");
                let stream = source
                    .and_then(|source| source.get("DynamoDBStreamParameters"))
                    .ok_or_else(|| invalid("no SourceParameters.DynamoDBStreamParameters"))?;
                let filter_patterns = list(
                    source
                        .and_then(|source| source.get("FilterCriteria"))
                        .and_then(|criteria| criteria.get("Filters")),
                )
                .iter()
                .map(|filter| {
                    text(filter.get("Pattern"))
                        .ok_or_else(|| invalid("a filter without a literal Pattern"))
                })
                .collect::<Result<_, _>>()?;
                Ok(PipeSpec {
                    logical_id: id.clone(),
                    source_table,
                    target_queue,
                    starting_position: text(stream.get("StartingPosition"))
                        .ok_or_else(|| invalid("StartingPosition missing"))?,
                    batch_size: number(stream.get("BatchSize")),
                    dead_letter_queue: stream
                        .get("DeadLetterConfig")
                        .and_then(|config| config.get("Arn"))
                        .and_then(get_att_target),
                    filter_patterns,
                    input_template: props
                        .get("TargetParameters")
                        .and_then(|target| text(target.get("InputTemplate"))),
                })
            })
            .collect()
    }

    /// The pipe `logical_id`.
    pub fn pipe(&self, logical_id: &str) -> Result<PipeSpec, Error> {
        self.pipes()?
            .into_iter()
            .find(|pipe| pipe.logical_id == logical_id)
            .ok_or_else(|| Error::Template(format!("no pipe {logical_id} in the template")))
    }

    /// The event source mapping `logical_id`: a table's stream or a queue to
    /// a function.
    pub fn mapping(&self, logical_id: &str) -> Result<MappingSpec, Error> {
        let invalid = |what: &str| Error::Template(format!("{logical_id}: {what}"));
        let body = self
            .resources
            .get(logical_id)
            .filter(|body| {
                body.get("Type").and_then(Value::as_str) == Some("AWS::Lambda::EventSourceMapping")
            })
            .ok_or_else(|| invalid("no such event source mapping in the template"))?;
        let props = properties(logical_id, body)?;
        let source = match props.get("EventSourceArn").and_then(get_att) {
            Some((table, attribute)) if attribute == "StreamArn" => MappingSource::Stream { table },
            Some((queue, attribute)) if attribute == "Arn" => MappingSource::Queue { queue },
            _ => {
                return Err(invalid(
                    "EventSourceArn must be !GetAtt <Table>.StreamArn or <Queue>.Arn",
                ));
            }
        };
        Ok(MappingSpec {
            logical_id: logical_id.to_owned(),
            source,
            starting_position: text(props.get("StartingPosition")),
            batch_size: number(props.get("BatchSize")),
            reports_item_failures: list(props.get("FunctionResponseTypes"))
                .iter()
                .any(|kind| kind.as_str() == Some("ReportBatchItemFailures")),
            maximum_retry_attempts: number(props.get("MaximumRetryAttempts")),
            on_failure_queue: props
                .get("DestinationConfig")
                .and_then(|config| config.get("OnFailure"))
                .and_then(|failure| failure.get("Destination"))
                .and_then(get_att_target),
            maximum_concurrency: props
                .get("ScalingConfig")
                .and_then(|scaling| scaling.get("MaximumConcurrency"))
                .and_then(env_value),
        })
    }

    /// A number written out, or the default of the parameter it refers to.
    pub fn resolve_number(&self, value: &EnvValue) -> Result<u64, Error> {
        match value {
            EnvValue::Literal(text) => text
                .parse()
                .map_err(|_| Error::Template(format!("{text} is not a number"))),
            EnvValue::Ref(name) => self.number_parameter(name),
        }
    }

    /// The logical ids of the template's S3 buckets.
    pub fn buckets(&self) -> Vec<String> {
        self.of_type("AWS::S3::Bucket")
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether the bucket `logical_id` keeps object versions
    /// (`VersioningConfiguration: Status: Enabled`).
    #[must_use]
    pub fn bucket_versioned(&self, logical_id: &str) -> bool {
        self.resources
            .get(logical_id)
            .and_then(|body| body.get("Properties"))
            .and_then(|props| props.get("VersioningConfiguration"))
            .and_then(|config| config.get("Status"))
            .and_then(Value::as_str)
            == Some("Enabled")
    }

    pub fn queues(&self) -> Result<Vec<QueueSpec>, Error> {
        self.of_type("AWS::SQS::Queue")
            .map(|(id, body)| {
                let props = properties(id, body)?;
                let redrive = match props.get("RedrivePolicy") {
                    Some(policy) => {
                        let target = policy
                            .get("deadLetterTargetArn")
                            .and_then(get_att_target)
                            .ok_or_else(|| {
                                Error::Template(format!(
                                    "{id}: deadLetterTargetArn must be a GetAtt"
                                ))
                            })?;
                        let count = number(policy.get("maxReceiveCount")).ok_or_else(|| {
                            Error::Template(format!("{id}: maxReceiveCount missing"))
                        })?;
                        Some((target, count))
                    }
                    None => None,
                };
                Ok(QueueSpec {
                    logical_id: id.clone(),
                    visibility_timeout: number(props.get("VisibilityTimeout")),
                    retention_period: number(props.get("MessageRetentionPeriod")),
                    redrive,
                })
            })
            .collect()
    }
}

fn properties<'a>(id: &str, body: &'a Value) -> Result<&'a Value, Error> {
    body.get("Properties")
        .ok_or_else(|| Error::Template(format!("{id} has no Properties")))
}

fn list(value: Option<&Value>) -> &[Value] {
    value
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

fn pairs(value: Option<&Value>, first: &str, second: &str) -> Vec<(String, String)> {
    list(value)
        .iter()
        .filter_map(|entry| Some((text(entry.get(first))?, text(entry.get(second))?)))
        .collect()
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A literal, or `!Ref Name` / `{"Ref": "Name"}`.
fn env_value(value: &Value) -> Option<EnvValue> {
    match value {
        Value::String(s) => Some(EnvValue::Literal(s.clone())),
        Value::Number(n) => Some(EnvValue::Literal(n.to_string())),
        Value::Bool(b) => Some(EnvValue::Literal(b.to_string())),
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            tagged.value.as_str().map(|id| EnvValue::Ref(id.to_owned()))
        }
        Value::Mapping(map) => map
            .get("Ref")
            .and_then(Value::as_str)
            .map(|id| EnvValue::Ref(id.to_owned())),
        _ => None,
    }
}

/// `!GetAtt Queue.Arn` or `{"Fn::GetAtt": ["Queue", "Arn"]}` → `Queue`.
fn get_att_target(value: &Value) -> Option<String> {
    get_att(value).map(|(id, _)| id)
}

/// `!GetAtt Queue.Arn` or `{"Fn::GetAtt": ["Queue", "Arn"]}` → (`Queue`, `Arn`).
fn get_att(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => tagged
            .value
            .as_str()
            .and_then(|s| s.split_once('.'))
            .map(|(id, attribute)| (id.to_owned(), attribute.to_owned())),
        Value::Mapping(map) => {
            let parts = map.get("Fn::GetAtt").and_then(Value::as_sequence)?;
            match parts.as_slice() {
                [id, attribute] => Some((id.as_str()?.to_owned(), attribute.as_str()?.to_owned())),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Globals:
  Function:
    Environment:
      Variables:
        T: global
        LOG: !Ref Level
Parameters:
  Level: {Type: String, Default: info}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions:
        - {AttributeName: k, AttributeType: S}
      KeySchema:
        - {AttributeName: k, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: by_x
          KeySchema: [{AttributeName: x, KeyType: HASH}]
          Projection: {ProjectionType: KEYS_ONLY}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Pipe:
    Type: AWS::Pipes::Pipe
    Properties:
      RoleArn: !GetAtt Role.Arn
      Source: !GetAtt Table.StreamArn
      SourceParameters:
        DynamoDBStreamParameters:
          StartingPosition: TRIM_HORIZON
          BatchSize: 10
          DeadLetterConfig: {Arn: !GetAtt Dlq.Arn}
        FilterCriteria:
          Filters:
            - Pattern: '{"eventName":["INSERT"]}'
      Target: {"Fn::GetAtt": [Queue, Arn]}
      TargetParameters: {InputTemplate: '<$.dynamodb.Keys>'}
  Dlq:
    Type: AWS::SQS::Queue
    Properties: {MessageRetentionPeriod: 1209600}
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 8
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn-bin}}
    Properties: {Environment: {Variables: {T: !Ref Table, MAX: "8", Q: {Ref: Queue}}}}
"#;

    /// A property of a resource of the project's template.
    fn project_property<'a>(template: &'a Template, id: &str, path: &[&str]) -> &'a Value {
        let mut value = template
            .resources
            .get(id)
            .unwrap_or_else(|| panic!("no {id}"));
        for key in ["Properties"].iter().chain(path) {
            value = value
                .get(*key)
                .unwrap_or_else(|| panic!("no {key} in {id}"));
        }
        value
    }

    #[test]
    fn the_queues_receive_count_is_only_a_safety_net_far_above_the_schedule() {
        let template = Template::project().unwrap();
        let queue = template.queues().unwrap();
        let callback = queue
            .iter()
            .find(|q| q.logical_id == "CallbackQueue")
            .unwrap();
        let max_posts = number(Some(project_property(
            &template,
            "CallbackDispatchFunction",
            &["Environment", "Variables", "CALLBACK_MAX_POSTS"],
        )))
        .unwrap();
        // Deliveries that wait for a lease or meet a store error do not post;
        // the dispatcher dead-letters a spent schedule itself.
        let safety_net = callback.redrive.as_ref().map(|(_, count)| *count).unwrap();
        assert!(safety_net >= 10 * max_posts, "{safety_net} vs {max_posts}");
    }

    #[test]
    fn a_functions_timeout_is_its_own_else_the_globals() {
        let template = Template::project().unwrap();
        let timeout = |id: &str| template.function(id).unwrap().timeout.as_secs();
        assert_eq!(timeout("CallbackDispatchFunction"), 60);
        assert_eq!(timeout("WebhookDispatchFunction"), 30);
        assert_eq!(timeout("OrderIntakeFunction"), 10, "the globals'");
    }

    #[test]
    fn the_callback_queue_hides_messages_for_six_dispatcher_timeouts() {
        let template = Template::project().unwrap();
        let queues = template.queues().unwrap();
        let callback = queues
            .iter()
            .find(|q| q.logical_id == "CallbackQueue")
            .unwrap();
        let timeout = number(Some(project_property(
            &template,
            "CallbackDispatchFunction",
            &["Timeout"],
        )));
        assert!(
            callback.visibility_timeout >= timeout.map(|t| t * 6),
            "{callback:?} {timeout:?}"
        );
    }

    #[test]
    fn reads_tables_with_their_indexes() {
        let tables = Template::parse(SAMPLE).unwrap().tables().unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].key_schema, [("k".to_owned(), "HASH".to_owned())]);
        assert_eq!(tables[0].indexes[0].name, "by_x");
        assert_eq!(tables[0].indexes[0].projection, "KEYS_ONLY");
    }

    #[test]
    fn reads_a_tables_stream() {
        let tables = Template::parse(SAMPLE).unwrap().tables().unwrap();
        assert_eq!(tables[0].stream_view_type.as_deref(), Some("NEW_IMAGE"));
    }

    #[test]
    fn reads_a_pipe_from_a_stream_to_a_queue() {
        let pipe = Template::parse(SAMPLE).unwrap().pipe("Pipe").unwrap();
        assert_eq!(
            pipe,
            PipeSpec {
                logical_id: "Pipe".into(),
                source_table: "Table".into(),
                target_queue: "Queue".into(),
                starting_position: "TRIM_HORIZON".into(),
                batch_size: Some(10),
                dead_letter_queue: Some("Dlq".into()),
                filter_patterns: vec![r#"{"eventName":["INSERT"]}"#.into()],
                input_template: Some("<$.dynamodb.Keys>".into()),
            }
        );
    }

    #[test]
    fn the_orders_table_streams_old_and_new_images() {
        let tables = Template::project().unwrap().tables().unwrap();
        let orders = tables
            .iter()
            .find(|t| t.logical_id == "OrdersTable")
            .unwrap();
        // The fan-out compares them to find a write's webhook events.
        assert_eq!(
            orders.stream_view_type.as_deref(),
            Some("NEW_AND_OLD_IMAGES")
        );
    }

    #[test]
    fn the_webhook_mappings_read_the_orders_stream_and_the_delivery_queue() {
        let template = Template::project().unwrap();
        let fan_out = template.mapping("WebhookOrderChanges").unwrap();
        assert_eq!(
            fan_out.source,
            MappingSource::Stream {
                table: "OrdersTable".into()
            }
        );
        assert_eq!(fan_out.starting_position.as_deref(), Some("TRIM_HORIZON"));
        assert_eq!(fan_out.batch_size, Some(100));
        assert!(fan_out.reports_item_failures);
        assert_eq!(fan_out.maximum_retry_attempts, Some(50));
        assert_eq!(
            fan_out.on_failure_queue.as_deref(),
            Some("WebhookFanOutDeadLetterQueue")
        );
        let dispatch = template.mapping("WebhookDeliveries").unwrap();
        assert_eq!(
            dispatch.source,
            MappingSource::Queue {
                queue: "WebhookDeliveryQueue".into()
            }
        );
        assert_eq!(dispatch.batch_size, Some(10));
        assert!(dispatch.reports_item_failures);
        assert_eq!(
            template
                .resolve_number(dispatch.maximum_concurrency.as_ref().unwrap())
                .unwrap(),
            20
        );
        assert!(template.mapping("WebhooksTable").is_err());
    }

    /// The contract the callback code relies on: one message per write that
    /// sets `outbox`, with a body of two strings.
    #[test]
    fn the_outbox_pipe_sends_each_write_that_sets_the_outbox_to_the_callback_queue() {
        let pipe = Template::project()
            .unwrap()
            .pipe("CallbackOutboxPipe")
            .unwrap();
        assert_eq!(pipe.source_table, "OrdersTable");
        assert_eq!(pipe.target_queue, "CallbackQueue");
        assert_eq!(pipe.starting_position, "TRIM_HORIZON");
        assert_eq!(pipe.batch_size, Some(10));
        assert_eq!(
            pipe.dead_letter_queue.as_deref(),
            Some("OutboxDeadLetterQueue")
        );
        assert_eq!(
            pipe.filter_patterns,
            [
                r#"{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"outbox":{"N":[{"exists":true}]}}}}"#
            ]
        );
        assert_eq!(
            pipe.input_template.as_deref(),
            Some(
                r#"{"order_number": "<$.dynamodb.Keys.order_number.S>", "generation": "<$.dynamodb.NewImage.outbox.N>"}"#
            )
        );
    }

    #[test]
    fn a_functions_environment_is_the_globals_overridden_by_its_own_variables() {
        let template = Template::parse(SAMPLE).unwrap();
        let functions = template.functions().unwrap();
        let reference = |id: &str| EnvValue::Ref(id.to_owned());
        assert_eq!(
            functions,
            [FunctionSpec {
                logical_id: "Fn".into(),
                binary: "fn-bin".into(),
                environment: BTreeMap::from([
                    ("LOG".to_owned(), reference("Level")),
                    ("MAX".to_owned(), EnvValue::Literal("8".into())),
                    ("Q".to_owned(), reference("Queue")),
                    ("T".to_owned(), reference("Table")),
                ]),
                system_log_level: "INFO".into(),
                timeout: Duration::from_secs(3),
            }]
        );
        assert_eq!(template.parameter_default("Level").as_deref(), Some("info"));
    }

    /// What broke `make bench` once: order-intake started without the
    /// labels bucket a hand-kept list had missed.
    #[test]
    fn every_function_of_the_project_gets_the_tables_and_its_variables() {
        let functions = Template::project().unwrap().functions().unwrap();
        let binaries: Vec<_> = functions.iter().map(|f| f.binary.as_str()).collect();
        assert_eq!(
            binaries,
            [
                "callback-dispatch",
                "order-intake",
                "personal-data-sweep",
                "warehouse-events",
                "webhook-api",
                "webhook-dispatch",
                "webhook-fanout"
            ]
        );
        for function in &functions {
            let env = &function.environment;
            assert_eq!(env["ORDERS_TABLE"], EnvValue::Ref("OrdersTable".into()));
            assert_eq!(env["RUST_LOG"], EnvValue::Ref("LogLevel".into()));
        }
        let intake = &functions[1].environment;
        assert_eq!(
            intake["LABELS_BUCKET"],
            EnvValue::Ref("LabelsBucket".into())
        );
    }

    #[test]
    fn reads_queues_with_their_redrive_policy() {
        let queues = Template::parse(SAMPLE).unwrap().queues().unwrap();
        let queue = queues.iter().find(|q| q.logical_id == "Queue").unwrap();
        assert_eq!(queue.redrive, Some(("Dlq".to_owned(), 8)));
        assert_eq!(queue.visibility_timeout, Some(360));
    }
}
