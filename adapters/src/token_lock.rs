//! The fleet-wide token refresh lock ([`shared::token_refresh::RefreshLock`]):
//! one item in the partner-state table, taken by a conditional `PutItem`
//! with a short lease.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use shared::ports::TokenError;
use shared::token_refresh::RefreshLock;

use crate::sdk;

/// The lock item's key in the partner-state table.
const LOCK_ID: &str = "token-refresh-lock";

/// The lock, as this instance (`owner`, random per cold start) takes it.
#[derive(Debug, Clone)]
pub struct DynamoRefreshLock {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    owner: String,
}

impl DynamoRefreshLock {
    /// # Errors
    /// No randomness for the instance's name.
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
    ) -> Result<Self, TokenError> {
        let mut random = [0_u8; 8];
        getrandom::fill(&mut random).map_err(|err| TokenError::Refresh(err.to_string()))?;
        Ok(Self {
            dynamodb,
            table: table.into(),
            owner: shared::hex::encode(&random),
        })
    }
}

impl RefreshLock for DynamoRefreshLock {
    async fn acquire(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool, TokenError> {
        let result = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(LOCK_ID.into()))
            .item("owner", AttributeValue::S(self.owner.clone()))
            .item("until", AttributeValue::N(until.timestamp().to_string()))
            .condition_expression("attribute_not_exists(id) OR #until < :now OR #owner = :me")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        sdk::applied(result, PutItemError::is_conditional_check_failed_exception).map_err(|err| {
            TokenError::Vault(format!(
                "taking the refresh lock: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&err)
            ))
        })
    }

    async fn release(&self) {
        let result = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(LOCK_ID.into()))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        if let Err(err) = result {
            // It expires by itself.
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err),
                "could not release the token refresh lock");
        }
    }
}
