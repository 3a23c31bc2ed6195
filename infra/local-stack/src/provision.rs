//! Creates the template's tables and queues on the emulators, under a name
//! prefix so several stacks (one per test) can share one emulator.

use std::collections::BTreeMap;

use adapters::sdk;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::Error;
use crate::template::{IndexSpec, QueueSpec, TableSpec, Template};

/// Physical names of what was created, by the template's logical id.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub tables: BTreeMap<String, String>,
    /// The stream ARN of each table that has a stream.
    pub stream_arns: BTreeMap<String, String>,
    pub queue_urls: BTreeMap<String, String>,
    pub queue_arns: BTreeMap<String, String>,
    /// `maxReceiveCount` of each queue that has a dead-letter queue.
    pub max_receive_counts: BTreeMap<String, u64>,
    /// Bucket names by the template's logical id.
    pub buckets: BTreeMap<String, String>,
}

impl Provisioned {
    /// The physical name of a table, e.g. `table("OrdersTable")`.
    pub fn table(&self, logical_id: &str) -> Result<&str, Error> {
        lookup(&self.tables, logical_id, "no table {} in the template")
    }

    /// The ARN of a table's stream, e.g. `stream_arn("OrdersTable")`.
    pub fn stream_arn(&self, logical_id: &str) -> Result<&str, Error> {
        lookup(&self.stream_arns, logical_id, "table {} has no stream")
    }

    pub fn bucket(&self, logical_id: &str) -> Result<&str, Error> {
        lookup(&self.buckets, logical_id, "no bucket {} in the template")
    }

    pub fn queue_url(&self, logical_id: &str) -> Result<&str, Error> {
        lookup(&self.queue_urls, logical_id, "no queue {} in the template")
    }

    pub fn queue_arn(&self, logical_id: &str) -> Result<&str, Error> {
        lookup(&self.queue_arns, logical_id, "no queue {} in the template")
    }
}

/// `names[logical_id]`, or the template error `missing` with the id in
/// place of its `{}`.
fn lookup<'a>(
    names: &'a BTreeMap<String, String>,
    logical_id: &str,
    missing: &str,
) -> Result<&'a str, Error> {
    names
        .get(logical_id)
        .map(String::as_str)
        .ok_or_else(|| Error::Template(missing.replacen("{}", logical_id, 1)))
}

/// Creates every table and queue of `template`, named `{prefix}-{LogicalId}`.
pub async fn provision(
    template: &Template,
    dynamodb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Result<Provisioned, Error> {
    let mut provisioned = Provisioned::default();
    for table in template.tables()? {
        let name = format!("{prefix}-{}", table.logical_id);
        if let Some(stream_arn) = create_table(dynamodb, &table, &name).await? {
            provisioned
                .stream_arns
                .insert(table.logical_id.clone(), stream_arn);
        }
        provisioned.tables.insert(table.logical_id, name);
    }
    // Dead-letter queues first: the others name them in their redrive policy.
    let (plain, redriven): (Vec<QueueSpec>, Vec<QueueSpec>) = template
        .queues()?
        .into_iter()
        .partition(|queue| queue.redrive.is_none());
    for queue in plain.iter().chain(&redriven) {
        let name = format!("{prefix}-{}", queue.logical_id);
        let url = create_queue(sqs, queue, &name, &provisioned).await?;
        let arn = queue_arn(sqs, &url).await?;
        provisioned.queue_urls.insert(queue.logical_id.clone(), url);
        provisioned.queue_arns.insert(queue.logical_id.clone(), arn);
        if let Some((_, count)) = &queue.redrive {
            provisioned
                .max_receive_counts
                .insert(queue.logical_id.clone(), *count);
        }
    }
    Ok(provisioned)
}

/// Creates every S3 bucket of `template`, named `{prefix}-{logicalid}` in
/// lower case (bucket names allow no capitals).
pub async fn provision_buckets(
    template: &Template,
    s3: &aws_sdk_s3::Client,
    prefix: &str,
    provisioned: &mut Provisioned,
) -> Result<(), Error> {
    for logical_id in template.buckets() {
        let name = format!("{prefix}-{logical_id}").to_ascii_lowercase();
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(Error::aws)?;
        if template.bucket_versioned(&logical_id) {
            s3.put_bucket_versioning()
                .bucket(&name)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(Error::aws)?;
        }
        provisioned.buckets.insert(logical_id, name);
    }
    Ok(())
}

/// Creates the table; returns its stream's ARN when it has a stream.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
    name: &str,
) -> Result<Option<String>, Error> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&spec.key_schema)?));
    for (attribute, kind) in &spec.attributes {
        request = request.attribute_definitions(attribute_definition(attribute, kind)?);
    }
    for index in &spec.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.key_schema)?))
                .projection(projection(index))
                .build()
                .map_err(Error::aws)?,
        );
    }
    if let Some(view_type) = &spec.stream_view_type {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view_type.as_str()))
                .build()
                .map_err(Error::aws)?,
        );
    }
    let created = request.send().await;
    let stream_arn =
        match sdk::unless_refused(created, CreateTableError::is_resource_in_use_exception)
            .map_err(Error::aws)?
        {
            Some(output) => output
                .table_description
                .and_then(|table| table.latest_stream_arn),
            // `make run` keeps its data: the table is there from an earlier run.
            None => existing_table(client, spec, name).await?,
        };
    if spec.stream_view_type.is_some() && stream_arn.is_none() {
        return Err(Error::Aws(
            format!("table {name} was created without its stream").into(),
        ));
    }
    Ok(stream_arn)
}

/// A table an earlier run created: adds the template's indexes it lacks (one
/// at a time, as DynamoDB allows) and returns its stream's ARN.
async fn existing_table(
    client: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
    name: &str,
) -> Result<Option<String>, Error> {
    let described = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(Error::aws)?;
    let table = described
        .table
        .ok_or_else(|| Error::Aws(format!("table {name} has no description").into()))?;
    let present: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|index| index.index_name().map(str::to_owned))
        .collect();
    for index in spec.indexes.iter().filter(|i| !present.contains(&i.name)) {
        let mut update = client.update_table().table_name(name);
        for (attribute, kind) in &spec.attributes {
            if index.key_schema.iter().any(|(a, _)| a == attribute) {
                update = update.attribute_definitions(attribute_definition(attribute, kind)?);
            }
        }
        update = update.global_secondary_index_updates(
            aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                .create(
                    aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                        .index_name(&index.name)
                        .set_key_schema(Some(key_schema(&index.key_schema)?))
                        .projection(projection(index))
                        .build()
                        .map_err(Error::aws)?,
                )
                .build(),
        );
        update.send().await.map_err(Error::aws)?;
        tracing::info!(table = name, index = %index.name, "added an index the template gained");
    }
    let view_type = table
        .stream_specification()
        .filter(|stream| stream.stream_enabled())
        .and_then(|stream| stream.stream_view_type())
        .map(|view| view.as_str().to_owned());
    match &spec.stream_view_type {
        Some(wanted) if view_type.as_deref() != Some(wanted.as_str()) => {
            restream(client, name, view_type.is_some(), wanted).await
        }
        _ => Ok(table.latest_stream_arn),
    }
}

/// A table whose stream an earlier run created with another view type (the
/// orders stream gained old images for the webhooks): a new stream of the
/// template's type replaces it (DynamoDB changes a view type no other way);
/// its readers start on the new stream's trim horizon.
async fn restream(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    enabled: bool,
    view_type: &str,
) -> Result<Option<String>, Error> {
    let stream = |enabled: bool| {
        let builder = StreamSpecification::builder().stream_enabled(enabled);
        let builder = if enabled {
            builder.stream_view_type(StreamViewType::from(view_type))
        } else {
            builder
        };
        builder.build().map_err(Error::aws)
    };
    if enabled {
        client
            .update_table()
            .table_name(name)
            .stream_specification(stream(false)?)
            .send()
            .await
            .map_err(Error::aws)?;
    }
    let updated = client
        .update_table()
        .table_name(name)
        .stream_specification(stream(true)?)
        .send()
        .await
        .map_err(Error::aws)?;
    tracing::info!(
        table = name,
        view_type,
        "replaced the table's stream with the template's view type"
    );
    Ok(updated
        .table_description
        .and_then(|table| table.latest_stream_arn))
}

/// A template's key schema: (attribute, `HASH` or `RANGE`) pairs.
fn key_schema(schema: &[(String, String)]) -> Result<Vec<KeySchemaElement>, Error> {
    schema
        .iter()
        .map(|(attribute, kind)| {
            KeySchemaElement::builder()
                .attribute_name(attribute)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(Error::aws)
        })
        .collect()
}

/// A template's attribute definition: its name and type (`S`, `N`, `B`).
fn attribute_definition(attribute: &str, kind: &str) -> Result<AttributeDefinition, Error> {
    AttributeDefinition::builder()
        .attribute_name(attribute)
        .attribute_type(ScalarAttributeType::from(kind))
        .build()
        .map_err(Error::aws)
}

/// What an index copies from the table, as the template says.
fn projection(index: &IndexSpec) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::from(index.projection.as_str()))
        .build()
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    spec: &QueueSpec,
    name: &str,
    provisioned: &Provisioned,
) -> Result<String, Error> {
    let mut request = client.create_queue().queue_name(name);
    if let Some(seconds) = spec.visibility_timeout {
        request = request.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
    }
    if let Some(seconds) = spec.retention_period {
        request = request.attributes(
            QueueAttributeName::MessageRetentionPeriod,
            seconds.to_string(),
        );
    }
    if let Some((dead_letter, max_receive_count)) = &spec.redrive {
        let arn = provisioned.queue_arn(dead_letter)?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": max_receive_count.to_string(),
        });
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let output = request.send().await.map_err(Error::aws)?;
    output
        .queue_url
        .ok_or_else(|| Error::Aws(format!("no URL for queue {name}").into()))
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String, Error> {
    let output = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(Error::aws)?;
    output
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::Aws(format!("no ARN for queue {url}").into()))
}
