//! The alarms of infra/template.yaml reach someone, and every failure that
//! loses time or data has one:
//! - every alarm notifies a topic of the template that CloudWatch can publish
//!   to: unencrypted, or encrypted with a key of the template whose policy lets
//!   `cloudwatch.amazonaws.com` use it (`kms:Decrypt`, `kms:GenerateDataKey*`)
//!   for that alarm (an AWS managed key such as `alias/aws/sns` cannot be
//!   given that grant: alarms on such a topic change state and notify nobody);
//! - each failure listed in [`required_alarms`] has an alarm on its metric;
//! - each function rolls back its canary on its own error alarm;
//! - docs/operations.md has a section for every alarm.
//!
//! The checks are functions returning the problems found, so the tests at the
//! end can show each one failing on a broken copy of the template.

use serde_norway::{Mapping, Value};

mod repo;

fn resources(template: &Value) -> &Mapping {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template has Resources")
}

/// (logical id, resource) of every resource of `kind`.
fn of_type<'a>(template: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
    resources(template)
        .iter()
        .filter(move |(_, body)| body.get("Type").and_then(Value::as_str) == Some(kind))
        .map(|(id, body)| (id.as_str().unwrap_or_default(), body))
}

fn property<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties").and_then(|p| p.get(key))
}

/// The logical id that `!Ref X`, `!GetAtt X.Attr` (or their long forms) name.
fn referenced(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
            tagged.value.as_str().and_then(|s| s.split('.').next())
        }
        Value::Mapping(map) => map.get("Ref").and_then(Value::as_str).or_else(|| {
            map.get("Fn::GetAtt")
                .and_then(Value::as_sequence)
                .and_then(|parts| parts.first())
                .and_then(Value::as_str)
        }),
        _ => None,
    }
}

/// The text of a literal or a `!Sub` string.
fn sub_text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str(),
        Value::Mapping(map) => map.get("Fn::Sub").and_then(Value::as_str),
        _ => None,
    }
}

fn list(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    }
}

/// One metric an alarm watches: namespace, name and its dimensions'
/// (name, referenced logical id or literal).
#[derive(Debug)]
struct Watched {
    namespace: String,
    name: String,
    dimensions: Vec<(String, String)>,
}

fn dimensions(metric: &Value) -> Vec<(String, String)> {
    list(metric.get("Dimensions"))
        .into_iter()
        .filter_map(|d| {
            let name = d.get("Name")?.as_str()?.to_owned();
            let value = d.get("Value")?;
            let value = referenced(value).or_else(|| value.as_str())?.to_owned();
            Some((name, value))
        })
        .collect()
}

/// The metrics an alarm watches: its own, or those of its metric-math query.
fn watched(alarm: &Value) -> Vec<Watched> {
    let mut out = Vec::new();
    if let (Some(namespace), Some(name)) = (
        property(alarm, "Namespace").and_then(Value::as_str),
        property(alarm, "MetricName").and_then(Value::as_str),
    ) {
        out.push(Watched {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: alarm.get("Properties").map(dimensions).unwrap_or_default(),
        });
    }
    for query in list(property(alarm, "Metrics")) {
        let Some(metric) = query.get("MetricStat").and_then(|s| s.get("Metric")) else {
            continue;
        };
        if let (Some(namespace), Some(name)) = (
            metric.get("Namespace").and_then(Value::as_str),
            metric.get("MetricName").and_then(Value::as_str),
        ) {
            out.push(Watched {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                dimensions: dimensions(metric),
            });
        }
    }
    out
}

/// A failure that must raise an alarm: the metric that shows it, and the
/// resource its dimension names (if it has one).
#[derive(Debug)]
struct Required {
    failure: String,
    namespace: &'static str,
    metric: &'static str,
    dimension: Option<(&'static str, String)>,
}

impl Required {
    fn new(failure: impl Into<String>, namespace: &'static str, metric: &'static str) -> Self {
        Self {
            failure: failure.into(),
            namespace,
            metric,
            dimension: None,
        }
    }

    fn on(mut self, dimension: &'static str, logical_id: &str) -> Self {
        self.dimension = Some((dimension, logical_id.to_owned()));
        self
    }

    fn met_by(&self, watched: &Watched) -> bool {
        watched.namespace == self.namespace
            && watched.name == self.metric
            && self.dimension.as_ref().is_none_or(|(name, id)| {
                watched.dimensions.iter().any(|(n, v)| n == name && v == id)
            })
    }
}

/// Every failure that loses time or data, for the resources `template` has.
fn required_alarms(template: &Value) -> Vec<Required> {
    let mut required = vec![
        Required::new(
            "circuit breaker open for minutes",
            "WarehouseCallbacks",
            "BreakerOpened",
        ),
        Required::new(
            "partner rejects our credentials",
            "WarehouseCallbacks",
            "PartnerAuthFailed",
        ),
        Required::new("partner refuses callbacks", "WarehouseCallbacks", "Failed"),
        Required::new(
            "order-number collision between clients",
            "WarehouseOrders",
            "OrderNumberCollision",
        ),
        Required::new(
            "callback waiting in its queue",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
        )
        .on("QueueName", "CallbackQueue"),
        Required::new(
            "webhook endpoint disabled",
            "WarehouseWebhooks",
            "EndpointDisabled",
        ),
    ];
    for (id, _) in of_type(template, "AWS::Serverless::Function") {
        required.push(
            Required::new(format!("{id} errors"), "AWS/Lambda", "Errors").on("FunctionName", id),
        );
        required.push(
            Required::new(format!("{id} throttled"), "AWS/Lambda", "Throttles")
                .on("FunctionName", id),
        );
    }
    for (id, _) in of_type(template, "AWS::Serverless::HttpApi") {
        required.push(
            Required::new(format!("{id} answers 5xx"), "AWS/ApiGateway", "5xx").on("ApiId", id),
        );
    }
    for (id, pipe) in of_type(template, "AWS::Pipes::Pipe") {
        for metric in ["ExecutionFailed", "TargetStageFailed"] {
            required.push(
                Required::new(
                    format!("{id} fails ({metric})"),
                    "AWS/EventBridge/Pipes",
                    metric,
                )
                .on("PipeName", id),
            );
        }
        let dlq = property(pipe, "SourceParameters")
            .and_then(|p| p.get("DynamoDBStreamParameters"))
            .and_then(|p| p.get("DeadLetterConfig"))
            .and_then(|c| c.get("Arn"))
            .and_then(referenced);
        required.extend(dlq.map(dead_letter_queue_holds_messages));
    }
    // A stream mapping's on-failure destination holds what was never processed.
    for (_, mapping) in of_type(template, "AWS::Lambda::EventSourceMapping") {
        let dlq = property(mapping, "DestinationConfig")
            .and_then(|c| c.get("OnFailure"))
            .and_then(|f| f.get("Destination"))
            .and_then(referenced);
        required.extend(dlq.map(dead_letter_queue_holds_messages));
    }
    for (_, queue) in of_type(template, "AWS::SQS::Queue") {
        let dlq = property(queue, "RedrivePolicy")
            .and_then(|p| p.get("deadLetterTargetArn"))
            .and_then(referenced);
        required.extend(dlq.map(dead_letter_queue_holds_messages));
    }
    required
}

fn dead_letter_queue_holds_messages(dlq: &str) -> Required {
    Required::new(
        format!("{dlq} holds messages"),
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    .on("QueueName", dlq)
}

fn missing_alarms(template: &Value) -> Vec<String> {
    let watched: Vec<Watched> = of_type(template, "AWS::CloudWatch::Alarm")
        .flat_map(|(_, alarm)| watched(alarm))
        .collect();
    required_alarms(template)
        .into_iter()
        .filter(|required| !watched.iter().any(|w| required.met_by(w)))
        .map(|required| format!("no alarm for: {} ({required:?})", required.failure))
        .collect()
}

/// Why CloudWatch cannot publish alarm `alarm_id` to topic `topic_id`, if it cannot.
fn undeliverable(
    template: &Value,
    alarm_id: &str,
    alarm: &Value,
    topic_id: &str,
) -> Option<String> {
    let topic = resources(template).get(topic_id);
    if topic.and_then(|t| t.get("Type")).and_then(Value::as_str) != Some("AWS::SNS::Topic") {
        return Some(format!(
            "{alarm_id} notifies {topic_id}, which is not a topic of the template"
        ));
    }
    let Some(key) = topic.and_then(|t| property(t, "KmsMasterKeyId")) else {
        return None; // unencrypted: CloudWatch can publish
    };
    let Some(key_id) = referenced(key) else {
        return Some(format!(
            "{topic_id} is encrypted with {key:?}, not a key of this stack: an AWS managed key's \
             policy cannot let CloudWatch use it, so {alarm_id} would notify nobody"
        ));
    };
    let Some(policy) = resources(template)
        .get(key_id)
        .and_then(|k| property(k, "KeyPolicy"))
    else {
        return Some(format!(
            "{topic_id}'s key {key_id} is not a KMS key of the template"
        ));
    };
    let grants = list(policy.get("Statement")).into_iter().any(|statement| {
        let allows = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
        let to_cloudwatch = statement
            .get("Principal")
            .and_then(|p| p.get("Service"))
            .is_some_and(|s| {
                list(Some(s))
                    .iter()
                    .any(|s| s.as_str() == Some("cloudwatch.amazonaws.com"))
            });
        let actions: Vec<&str> = list(statement.get("Action"))
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        let may = |action: &str| actions.contains(&action) || actions.contains(&"kms:*");
        allows
            && to_cloudwatch
            && may("kms:Decrypt")
            && may("kms:GenerateDataKey*")
            && condition_admits(statement.get("Condition"), alarm)
    });
    (!grants).then(|| {
        format!(
            "{topic_id}'s key {key_id} does not let cloudwatch.amazonaws.com use it (kms:Decrypt, \
             kms:GenerateDataKey*) for {alarm_id}: the alarm would notify nobody"
        )
    })
}

/// Whether a key-policy condition admits the alarm: none, or an alarm ARN
/// pattern that the alarm's (generated or given) name matches.
fn condition_admits(condition: Option<&Value>, alarm: &Value) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    let patterns: Vec<&str> = ["ArnLike", "ArnEquals", "StringLike", "StringEquals"]
        .iter()
        .filter_map(|op| condition.get(*op).and_then(|c| c.get("aws:SourceArn")))
        .flat_map(|v| list(Some(v)))
        .filter_map(sub_text)
        .collect();
    if patterns.is_empty() {
        return true; // conditioned on other keys only (the account)
    }
    // CloudFormation names an alarm without AlarmName `{stack}-{logical id}-{suffix}`.
    let name = property(alarm, "AlarmName")
        .and_then(sub_text)
        .map_or_else(|| "${AWS::StackName}-GENERATED".to_owned(), str::to_owned);
    patterns.iter().any(|pattern| {
        pattern
            .split_once(":alarm:")
            .is_some_and(|(_, name_pattern)| match name_pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == name_pattern,
            })
    })
}

fn undeliverable_alarms(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, alarm) in of_type(template, "AWS::CloudWatch::Alarm") {
        let actions = list(property(alarm, "AlarmActions"));
        if actions.is_empty() {
            problems.push(format!("{id} has no AlarmActions: it would notify nobody"));
        }
        for action in actions {
            match referenced(action) {
                Some(topic) => problems.extend(undeliverable(template, id, alarm, topic)),
                None => problems.push(format!(
                    "{id} notifies {action:?}, not a topic of the template"
                )),
            }
        }
    }
    problems
}

/// Each function deploys through an alias and rolls back on its own error alarm.
fn unguarded_deploys(template: &Value) -> Vec<String> {
    let globals = template.get("Globals").and_then(|g| g.get("Function"));
    let setting = |function: &Value, key: &str| -> Option<Value> {
        property(function, key)
            .or_else(|| globals.and_then(|g| g.get(key)))
            .cloned()
    };
    let mut problems = Vec::new();
    for (id, function) in of_type(template, "AWS::Serverless::Function") {
        if setting(function, "AutoPublishAlias").is_none() {
            problems.push(format!(
                "{id} has no AutoPublishAlias: a release reaches all traffic at once"
            ));
        }
        let rollback: Vec<&str> = property(function, "DeploymentPreference")
            .and_then(|p| p.get("Alarms"))
            .map(|alarms| {
                list(Some(alarms))
                    .into_iter()
                    .filter_map(referenced)
                    .collect()
            })
            .unwrap_or_default();
        let own_errors = rollback.iter().any(|alarm| {
            resources(template)
                .get(*alarm)
                .map(watched)
                .unwrap_or_default()
                .iter()
                .any(|w| {
                    Required::new("", "AWS/Lambda", "Errors")
                        .on("FunctionName", id)
                        .met_by(w)
                })
        });
        if !own_errors {
            problems.push(format!(
                "{id}'s canary does not roll back on its error alarm ({rollback:?})"
            ));
        }
    }
    problems
}

fn undocumented_alarms(template: &Value, operations: &str) -> Vec<String> {
    of_type(template, "AWS::CloudWatch::Alarm")
        .filter(|(id, _)| {
            !operations
                .lines()
                .any(|l| l.starts_with("### ") && l.contains(&format!("`{id}`")))
        })
        .map(|(id, _)| format!("docs/operations.md has no \"### `{id}`\" section"))
        .collect()
}

#[test]
fn every_alarm_reaches_a_topic_cloudwatch_can_publish_to() {
    repo::assert_template_passes(undeliverable_alarms);
}

#[test]
fn every_failure_that_loses_time_or_data_has_an_alarm() {
    repo::assert_template_passes(missing_alarms);
}

#[test]
fn every_function_rolls_its_canary_back_on_its_error_alarm() {
    repo::assert_template_passes(unguarded_deploys);
}

#[test]
fn the_operations_guide_answers_every_alarm() {
    repo::assert_template_passes(|template| {
        undocumented_alarms(template, &repo::read("docs/operations.md"))
    });
}

// The checks above on broken copies of the template: each break is found.

fn without_resource(mut template: Value, id: &str) -> Value {
    template
        .get_mut("Resources")
        .and_then(Value::as_mapping_mut)
        .expect("Resources")
        .remove(id)
        .unwrap_or_else(|| panic!("no {id} in the template"));
    template
}

/// The template with property `key` of resource `id` set to `value`.
fn with_property(id: &str, key: &str, value: &str) -> Value {
    let mut template = repo::template();
    template["Resources"][id]["Properties"]
        .as_mapping_mut()
        .unwrap_or_else(|| panic!("{id} has Properties"))
        .insert(Value::from(key), Value::from(value));
    template
}

#[test]
fn a_topic_under_the_aws_managed_key_is_found() {
    let broken = with_property("AlarmTopic", "KmsMasterKeyId", "alias/aws/sns");
    let problems = undeliverable_alarms(&broken);
    assert!(
        problems.iter().any(|p| p.contains("CallbackDeadLetterAlarm") && p.contains("not a key of this stack")),
        "{problems:#?}"
    );
}

#[test]
fn a_key_that_does_not_let_cloudwatch_publish_is_found() {
    let mut broken = repo::template();
    let statements = broken["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence_mut()
        .expect("the key has statements");
    statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some("StackAlarmsPublish"));
    let problems = undeliverable_alarms(&broken);
    repo::assert_found(&problems, "cloudwatch.amazonaws.com");
}

#[test]
fn an_alarm_named_outside_the_keys_condition_is_found() {
    let broken = with_property("CallbackAgeAlarm", "AlarmName", "callback-age");
    let problems = undeliverable_alarms(&broken);
    repo::assert_found(&problems, "CallbackAgeAlarm");
}

#[test]
fn a_removed_alarm_is_found() {
    for (alarm, failure) in [
        ("CallbackAgeAlarm", "callback waiting in its queue"),
        ("CallbackBreakerOpenAlarm", "circuit breaker open"),
        ("OutboxPipeFailedAlarm", "CallbackOutboxPipe fails"),
        (
            "CallbackDispatchThrottlesAlarm",
            "CallbackDispatchFunction throttled",
        ),
        (
            "OutboxDeadLetterAlarm",
            "OutboxDeadLetterQueue holds messages",
        ),
        ("WebhookEndpointDisabledAlarm", "webhook endpoint disabled"),
        (
            "WebhookFanOutDeadLetterAlarm",
            "WebhookFanOutDeadLetterQueue holds messages",
        ),
    ] {
        let problems = missing_alarms(&without_resource(repo::template(), alarm));
        repo::assert_found(&problems, failure);
    }
}

#[test]
fn a_new_function_without_alarms_is_found() {
    let function: Value =
        serde_norway::from_str("Type: AWS::Serverless::Function\nProperties: {}\n").unwrap();
    let mut broken = repo::template();
    broken["Resources"]
        .as_mapping_mut()
        .unwrap()
        .insert(Value::from("NewFunction"), function);
    let missing = missing_alarms(&broken);
    repo::assert_found(&missing, "NewFunction errors");
    repo::assert_found(&missing, "NewFunction throttled");
    let unguarded = unguarded_deploys(&broken);
    repo::assert_found(&unguarded, "NewFunction");
}

#[test]
fn an_alarm_missing_from_the_operations_guide_is_found() {
    let problems = undocumented_alarms(&repo::template(), "# Operations\n");
    repo::assert_found(&problems, "CallbackAgeAlarm");
}
