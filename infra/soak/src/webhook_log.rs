//! What the stack recorded about its webhooks, read straight from
//! `WebhooksTable` on the DynamoDB emulator (a `Query` per partition, every
//! page, DynamoDB's JSON protocol as the SDK speaks it): the client's event
//! log and the ERP endpoint's delivery items. Only the attributes the
//! reconciliation compares are read.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::emulator_dynamodb::{EmulatorDynamoDb, env_file_value};

/// The table's name when the local stack's `env` file does not say it: the
/// local stack provisions `local-{LogicalId}`.
const DEFAULT_TABLE: &str = "local-WebhooksTable";

/// One event of the client's log (`events#{client}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub id: String,
    pub event_type: String,
    pub order_number: String,
    pub sequence: u64,
    /// When the write that made it happened.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

/// One delivery item of the endpoint (`deliveries#{endpoint}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryItem {
    pub event_id: String,
    pub status: DeliveryState,
    /// Posts claimed so far.
    pub posts: u64,
    /// When the last post's answer came (or its failure): for a delivered
    /// item, when the delivering post ended; the record follows it.
    pub last_at: Option<DateTime<Utc>>,
}

/// Reads the table on the emulator the soak runs under.
#[derive(Debug, Clone)]
pub struct WebhookTable {
    dynamodb: EmulatorDynamoDb,
    table: String,
}

impl WebhookTable {
    /// The emulator from `AWS_ENDPOINT_URL_DYNAMODB`, the table from the local
    /// stack's `env` file (`WEBHOOKS_TABLE`) or its fixed name.
    pub fn from_env(env_file: &Path) -> Result<Self, String> {
        Ok(Self {
            dynamodb: EmulatorDynamoDb::from_env()?,
            table: env_file_value(env_file, "WEBHOOKS_TABLE")
                .unwrap_or_else(|| DEFAULT_TABLE.to_owned()),
        })
    }

    /// The client's logged events, oldest first.
    pub async fn events(&self, client_code: &str) -> Result<Vec<LoggedEvent>, String> {
        let items = self.query(&format!("events#{client_code}")).await?;
        items.iter().map(logged_event).collect()
    }

    /// The endpoint's delivery items.
    pub async fn deliveries(&self, endpoint_id: &str) -> Result<Vec<DeliveryItem>, String> {
        let items = self.query(&format!("deliveries#{endpoint_id}")).await?;
        items.iter().map(delivery_item).collect()
    }

    /// Every item of the partition `pk`.
    async fn query(&self, pk: &str) -> Result<Vec<Value>, String> {
        let request = json!({
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": true,
        });
        self.dynamodb
            .items(
                "Query",
                request,
                Duration::from_secs(60),
                &format!("query {pk} on {}", self.table),
            )
            .await
    }
}

fn string(item: &Value, name: &str) -> Result<String, String> {
    item[name]["S"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("item without {name}: {item}"))
}

fn number(item: &Value, name: &str) -> Option<u64> {
    item[name]["N"].as_str()?.parse().ok()
}

fn millis(item: &Value, name: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(number(item, name)?).ok()?)
}

fn logged_event(item: &Value) -> Result<LoggedEvent, String> {
    Ok(LoggedEvent {
        id: string(item, "event_id")?,
        event_type: string(item, "event_type")?,
        order_number: string(item, "order_number")?,
        sequence: number(item, "sequence").unwrap_or(0),
        at: millis(item, "at").ok_or_else(|| format!("event without at: {item}"))?,
    })
}

fn delivery_item(item: &Value) -> Result<DeliveryItem, String> {
    let status = match string(item, "status")?.as_str() {
        "pending" => DeliveryState::Pending,
        "delivered" => DeliveryState::Delivered,
        "failed" => DeliveryState::Failed,
        other => return Err(format!("delivery status {other}: {item}")),
    };
    Ok(DeliveryItem {
        event_id: string(item, "event_id")?,
        status,
        posts: number(item, "posts").unwrap_or(0),
        last_at: millis(item, "last_at"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_as_the_adapter_writes_them() {
        let event = json!({
            "pk": {"S": "events#20"}, "sk": {"S": "1765015200000#evt_1"},
            "event_id": {"S": "evt_1"}, "event_type": {"S": "order.packed"},
            "order_number": {"S": "soak-000001"}, "sequence": {"N": "4"},
            "at": {"N": "1765015200123"}, "body": {"S": "{}"}, "expires_at": {"N": "1"},
        });
        assert_eq!(
            logged_event(&event).unwrap(),
            LoggedEvent {
                id: "evt_1".into(),
                event_type: "order.packed".into(),
                order_number: "soak-000001".into(),
                sequence: 4,
                at: DateTime::from_timestamp_millis(1_765_015_200_123).unwrap(),
            }
        );
        let delivery = json!({
            "event_id": {"S": "evt_1"}, "status": {"S": "delivered"}, "posts": {"N": "2"},
            "last_at": {"N": "1765015201000"}, "last_status": {"N": "200"},
        });
        assert_eq!(
            delivery_item(&delivery).unwrap(),
            DeliveryItem {
                event_id: "evt_1".into(),
                status: DeliveryState::Delivered,
                posts: 2,
                last_at: DateTime::from_timestamp_millis(1_765_015_201_000),
            }
        );
        assert!(delivery_item(&json!({"event_id": {"S": "e"}, "status": {"S": "odd"}})).is_err());
    }
}
