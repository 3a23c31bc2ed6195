//! [`OrderFeed`] on the orders table: the polling indexes and BatchGetItem.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnConsumedCapacity};

use super::capacity;
use super::dynamodb::{DynamoOrderStore, classify, may_read, string};
use shared::domain::OrderNumber;
use shared::error::StoreError;
use shared::polling::{Entry, FeedIndex, IndexPage, IndexRange, OrderFeed};
use shared::ports::Access;
use shared::record::OrderRecord;

/// BatchGetItem's limit of keys per call.
const BATCH: usize = 100;
/// Rounds of unprocessed keys before giving up (throttling that does not pass).
const BATCH_ROUNDS: usize = 8;

impl OrderFeed for DynamoOrderStore {
    async fn index_page(
        &self,
        partition: &str,
        range: IndexRange<'_>,
    ) -> Result<IndexPage, StoreError> {
        let IndexRange {
            index,
            after,
            upto,
            limit,
        } = range;
        let partition_key = match index {
            FeedIndex::ClientUpdated => "feed_shard",
            FeedIndex::CallbackStatus => "callback_shard",
        };
        let output = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(index.name())
            .key_condition_expression("#p = :p AND updated_key BETWEEN :after AND :upto")
            .expression_attribute_names("#p", partition_key)
            .expression_attribute_values(":p", AttributeValue::S(partition.to_owned()))
            // BETWEEN is inclusive; `after` itself is dropped below.
            .expression_attribute_values(":after", AttributeValue::S(after.to_owned()))
            .expression_attribute_values(":upto", AttributeValue::S(upto.to_owned()))
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        capacity::record("feed_query", output.consumed_capacity());
        let entries: Vec<Entry> = output
            .items()
            .iter()
            .filter_map(|item| {
                let updated_key = string(item, "updated_key")?;
                let order_number = OrderNumber::parse(&string(item, "order_number")?).ok()?;
                (updated_key.as_str() > after).then_some(Entry {
                    updated_key,
                    order_number,
                })
            })
            .collect();
        let more = output.last_evaluated_key().is_some();
        Ok(IndexPage::at_most(entries, more, limit))
    }

    async fn get_many(
        &self,
        numbers: &[OrderNumber],
        access: Access<'_>,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let mut items = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(BATCH) {
            let keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|number| {
                    HashMap::from([(
                        "order_number".to_owned(),
                        AttributeValue::S(number.to_string()),
                    )])
                })
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|err| StoreError::Failed(Box::new(err)))?,
            );
            let mut rounds = 0;
            while let Some(wanted) = request.take() {
                rounds += 1;
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(self.table(), wanted)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(classify)?;
                for consumed in output.consumed_capacity() {
                    capacity::record("feed_batch_get", Some(consumed));
                }
                if let Some(found) = output.responses().and_then(|r| r.get(self.table())) {
                    items.extend_from_slice(found);
                }
                request = output
                    .unprocessed_keys()
                    .and_then(|keys| keys.get(self.table()))
                    .filter(|keys| !keys.keys().is_empty())
                    .cloned();
                if request.is_some() {
                    if rounds >= BATCH_ROUNDS {
                        return Err(StoreError::Unavailable(
                            "DynamoDB left keys unprocessed; try again".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << rounds)).await;
                }
            }
        }
        // Another tenant's orders stop at their owner: nothing else of them is read.
        items.retain(|item| may_read(item, access));
        self.complete_all(items).await
    }
}

/// History queries in flight at once while a page of orders is completed.
const HISTORY_READS: usize = 16;

impl DynamoOrderStore {
    /// Each order of `items` with its request and ledger, read
    /// [`HISTORY_READS`] at a time (a page of 100 one after the other would
    /// take 100 round trips).
    async fn complete_all(&self, items: Vec<Item>) -> Result<Vec<OrderRecord>, StoreError> {
        let mut records = Vec::with_capacity(items.len());
        let mut reading = tokio::task::JoinSet::new();
        for item in items {
            if reading.len() >= HISTORY_READS
                && let Some(done) = reading.join_next().await
            {
                records.push(joined(done)?);
            }
            let store = self.clone();
            reading.spawn(async move { store.complete(&item).await });
        }
        while let Some(done) = reading.join_next().await {
            records.push(joined(done)?);
        }
        Ok(records)
    }
}

fn joined(
    done: Result<Result<OrderRecord, StoreError>, tokio::task::JoinError>,
) -> Result<OrderRecord, StoreError> {
    done.map_err(|err| StoreError::Failed(Box::new(err)))?
}

type Item = HashMap<String, AttributeValue>;
