//! [`OrderStore`] on a DynamoDB table keyed by `order_number`.
//!
//! Item layout: the key; the accepted request as canonical JSON in `order`,
//! never rewritten; `status`, `callback_status` and `version` as plain
//! attributes (readable in the console, usable in conditions); what the
//! warehouse reported (`progress`) and the callback state (`callback`) as JSON.
//! Two sparse index keys: `client_platform_order` (duplicate marketplace orders)
//! and `callback_outbox` + `callback_due_at`, present only while a callback
//! waits for a dispatcher (what the sweeper scans).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use crate::callback::Callback;
use crate::domain::{Order, OrderNumber};
use crate::error::{FieldError, StoreError};
use crate::lifecycle::Progress;
use crate::ports::{Insert, OrderStore, Save};
use crate::record::{OrderRecord, format_time};

/// The GSI that finds a client's orders by marketplace order number.
pub const PLATFORM_ORDER_INDEX: &str = "by_client_platform_order";
/// The GSI of callbacks due but not yet picked up by a dispatcher.
pub const CALLBACK_OUTBOX_INDEX: &str = "by_callback_outbox";
/// The one partition key value of the outbox index.
const OUTBOX: &str = "due";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: Client,
    table: String,
}

impl DynamoOrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl OrderStore for DynamoOrderStore {
    async fn insert_new(&self, record: &OrderRecord) -> Result<Insert, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(order_number)")
            // Hands back the stored order in the same round trip when it exists.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Insert::Inserted),
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let stored = match failed.item {
                        Some(item) => from_item(&item)?,
                        None => self.get(&record.order.order_number).await?.ok_or_else(|| {
                            StoreError::Failed("condition failed but no order is stored".into())
                        })?,
                    };
                    Ok(Insert::AlreadyExists(Box::new(stored)))
                }
                other => Err(classify_service(other)),
            },
            Err(other) => Err(classify(other)),
        }
    }

    async fn get(&self, order_number: &OrderNumber) -> Result<Option<OrderRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("order_number", AttributeValue::S(order_number.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.as_ref().map(from_item).transpose()
    }

    async fn save(&self, record: &mut OrderRecord) -> Result<Save, StoreError> {
        let mut set = vec![
            "#status = :status",
            "version = :next",
            "progress = :progress",
            "callback = :callback",
            "callback_status = :callback_status",
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("order_number", s(record.order.order_number.as_str()))
            .condition_expression("version = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", n(record.version))
            .expression_attribute_values(":next", n(record.version + 1))
            .expression_attribute_values(":status", s(record.status.as_str()))
            .expression_attribute_values(":progress", s(&json(&record.progress)))
            .expression_attribute_values(":callback", s(&json(&record.callback)))
            .expression_attribute_values(":callback_status", s(record.callback.status.as_str()));
        let mut remove = Vec::new();
        match outbox_due_at(&record.callback) {
            Some(due_at) => {
                set.extend(["callback_outbox = :outbox", "callback_due_at = :due_at"]);
                request = request
                    .expression_attribute_values(":outbox", s(OUTBOX))
                    .expression_attribute_values(":due_at", s(&due_at));
            }
            None => remove.extend(["callback_outbox", "callback_due_at"]),
        }
        // Every save follows a consistent read of the whole record, so the
        // findings written back are the stored ones plus any just added.
        if record.findings.is_empty() {
            remove.push("findings");
        } else {
            set.push("findings = :findings");
            request = request.expression_attribute_values(":findings", s(&json(&record.findings)));
        }
        let update = if remove.is_empty() {
            format!("SET {}", set.join(", "))
        } else {
            format!("SET {} REMOVE {}", set.join(", "), remove.join(", "))
        };
        match request.update_expression(update).send().await {
            Ok(_) => {
                record.version += 1;
                Ok(Save::Saved)
            }
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(Save::Stale)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn stuck_callbacks(
        &self,
        due_before: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<OrderNumber>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CALLBACK_OUTBOX_INDEX)
            .key_condition_expression("callback_outbox = :outbox AND callback_due_at <= :before")
            .expression_attribute_values(":outbox", s(OUTBOX))
            .expression_attribute_values(":before", s(&format_time(due_before)))
            .limit(limit)
            .send()
            .await
            .map_err(classify)?;
        Ok(order_numbers(output.items()))
    }

    async fn orders_with_platform_order(
        &self,
        client_platform_order_key: &str,
    ) -> Result<Vec<OrderNumber>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PLATFORM_ORDER_INDEX)
            .key_condition_expression("client_platform_order = :key")
            .expression_attribute_values(
                ":key",
                AttributeValue::S(client_platform_order_key.to_owned()),
            )
            .limit(10)
            .send()
            .await
            .map_err(classify)?;
        Ok(order_numbers(output.items()))
    }
}

/// The order numbers of index query results (the indexes project only keys).
fn order_numbers(items: &[Item]) -> Vec<OrderNumber> {
    items
        .iter()
        .filter_map(|item| string(item, "order_number"))
        .filter_map(|number| OrderNumber::parse(&number).ok())
        .collect()
}

/// Throttling and transport failures may pass; anything else will not.
fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            if is_item_too_large(service.err()) {
                return StoreError::ItemTooLarge { limit: ITEM_LIMIT };
            }
            is_transient(service.err().code())
        }
        _ => false,
    };
    wrap(transient, Box::new(err))
}

/// DynamoDB's item size limit, in bytes.
const ITEM_LIMIT: usize = 400 * 1024;

fn is_item_too_large(err: &impl ProvideErrorMetadata) -> bool {
    err.code() == Some("ValidationException")
        && err
            .message()
            .is_some_and(|message| message.contains("Item size"))
}

fn classify_service<E>(err: E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if is_item_too_large(&err) {
        return StoreError::ItemTooLarge { limit: ITEM_LIMIT };
    }
    wrap(is_transient(err.code()), Box::new(err))
}

fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "ThrottlingException"
                | "InternalServerError"
                | "ServiceUnavailable"
        )
    )
}

fn wrap(transient: bool, err: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    if transient {
        StoreError::Unavailable(err)
    } else {
        StoreError::Failed(err)
    }
}

/// The DynamoDB item [`DynamoOrderStore::insert_new`] writes for `record`.
/// Public for the benchmarks (`shared/benches`, `infra/bench`): the CPU cost of
/// "map to the stored item", and a raw-SDK baseline that puts the very same item.
#[must_use]
pub fn item_for(record: &OrderRecord) -> HashMap<String, AttributeValue> {
    to_item(record)
}

fn to_item(record: &OrderRecord) -> Item {
    let order = &record.order;
    let mut item = Item::with_capacity(14);
    item.extend([
        ("order_number".into(), s(order.order_number.as_str())),
        ("client_code".into(), s(&order.client_code)),
        ("request_hash".into(), s(&record.request_hash)),
        ("status".into(), s(record.status.as_str())),
        ("created_at".into(), s(&format_time(record.created_at))),
        ("order".into(), s(&record.order_json)),
        ("version".into(), n(record.version)),
        ("progress".into(), s(&json(&record.progress))),
        ("callback".into(), s(&json(&record.callback))),
        ("callback_status".into(), s(record.callback.status.as_str())),
    ]);
    if let Some(due_at) = outbox_due_at(&record.callback) {
        item.insert("callback_outbox".into(), s(OUTBOX));
        item.insert("callback_due_at".into(), s(&due_at));
    }
    if let Some(key) = order.client_platform_order_key() {
        item.insert("client_platform_order".into(), s(&key));
    }
    if !record.findings.is_empty() {
        item.insert("findings".into(), s(&json(&record.findings)));
    }
    item
}

fn from_item(item: &Item) -> Result<OrderRecord, StoreError> {
    let number = string(item, "order_number").unwrap_or_default();
    let corrupt = |reason: String| StoreError::Corrupt {
        order_number: number.clone(),
        reason,
    };
    let required = |name: &str| string(item, name).ok_or_else(|| corrupt(format!("no {name}")));

    let order_json = required("order")?;
    let order: Order = serde_json::from_str(&order_json).map_err(|err| corrupt(err.to_string()))?;
    let findings: Vec<FieldError> = match string(item, "findings") {
        Some(findings) => {
            serde_json::from_str(&findings).map_err(|err| corrupt(err.to_string()))?
        }
        None => Vec::new(),
    };
    let created_at = DateTime::parse_from_rfc3339(&required("created_at")?)
        .map_err(|err| corrupt(err.to_string()))?
        .with_timezone(&Utc);
    let progress: Progress =
        serde_json::from_str(&required("progress")?).map_err(|err| corrupt(err.to_string()))?;
    let callback: Callback =
        serde_json::from_str(&required("callback")?).map_err(|err| corrupt(err.to_string()))?;
    let version = match item.get("version") {
        Some(AttributeValue::N(version)) => {
            version.parse().map_err(|_| corrupt("bad version".into()))?
        }
        _ => return Err(corrupt("no version".into())),
    };
    Ok(OrderRecord {
        order,
        order_json,
        request_hash: required("request_hash")?,
        status: required("status")?.parse().map_err(corrupt)?,
        created_at,
        findings,
        progress,
        callback,
        version,
    })
}

/// The outbox sort key while a callback waits for a dispatcher.
fn outbox_due_at(callback: &Callback) -> Option<String> {
    callback
        .due_since
        .filter(|_| callback.awaiting_dispatch)
        .map(format_time)
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("order data has only string keys and always serialises")
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}
