//! [`BreakerStore`] on the partner-state table: one item, `id = "breaker"`,
//! written with a condition on its `version` (a lost race is read again).
//! The probes out are a map of delivery → lease end (`probes`).

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use shared::callback::breaker::BreakerState;
use shared::error::StoreError;
use shared::ports::BreakerStore;

use crate::sdk;

const ID: &str = "breaker";

#[derive(Debug, Clone)]
pub struct DynamoBreakerStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoBreakerStore {
    #[must_use]
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn read(&self) -> Result<BreakerState, StoreError> {
        let item = sdk::read_item(&self.client, &self.table, "id", ID.into())
            .send()
            .await
            .map_err(|err| StoreError::Unavailable(Box::new(err)))?
            .item
            .unwrap_or_default();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let time = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let probes = item
            .get("probes")
            .and_then(|v| v.as_m().ok())
            .map(|probes| {
                probes
                    .iter()
                    .filter_map(|(owner, until)| {
                        let until = DateTime::parse_from_rfc3339(until.as_s().ok()?).ok()?;
                        Some((owner.clone(), until.with_timezone(&Utc)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(BreakerState {
            open_until: time("open_until"),
            cool_down: Duration::from_millis(number("cool_down_ms").unwrap_or(0)),
            probes,
            failed_probes: number("failed_probes")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            closed_at: time("closed_at"),
            version: number("version").unwrap_or(0),
        })
    }

    async fn write(&self, state: &BreakerState) -> Result<bool, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(ID.into()))
            .item(
                "failed_probes",
                AttributeValue::N(state.failed_probes.to_string()),
            )
            .item(
                "cool_down_ms",
                AttributeValue::N(state.cool_down.as_millis().to_string()),
            )
            .item(
                "version",
                AttributeValue::N((state.version + 1).to_string()),
            )
            .item(
                "state",
                AttributeValue::S(if state.is_open() { "open" } else { "closed" }.into()),
            );
        if let Some(until) = state.open_until {
            put = put.item("open_until", AttributeValue::S(until.to_rfc3339()));
        }
        if let Some(at) = state.closed_at {
            put = put.item("closed_at", AttributeValue::S(at.to_rfc3339()));
        }
        if !state.probes.is_empty() {
            let probes = state
                .probes
                .iter()
                .map(|(owner, until)| (owner.clone(), AttributeValue::S(until.to_rfc3339())))
                .collect();
            put = put.item("probes", AttributeValue::M(probes));
        }
        let condition = if state.version == 0 {
            "attribute_not_exists(id) OR version = :v"
        } else {
            "version = :v"
        };
        let result = put
            .condition_expression(condition)
            .expression_attribute_values(":v", AttributeValue::N(state.version.to_string()))
            .send()
            .await;
        sdk::applied(result, PutItemError::is_conditional_check_failed_exception)
            .map_err(|err| StoreError::Unavailable(Box::new(err)))
    }
}

impl BreakerStore for DynamoBreakerStore {
    async fn load(&self) -> Result<BreakerState, StoreError> {
        self.read().await
    }

    async fn save(&self, state: &BreakerState) -> Result<bool, StoreError> {
        self.write(state).await
    }
}
