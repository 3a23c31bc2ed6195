//! [`OrderStore`] on two DynamoDB tables: the order's state (hot, keyed by
//! `order_number`) and what never changes once written (cold, the history
//! table keyed by `order_number` and `entry`).
//!
//! DynamoDB bills a write by the size of the whole item, so the item every
//! warehouse event and dispatch step rewrites holds only what they change
//! (0.4–1.6 KB for the spec sample): `status` and `version` as plain attributes; what the warehouse
//! reported (`progress`, events included) and the callback's state (`callback`,
//! without its ledger) as JSON; `request_hash`, the pointer to the request.
//! The history table holds, written once each:
//! - `request#<sha256>`: the accepted request as canonical JSON (`order`;
//!   redacted in place once its personal data's time is up) and its
//!   data-quality findings (`findings`, JSON; ~0.3 KB for the spec sample,
//!   read with the request but never changed by an event, so not rewritten
//!   by each one: a duplicate-order finding added later rewrites this item),
//!   written *before* the order's item, so an order never points to a missing
//!   request, and only if there is none under that hash (the same text; the
//!   stored one may have more findings, or be redacted); a create that loses
//!   the race deletes its own (another hash, so nothing points to it). Items
//!   written before the findings moved keep them in the order's item, which
//!   is read when the request item has none.
//! - `attempt#<at, epoch ms>#<digest>`: the callback ledger, one item per
//!   try, keyed by when it was made and a digest of what it recorded (so two
//!   tries never share a line, and writing the same try again is a no-op);
//!   written *before* the save that counts it. A crash or a lost race between
//!   the two leaves a line whose outcome the state does not show yet (the
//!   try was made; the next delivery makes another), never a state whose
//!   outcome has no line: the soak (docs/reliability.md) reads a delivered
//!   try's line to tell a repeat from a post after a recorded success. No
//!   protocol rule reads the ledger (a callback that failed before any request
//!   is told by `attempt_count`); the protocol model
//!   (`tests/src/protocol_model.rs`) keeps the lines in this order, fails
//!   the put or the save before or after either applied, and checks this rule
//!   after every step.
//!
//! A read of the whole order is one consistent `GetItem` of the state and one
//! eventually consistent `Query` of the history (immutable items, so a stale
//! read can only miss a try just recorded; a request not yet visible is read
//! again consistently).
//!
//! In the order's item, events are compact arrays and `null`s are left out
//! (the spec sample's item: 1.8 KB after its whole life, under 1 KB until it
//! is packed). The callback's protocol state is top-level, because the claim
//! is one conditional `UpdateItem` on it: `callback_status`,
//! `callback_generation`, `callback_message`, `callback_posts`, `lease_until`
//! / `next_attempt_at` (epoch milliseconds), `lease_owner`.
//!
//! The outbox: a write that makes the callback due sets `outbox` to the
//! generation; every other write removes it. The table's stream carries each
//! item image that has `outbox` to the callback queue (an EventBridge Pipe in
//! AWS, `local-stack`'s pipe locally), so the message cannot be lost between
//! the write and the send: there is no send step.
//!
//! One sparse index key: `client_platform_order` (duplicate marketplace orders).
//!
//! Personal data (docs/personal-data.md) is only in the request item. Redaction writes the redacted request
//! over it under the same `request#<sha256>` (the one history item that is
//! ever rewritten, with an added finding the other time: an eventually consistent read may see the old text for a
//! moment after; it carries `redacted_at` and is never written over again),
//! deletes any other `request#…` of the order (a refused create's whose
//! delete failed), then writes the state with `redacted_at`. Every save
//! keeps `final_at` (epoch ms, while the order is final) and, while a final
//! order is not redacted, `personal_data_shard`: the key of the sparse index
//! `by_personal_data_final` the scheduled redaction reads.
//!
//! Polling (`shared::polling`): every write stamps `updated_at` and the sort key
//! `updated_key` (`{updated_at}#{order_number}`); `feed_shard`
//! (`{client_code}#{shard}`, fixed at creation) keys the index `by_client_updated`,
//! and `callback_shard` (`{callback_status}#{shard}`, only while the callback
//! needs an operator's eye: pending, retrying, failed, dead_lettered) the
//! sparse index `by_callback_status`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{capacity, sdk};
use shared::domain::{Order, OrderNumber};
use shared::error::{FieldError, StoreError};
use shared::lifecycle::personal_data as erasure;
use shared::polling;
use shared::ports::{Access, ClaimOutcome, Guard, Insert, Lookup, OrderStore, Save};
use shared::record::callback::MAX_LEDGER;
use shared::record::callback::{Attempt, Callback, CallbackStatus, Claim, Lease, NotClaimable};
use shared::record::progress::Progress;
use shared::record::{
    CallbackFields, OrderRecord, format_time, format_update_time, next_update_stamp,
};

/// The GSI that finds a client's orders by marketplace order number.
pub const PLATFORM_ORDER_INDEX: &str = "by_client_platform_order";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoOrderStore {
    client: Client,
    table: String,
    history: String,
}

impl DynamoOrderStore {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The store on the orders table `table` and its history table `history`.
    pub fn new(client: Client, table: impl Into<String>, history: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            history: history.into(),
        }
    }

    /// The whole order from its state item and the history table's request
    /// and ledger.
    pub(crate) async fn complete(&self, item: &Item) -> Result<OrderRecord, StoreError> {
        let number = string(item, "order_number").unwrap_or_default();
        let hash = string(item, "request_hash").ok_or_else(|| StoreError::Corrupt {
            order_number: number.clone(),
            reason: "no request_hash".into(),
        })?;
        let cold = self.cold(&number, &hash).await?;
        from_item(item, cold)
    }

    /// The request and the latest ledger lines of an order, in one query:
    /// `request#…` sorts after `attempt#…`, so newest first reads the request,
    /// then the newest tries.
    async fn cold(&self, number: &str, request_hash: &str) -> Result<Cold, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.history)
            .key_condition_expression("order_number = :number")
            .expression_attribute_values(":number", s(number))
            .scan_index_forward(false)
            // The ledger's length, the request, and room for a request a
            // concurrent losing create has not deleted yet.
            .limit(i32::try_from(MAX_LEDGER + 3).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(classify)?;
        capacity::record("history_query", output.consumed_capacity());
        let corrupt = |reason: String| StoreError::Corrupt {
            order_number: number.to_owned(),
            reason,
        };
        let wanted = request_entry(request_hash);
        let mut request = None;
        let mut attempts = Vec::new();
        for item in output.items() {
            let entry = string(item, ENTRY).unwrap_or_default();
            if entry == wanted {
                request = Request::of(item);
            } else if entry.starts_with(ATTEMPT_PREFIX) {
                let Some(attempt) = string(item, "attempt") else {
                    continue;
                };
                let attempt: Attempt =
                    serde_json::from_str(&attempt).map_err(|err| corrupt(err.to_string()))?;
                attempts.push(attempt);
            }
        }
        let request = match request {
            Some(request) => request,
            // Written before the order's item, but an eventually consistent
            // read may not see it yet.
            None => self
                .request(number, &wanted)
                .await?
                .ok_or_else(|| corrupt(format!("no {wanted} in the history table")))?,
        };
        attempts.reverse();
        Ok(Cold {
            order_json: request.order_json,
            findings: request.findings,
            attempts,
        })
    }

    /// The request item, read consistently.
    async fn request(&self, number: &str, entry: &str) -> Result<Option<Request>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.history)
            .set_key(Some(history_key(number, entry)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(classify)?;
        capacity::record("request_get", output.consumed_capacity());
        Ok(output.item.as_ref().and_then(Request::of))
    }

    /// Writes the request item with the order's findings (they change only
    /// when a duplicate-order finding is added, and are read with the
    /// request, so the item every event rewrites does not carry them).
    /// - [`Written::Once`] (a create): only if there is none under that hash.
    ///   The same hash is the same text, so the stored one is the right one
    ///   and may hold more: a finding added since, or the redacted text.
    /// - [`Written::Over`] (`rewrite_request`): over the stored one, unless
    ///   it was redacted: a redacted request is never written over, so its
    ///   personal data cannot come back. The redacted one carries `redacted_at`.
    ///
    /// `true` when it was written.
    async fn put_request(&self, record: &OrderRecord, how: Written) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.history)
            .item("order_number", s(record.order.order_number.as_str()))
            .item(ENTRY, s(&request_entry(&record.request_hash)))
            .item("order", s(&record.order_json))
            .condition_expression(match how {
                Written::Once => "attribute_not_exists(order_number)",
                Written::Over => "attribute_not_exists(redacted_at)",
            })
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        if !record.findings.is_empty() {
            request = request.item("findings", s(&json(&record.findings)));
        }
        if let Some(at) = record.redacted_at {
            request = request.item("redacted_at", s(&format_update_time(at)));
        }
        match request.send().await {
            Ok(output) => {
                capacity::record("request_put", output.consumed_capacity());
                Ok(true)
            }
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(err) => Err(classify(err)),
        }
    }

    /// Deletes a request item nothing points to (a create that lost, or a
    /// stray copy of one).
    async fn delete_request(&self, number: &str, entry: &str) -> Result<(), StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.history)
            .set_key(Some(history_key(number, entry)))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(classify)?;
        capacity::record("request_delete", output.consumed_capacity());
        Ok(())
    }

    /// Deletes the order's request items other than its own: a refused
    /// create's whose delete failed (another request, which nothing points
    /// to). Done when the order is redacted, so no stray copy keeps the
    /// personal data.
    async fn delete_stray_requests(&self, record: &OrderRecord) -> Result<(), StoreError> {
        let number = record.order.order_number.as_str();
        let own = request_entry(&record.request_hash);
        let output = self
            .client
            .query()
            .table_name(&self.history)
            .key_condition_expression("order_number = :number AND begins_with(#entry, :request)")
            .expression_attribute_names("#entry", ENTRY)
            .expression_attribute_values(":number", s(number))
            .expression_attribute_values(":request", s(&request_entry("")))
            .projection_expression("#entry")
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(classify)?;
        capacity::record("request_query", output.consumed_capacity());
        for entry in output.items().iter().filter_map(|item| string(item, ENTRY)) {
            if entry != own {
                self.delete_request(number, &entry).await?;
            }
        }
        Ok(())
    }

    /// Writes the ledger lines the store does not hold yet: the tries after
    /// `callback.stored_attempts`.
    async fn put_attempts(&self, record: &OrderRecord) -> Result<(), StoreError> {
        for attempt in unstored_attempts(&record.callback) {
            let output = self
                .client
                .put_item()
                .table_name(&self.history)
                .item("order_number", s(record.order.order_number.as_str()))
                .item(ENTRY, s(&attempt_entry(attempt)))
                .item("attempt", s(&json(attempt)))
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await
                .map_err(classify)?;
            capacity::record("attempt_put", output.consumed_capacity());
        }
        Ok(())
    }
}

/// The history table's sort key.
const ENTRY: &str = "entry";
const ATTEMPT_PREFIX: &str = "attempt#";

fn request_entry(request_hash: &str) -> String {
    format!("request#{request_hash}")
}

/// When the try was made (zero-padded epoch ms, so the entries sort by
/// time) and a digest of the line, so tries made in the same millisecond
/// keep their own lines and the same try written again stays one.
fn attempt_entry(attempt: &Attempt) -> String {
    let digest = Sha256::digest(json(attempt).as_bytes());
    format!(
        "{ATTEMPT_PREFIX}{:013}#{}",
        millis(attempt.at),
        &shared::hex::encode(&digest)[..16]
    )
}

/// The tries recorded since the store last wrote the ledger: the ledger
/// holds the latest `attempts.len()` of `attempt_count`, the store has the
/// first `stored_attempts` of those.
fn unstored_attempts(callback: &Callback) -> impl Iterator<Item = &Attempt> {
    let new = callback
        .attempt_count
        .saturating_sub(callback.stored_attempts) as usize;
    let skip = callback.attempts.len().saturating_sub(new);
    callback.attempts.iter().skip(skip)
}

/// How [`DynamoOrderStore::put_request`] treats a stored request item.
#[derive(Debug, Clone, Copy)]
enum Written {
    Once,
    Over,
}

/// The request item as read.
#[derive(Debug)]
struct Request {
    order_json: String,
    findings: Option<String>,
}

impl Request {
    fn of(item: &Item) -> Option<Self> {
        Some(Self {
            order_json: string(item, "order")?,
            findings: string(item, "findings"),
        })
    }
}

/// What the history table holds of an order.
#[derive(Debug)]
pub(crate) struct Cold {
    order_json: String,
    /// The findings (JSON), which items written before they moved here keep
    /// in the order's item.
    findings: Option<String>,
    /// Ledger lines, oldest first.
    attempts: Vec<Attempt>,
}

impl OrderStore for DynamoOrderStore {
    async fn insert_new(&self, record: &OrderRecord) -> Result<Insert, StoreError> {
        // The request first: an order's item never points to a missing one.
        self.put_request(record, Written::Once).await?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(order_number)")
            // Hands back the stored order in the same round trip when it exists.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(output) => {
                capacity::record("insert", output.consumed_capacity());
                Ok(Insert::Inserted)
            }
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let stored = match failed.item {
                        Some(item) => self.complete(&item).await?,
                        None => self
                            .get(&record.order.order_number, Access::Service)
                            .await?
                            .into_found()
                            .ok_or_else(|| {
                                StoreError::Failed("condition failed but no order is stored".into())
                            })?,
                    };
                    if stored.request_hash != record.request_hash {
                        // Ours is another request, which nothing points to.
                        if let Err(err) = self
                            .delete_request(
                                record.order.order_number.as_str(),
                                &request_entry(&record.request_hash),
                            )
                            .await
                        {
                            tracing::warn!(order_number = %record.order.order_number, error = %err,
                                "the refused request's history item was not deleted");
                        }
                    }
                    Ok(Insert::AlreadyExists(Box::new(stored)))
                }
                other => Err(classify_service(other)),
            },
            Err(other) => Err(classify(other)),
        }
    }

    async fn get(
        &self,
        order_number: &OrderNumber,
        access: Access<'_>,
    ) -> Result<Lookup, StoreError> {
        let output = sdk::read_item(
            &self.client,
            &self.table,
            "order_number",
            order_number.to_string(),
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .map_err(classify)?;
        capacity::record("get", output.consumed_capacity());
        let Some(item) = output.item else {
            return Ok(Lookup::Missing);
        };
        // The owner is on the state item, so another tenant's order costs this
        // one read, as a missing one does; its history is never read for them.
        if !may_read(&item, access) {
            return Ok(Lookup::Foreign);
        }
        Ok(Lookup::Found(Box::new(self.complete(&item).await?)))
    }

    async fn save(&self, record: &mut OrderRecord, guard: Guard<'_>) -> Result<Save, StoreError> {
        let callback = &record.callback;
        let stamp = next_update_stamp(record.updated_at, Utc::now());
        let mut update = Update::default();
        update
            .set("updated_at", ":updated_at", s(&format_update_time(stamp)))
            .set(
                "updated_key",
                ":updated_key",
                s(&polling::updated_key(stamp, &record.order.order_number)),
            )
            .set("#status", ":status", s(record.status.as_str()))
            .set("version", ":next", n(record.version + 1))
            .set("progress", ":progress", s(&progress_json(&record.progress)))
            .set("callback", ":callback", s(&callback_json(callback)));
        callback_attributes(callback, &record.order.order_number, &mut update);
        if record.rewrite_request {
            // Writes the redacted request (or the findings just added) over
            // the stored one under the same hash (before the state says so: a
            // failure leaves the order due and the next try redacts again).
            if self.put_request(record, Written::Over).await? {
                // Items written before the findings moved kept them here.
                update.remove("findings");
            }
            self.delete_stray_requests(record).await?;
        }
        let final_at = record.final_since(stamp);
        personal_data_attributes(record, final_at, &mut update);
        // Before the state that counts them: see the module docs.
        self.put_attempts(record).await?;
        if record.callback_fields.is_empty() {
            update.remove("callback_fields");
        } else {
            update.set(
                "callback_fields",
                ":callback_fields",
                s(&json(&record.callback_fields)),
            );
        }
        let mut condition = "version = :expected".to_owned();
        update.value(":expected", n(record.version));
        if let Guard::Lease(owner) = guard {
            condition.push_str(" AND lease_owner = :owner");
            update.value(":owner", s(owner));
        }
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("order_number", s(record.order.order_number.as_str()))
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .update_expression(update.expression())
            .set_expression_attribute_values(Some(update.values.clone()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        let written = match request.send().await {
            Ok(output) => {
                capacity::record("save", output.consumed_capacity());
                Ok(())
            }
            // The SDK sent the write again after DynamoDB did it and its
            // answer was lost (a reset, an attempt timeout): the retry's
            // condition met the first try's write. Taken for stale, a
            // callback's answer was recorded a second time (two attempts
            // for one post) and a warehouse event answered as a duplicate.
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    UpdateItemError::ConditionalCheckFailedException(failed)
                        if failed.item.as_ref().is_some_and(|stored| update.applied_in(stored))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => {
                record.version += 1;
                record.updated_at = stamp;
                record.callback.send_message = false;
                record.rewrite_request = false;
                record.final_at = final_at;
                record.callback.stored_attempts = record.callback.attempt_count;
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

    async fn claim(
        &self,
        order_number: &OrderNumber,
        claim: &Claim,
    ) -> Result<Option<ClaimOutcome>, StoreError> {
        let now = millis(claim.now);
        // Callback::check_claim, as a condition on the top-level attributes;
        // both are pinned by tests/src/store_contract.rs, clause by clause.
        // A missing order has no callback_status, so the claim never creates one.
        let condition = "callback_generation = :generation \
             AND callback_status IN (:pending, :retrying) \
             AND (attribute_not_exists(callback_message) OR callback_message = :message) \
             AND (attribute_not_exists(lease_until) OR lease_until <= :now) \
             AND (attribute_not_exists(next_attempt_at) OR next_attempt_at <= :now) \
             AND (attribute_not_exists(callback_posts) OR callback_posts < :max_posts)"
            .to_owned();
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("order_number", s(order_number.as_str()))
            .condition_expression(condition)
            // Callback::apply_claim.
            .update_expression(
                "SET lease_until = :until, lease_owner = :owner, callback_message = :message, \
                 callback_posts = if_not_exists(callback_posts, :zero) + :one, \
                 version = version + :one REMOVE outbox",
            )
            .expression_attribute_values(":pending", s(CallbackStatus::Pending.as_str()))
            .expression_attribute_values(":retrying", s(CallbackStatus::Retrying.as_str()))
            .expression_attribute_values(":generation", n(claim.generation))
            .expression_attribute_values(":message", s(&claim.message_id))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max_posts", n(u64::from(claim.max_posts)))
            .expression_attribute_values(":until", n(millis(claim.now + claim.lease)))
            .expression_attribute_values(":owner", s(&claim.owner))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        match request.send().await {
            Ok(output) => {
                capacity::record("claim", output.consumed_capacity());
                let item = output.attributes.unwrap_or_default();
                Ok(Some(ClaimOutcome::Claimed(Box::new(
                    self.complete(&item).await?,
                ))))
            }
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    let Some(item) = failed.item else {
                        return Ok(None);
                    };
                    let record = self.complete(&item).await?;
                    // Refused because this delivery holds it: the SDK retried
                    // the write after its answer was lost, the first try
                    // applied. Claimed as it stands.
                    if record.callback.claimed_by(claim) {
                        return Ok(Some(ClaimOutcome::Claimed(Box::new(record))));
                    }
                    let why = match record.callback.check_claim(claim) {
                        Err(why) => why,
                        // Only a clock skew between the condition and this
                        // judgement could get here: try again shortly.
                        Ok(()) => NotClaimable::Leased(claim.now),
                    };
                    Ok(Some(ClaimOutcome::Refused(why, Box::new(record))))
                }
                other => Err(classify_service(other)),
            },
            Err(other) => Err(classify(other)),
        }
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
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(classify)?;
        capacity::record("duplicate_query", output.consumed_capacity());
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
/// The key of an item in the history table: the order's number and the entry.
fn history_key(number: &str, entry: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("order_number".to_owned(), s(number)),
        (ENTRY.to_owned(), s(entry)),
    ])
}

pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
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

/// The DynamoDB item [`DynamoOrderStore::insert_new`] writes for `record`
/// in the orders table (the request goes to the history table).
/// Public for the benchmarks (`adapters/benches`, `infra/bench`): the CPU cost of
/// "map to the stored item", and a raw-SDK baseline that puts the very same item.
#[must_use]
pub fn item_for(record: &OrderRecord) -> HashMap<String, AttributeValue> {
    to_item(record)
}

fn to_item(record: &OrderRecord) -> Item {
    let order = &record.order;
    let mut item = Item::with_capacity(18);
    item.extend([
        ("order_number".into(), s(order.order_number.as_str())),
        ("client_code".into(), s(&order.client_code)),
        ("centre_code".into(), s(&order.centre_code)),
        ("request_hash".into(), s(&record.request_hash)),
        ("status".into(), s(record.status.as_str())),
        ("created_at".into(), s(&format_time(record.created_at))),
        (
            "updated_at".into(),
            s(&format_update_time(record.updated_at)),
        ),
        (
            "updated_key".into(),
            s(&polling::updated_key(
                record.updated_at,
                &order.order_number,
            )),
        ),
        (
            "feed_shard".into(),
            s(&polling::feed_shard(
                &order.client_code,
                &order.order_number,
            )),
        ),
        ("version".into(), n(record.version)),
        ("progress".into(), s(&progress_json(&record.progress))),
        ("callback".into(), s(&callback_json(&record.callback))),
    ]);
    let mut update = Update::default();
    callback_attributes(&record.callback, &order.order_number, &mut update);
    item.extend(
        update
            .sets
            .into_iter()
            .filter_map(|(name, placeholder)| Some((name, update.values.remove(&placeholder)?))),
    );
    if let Some(key) = order.client_platform_order_key() {
        item.insert("client_platform_order".into(), s(&key));
    }
    let mut personal = Update::default();
    personal_data_attributes(record, record.final_at, &mut personal);
    item.extend(
        personal
            .sets
            .into_iter()
            .filter_map(|(name, placeholder)| Some((name, personal.values.remove(&placeholder)?))),
    );
    item
}

/// The retention attributes (`shared::erasure`): `final_at` (epoch ms) while
/// the order is final, `redacted_at` once redacted, and the sparse index key
/// `personal_data_shard` only while a final order still holds personal data.
fn personal_data_attributes(
    record: &OrderRecord,
    final_at: Option<DateTime<Utc>>,
    update: &mut Update,
) {
    match final_at {
        Some(at) => update.set("final_at", ":final_at", n(millis(at))),
        None => update.remove("final_at"),
    };
    match erasure::redaction_shard(&record.order.order_number, final_at, record.redacted_at) {
        Some(shard) => update.set("personal_data_shard", ":personal_data_shard", s(&shard)),
        None => update.remove("personal_data_shard"),
    };
    if let Some(at) = record.redacted_at {
        update.set("redacted_at", ":redacted_at", s(&format_update_time(at)));
    }
}

/// Whether `access` may read the order of this state item, judged on the
/// owner attributes alone (the tenant rule is `Scope::may_read`), which
/// every item has from its creation.
pub(crate) fn may_read(item: &Item, access: Access<'_>) -> bool {
    let Access::Scope(scope) = access else {
        return true;
    };
    match (string(item, "client_code"), string(item, "centre_code")) {
        (Some(client_code), Some(centre_code)) => scope.may_read(&client_code, &centre_code),
        _ => false,
    }
}

/// The order from its state item and the history table's request and ledger.
pub(crate) fn from_item(item: &Item, cold: Cold) -> Result<OrderRecord, StoreError> {
    let number = string(item, "order_number").unwrap_or_default();
    let corrupt = |reason: String| StoreError::Corrupt {
        order_number: number.clone(),
        reason,
    };
    let required = |name: &str| string(item, name).ok_or_else(|| corrupt(format!("no {name}")));

    let Cold {
        order_json,
        findings,
        attempts,
    } = cold;
    let order = Order::from_stored(&order_json).map_err(|err| corrupt(err.to_string()))?;
    let findings: Vec<FieldError> = match findings.or_else(|| string(item, "findings")) {
        Some(findings) => {
            serde_json::from_str(&findings).map_err(|err| corrupt(err.to_string()))?
        }
        None => Vec::new(),
    };
    let created_at = DateTime::parse_from_rfc3339(&required("created_at")?)
        .map_err(|err| corrupt(err.to_string()))?
        .with_timezone(&Utc);
    let updated_at = DateTime::parse_from_rfc3339(&required("updated_at")?)
        .map_err(|err| corrupt(err.to_string()))?
        .with_timezone(&Utc);
    let progress =
        parse_progress(&required("progress")?).map_err(|err| corrupt(err.to_string()))?;
    let mut callback: Callback =
        serde_json::from_str(&required("callback")?).map_err(|err| corrupt(err.to_string()))?;
    callback.status = required("callback_status")?.parse().map_err(corrupt)?;
    callback.generation = numeric(item, "callback_generation")
        .ok_or_else(|| corrupt("no callback_generation".into()))?;
    callback.message_id = string(item, "callback_message");
    callback.posts = numeric(item, "callback_posts")
        .and_then(|posts| u32::try_from(posts).ok())
        .unwrap_or_default();
    callback.lease = match (string(item, "lease_owner"), numeric(item, "lease_until")) {
        (Some(owner), Some(until)) => Some(Lease {
            owner,
            until: from_millis(until),
        }),
        _ => None,
    };
    callback.next_attempt_at = numeric(item, "next_attempt_at").map(from_millis);
    // Includes lines whose save did not land (the try was made).
    let mut ledger = attempts;
    let excess = ledger.len().saturating_sub(MAX_LEDGER);
    ledger.drain(..excess);
    callback.attempts = ledger;
    callback.stored_attempts = callback.attempt_count;
    let version = match item.get("version") {
        Some(AttributeValue::N(version)) => {
            version.parse().map_err(|_| corrupt("bad version".into()))?
        }
        _ => return Err(corrupt("no version".into())),
    };
    let callback_fields = match string(item, "callback_fields") {
        Some(fields) => serde_json::from_str(&fields).map_err(|err| corrupt(err.to_string()))?,
        None => CallbackFields::default(),
    };
    let redacted_at = match string(item, "redacted_at") {
        Some(at) => Some(
            DateTime::parse_from_rfc3339(&at)
                .map_err(|err| corrupt(err.to_string()))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    Ok(OrderRecord {
        final_at: numeric(item, "final_at").map(from_millis),
        redacted_at,
        rewrite_request: false,
        callback_fields,
        order,
        order_json,
        request_hash: required("request_hash")?,
        status: required("status")?.parse().map_err(corrupt)?,
        created_at,
        updated_at,
        findings,
        progress,
        callback,
        version,
    })
}

/// The top-level callback attributes of a save (and of a new item): the
/// protocol state the claim's condition reads, and the outbox.
fn callback_attributes(callback: &Callback, order_number: &OrderNumber, update: &mut Update) {
    update
        .set(
            "callback_status",
            ":callback_status",
            s(callback.status.as_str()),
        )
        .set("callback_generation", ":generation", n(callback.generation))
        .set("callback_posts", ":posts", n(u64::from(callback.posts)));
    match polling::callback_shard(callback.status, order_number) {
        Some(shard) => update.set("callback_shard", ":callback_shard", s(&shard)),
        None => update.remove("callback_shard"),
    };
    match &callback.message_id {
        Some(id) => update.set("callback_message", ":message", s(id)),
        None => update.remove("callback_message"),
    };
    match &callback.lease {
        Some(lease) => update
            .set("lease_owner", ":lease_owner", s(&lease.owner))
            .set("lease_until", ":lease_until", n(millis(lease.until))),
        None => update.remove("lease_owner").remove("lease_until"),
    };
    match callback.next_attempt_at {
        Some(at) => update.set("next_attempt_at", ":next_attempt_at", n(millis(at))),
        None => update.remove("next_attempt_at"),
    };
    if callback.send_message {
        update.set("outbox", ":outbox", n(callback.generation));
    } else {
        update.remove("outbox");
    }
}

/// An update expression under construction: `SET a = :a, … REMOVE b, …`.
#[derive(Debug, Default)]
struct Update {
    /// (attribute name or `#placeholder`, `:value` placeholder)
    sets: Vec<(String, String)>,
    removes: Vec<&'static str>,
    values: Item,
}

impl Update {
    fn set(&mut self, name: &str, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.sets.push((name.to_owned(), placeholder.to_owned()));
        self.value(placeholder, value)
    }

    fn remove(&mut self, name: &'static str) -> &mut Self {
        self.removes.push(name);
        self
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// Whether `item` is what this update makes of an item: every attribute
    /// set holds its value, every one removed is gone. Its `#placeholder`
    /// names are the attributes' own (`#status`: `status`).
    fn applied_in(&self, item: &Item) -> bool {
        self.sets.iter().all(|(name, placeholder)| {
            item.get(name.trim_start_matches('#')) == self.values.get(placeholder)
        }) && self.removes.iter().all(|name| !item.contains_key(*name))
    }

    fn expression(&self) -> String {
        let sets: Vec<String> = self
            .sets
            .iter()
            .map(|(name, placeholder)| format!("{name} = {placeholder}"))
            .collect();
        let mut expression = format!("SET {}", sets.join(", "));
        if !self.removes.is_empty() {
            expression.push_str(" REMOVE ");
            expression.push_str(&self.removes.join(", "));
        }
        expression
    }
}

/// Instants the claim's condition compares, as epoch milliseconds.
fn millis(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp_millis()).unwrap_or_default()
}

fn from_millis(millis: u64) -> DateTime<Utc> {
    i64::try_from(millis)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
}

fn numeric(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The callback's JSON in the order's item: its state without the ledger
/// (in the history table) and without `null`s.
fn callback_json(callback: &Callback) -> String {
    let mut value =
        serde_json::to_value(callback).expect("the callback has only string keys and serialises");
    if let Some(fields) = value.as_object_mut() {
        fields.remove("attempts");
    }
    strip_nulls(&mut value);
    value.to_string()
}

/// The fields of an event, in the order of its compact form in the item.
const EVENT_FIELDS: [&str; 6] = [
    "source",
    "event_id",
    "type",
    "occurred_at",
    "received_at",
    "moved_status",
];

/// What the warehouse reported, as the order's item holds it: without
/// `null`s, each event an array of [`EVENT_FIELDS`] (a third of its size as
/// an object), so the item every event rewrites stays near 1 KB.
fn progress_json(progress: &Progress) -> String {
    let mut value =
        serde_json::to_value(progress).expect("progress has only string keys and serialises");
    strip_nulls(&mut value);
    if let Some(events) = value.get_mut("events").and_then(Value::as_array_mut) {
        for event in events.iter_mut() {
            *event = Value::Array(
                EVENT_FIELDS
                    .iter()
                    .map(|field| event.get(field).cloned().unwrap_or(Value::Null))
                    .collect(),
            );
        }
    }
    value.to_string()
}

/// Reads [`progress_json`]'s form.
pub(crate) fn parse_progress(text: &str) -> Result<Progress, serde_json::Error> {
    let mut value: Value = serde_json::from_str(text)?;
    if let Some(events) = value.get_mut("events").and_then(Value::as_array_mut) {
        for event in events.iter_mut() {
            let fields = event.as_array_mut().map(std::mem::take).unwrap_or_default();
            *event = Value::Object(
                EVENT_FIELDS
                    .iter()
                    .map(|field| (*field).to_owned())
                    .zip(fields)
                    .collect(),
            );
        }
    }
    serde_json::from_value(value)
}

/// Drops the `null` members of objects (absent and `null` read alike).
fn strip_nulls(value: &mut Value) {
    if let Value::Object(fields) = value {
        fields.retain(|_, field| !field.is_null());
        fields.values_mut().for_each(strip_nulls);
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("order data has only string keys and always serialises")
}

pub(crate) fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use shared::lifecycle::parse_event;
    use shared::record::callback::AttemptStatus;

    fn progress() -> Progress {
        let mut progress = Progress::default();
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 3, 0, 0).unwrap();
        for body in [
            r#"{"event_id": "e-1", "type": "allocated", "occurred_at": "2026-11-20T01:00:00Z"}"#,
            r#"{"event_id": "e-2", "type": "packed", "occurred_at": "2026-11-20T02:00:00Z",
                "weight_g": 1200, "sorting_code": "A1"}"#,
        ] {
            let event = parse_event(body.as_bytes()).unwrap();
            progress
                .apply(shared::domain::OrderStatus::Pending, &event, now)
                .unwrap();
        }
        progress
    }

    #[test]
    fn an_update_is_seen_applied_only_in_the_item_it_makes() {
        let mut update = Update::default();
        update
            .set("#status", ":status", s("shipped"))
            .set("version", ":next", n(4))
            .remove("findings")
            .value(":expected", n(3));
        let applied = Item::from([
            ("order_number".into(), s("o-1")),
            ("status".into(), s("shipped")),
            ("version".into(), n(4)),
        ]);
        assert!(update.applied_in(&applied));
        let another_writer = Item::from([("status".into(), s("packed")), ("version".into(), n(4))]);
        assert!(!update.applied_in(&another_writer));
        let mut not_removed = applied.clone();
        not_removed.insert("findings".into(), s("[]"));
        assert!(!update.applied_in(&not_removed));
    }

    #[test]
    fn progress_reads_back_from_its_compact_form() {
        let progress = progress();

        let stored = progress_json(&progress);

        assert_eq!(parse_progress(&stored).unwrap(), progress);
        assert!(!stored.contains("null"), "{stored}");
        assert!(
            stored.contains(r#"["warehouse","e-1","allocated","#),
            "{stored}"
        );
    }

    #[test]
    fn the_items_callback_has_no_ledger_and_reads_back_without_it() {
        let mut callback = Callback::new(true);
        callback.record_attempt(Attempt {
            outcome: AttemptStatus::Retrying,
            ..Attempt::default()
        });

        let stored = callback_json(&callback);
        let read: Callback = serde_json::from_str(&stored).unwrap();

        assert!(!stored.contains("attempts"), "{stored}");
        assert!(read.attempts.is_empty());
        assert_eq!(read.attempt_count, 1);
    }

    #[test]
    fn only_the_tries_since_the_last_write_are_put_each_under_its_own_line() {
        let mut callback = Callback::new(true);
        let t0 = DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for i in 0..MAX_LEDGER + 2 {
            callback.record_attempt(Attempt {
                at: t0 + chrono::Duration::seconds(i64::try_from(i).unwrap()),
                ..Attempt::default()
            });
        }
        callback.stored_attempts = callback.attempt_count - 2;

        let unstored: Vec<&Attempt> = unstored_attempts(&callback).collect();

        assert_eq!(unstored.len(), 2);
        assert_eq!(unstored[1], callback.attempts.last().unwrap());
        let entries: Vec<String> = callback.attempts.iter().map(attempt_entry).collect();
        let mut sorted = entries.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            entries, sorted,
            "one line per try, in the order they were made"
        );
    }

    #[test]
    fn the_same_try_written_again_is_the_same_line_and_a_different_one_is_not() {
        let attempt = Attempt {
            outcome: AttemptStatus::Delivered,
            ..Attempt::default()
        };
        let other = Attempt {
            outcome: AttemptStatus::Retrying,
            ..attempt.clone()
        };
        assert_eq!(attempt_entry(&attempt), attempt_entry(&attempt.clone()));
        assert_ne!(attempt_entry(&attempt), attempt_entry(&other));
    }
}
