//! [`DueRedactions`] on the orders table: the sparse index of final orders
//! that still hold personal data (`shared::lifecycle::personal_data`).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use chrono::{DateTime, Utc};

use super::capacity;
use super::dynamodb::{DynamoOrderStore, classify, string};
use shared::domain::OrderNumber;
use shared::error::StoreError;
use shared::lifecycle::personal_data::{REDACTION_INDEX, redaction_partitions};
use shared::ports::DueRedactions;

impl DueRedactions for DynamoOrderStore {
    async fn final_before(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OrderNumber>, StoreError> {
        let before = before.timestamp_millis().max(0).to_string();
        let partitions = redaction_partitions();
        // An even share each, so a backlog in one shard never starves the others.
        let share = limit.div_ceil(partitions.len().max(1));
        let mut due = Vec::new();
        for partition in partitions {
            let mut start = None;
            let stop = (due.len() + share).min(limit);
            while due.len() < stop {
                let output = self
                    .client()
                    .query()
                    .table_name(self.table())
                    .index_name(REDACTION_INDEX)
                    .key_condition_expression("personal_data_shard = :p AND final_at <= :before")
                    .expression_attribute_values(":p", AttributeValue::S(partition.clone()))
                    .expression_attribute_values(":before", AttributeValue::N(before.clone()))
                    .limit(i32::try_from(stop - due.len()).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(classify)?;
                capacity::record("due_query", output.consumed_capacity());
                due.extend(
                    output
                        .items()
                        .iter()
                        .filter_map(|item| string(item, "order_number"))
                        .filter_map(|number| OrderNumber::parse(&number).ok()),
                );
                match output.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        Ok(due)
    }
}
