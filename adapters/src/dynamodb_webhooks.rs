//! The webhook ports on one DynamoDB table (`WebhooksTable`, keys `pk` and
//! `sk`), three kinds of item apart by their partition key:
//!
//! | item | `pk` | `sk` | expires |
//! | --- | --- | --- | --- |
//! | an endpoint | `client#{client_code}` | `endpoint#{id}` | never |
//! | the client's endpoint count | `client#{client_code}` | `count` | never |
//! | a logged event | `events#{client_code}` | `{millis}#{event_id}` | after 7 days |
//! | a delivery | `deliveries#{endpoint_id}` | `{millis}#{event_id}` | after 30 days |
//!
//! An endpoint is added with its count in one transaction, so a client can
//! never hold more than `MAX_ENDPOINTS`. A delivery is claimed and settled
//! with one conditional write each: the claim's condition is
//! [`Delivery::check_claim`]'s rule, the settle's that the claimer still
//! holds the lease, a replay's re-opening [`Delivery::check_reopen`]'s
//! rule (the store contract holds all three to it, the model test the
//! claim and the settle).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Duration, Utc};

use shared::callback::retry::RetryPolicy;

use crate::{capacity, sdk};
use shared::error::StoreError;
use shared::ports::{DeliveryClaim, DeliveryStore, EndpointStore, EventLog, Reopen, Save};
use shared::webhook::{
    Attempt, Delivery, DeliveryStatus, DeliveryTicket, Endpoint, EndpointId, EndpointUrl,
    EventType, EventTypes, Health, Lease, MAX_ENDPOINTS, Reach, WebhookEvent, WebhookSecret,
};

type Item = HashMap<String, AttributeValue>;

/// How long the event log keeps an event: what `replay?since=` can reach.
const EVENTS_KEPT: Duration = Duration::days(7);
/// How long an endpoint's deliveries stay readable as its recent attempts.
const DELIVERIES_KEPT: Duration = Duration::days(30);

#[derive(Debug, Clone)]
pub struct DynamoWebhooks {
    client: Client,
    table: String,
    /// How far stored URLs may reach (they were checked with it when given).
    reach: Reach,
}

impl DynamoWebhooks {
    pub fn new(client: Client, table: impl Into<String>, reach: Reach) -> Self {
        Self {
            client,
            table: table.into(),
            reach,
        }
    }

    /// The client owning endpoint `id`, for an operator who knows only the
    /// id (`orderctl webhooks show ID`). A scan filtered to that one item:
    /// it reads the whole table, so it is for the command line, never for
    /// the API (an ERP names its client with its key).
    pub async fn owner_of(&self, id: &EndpointId) -> Result<Option<String>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :sk AND begins_with(pk, :client)")
            .expression_attribute_values(":sk", s(&format!("endpoint#{}", id.as_str())))
            .expression_attribute_values(":client", s("client#"))
            .projection_expression("pk")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(super::dynamodb::classify)?;
            if let Some(pk) = page.items().first().and_then(|item| string(item, "pk")) {
                return Ok(pk.strip_prefix("client#").map(str::to_owned));
            }
        }
        Ok(None)
    }

    fn key(pk: String, sk: String) -> Item {
        Item::from([("pk".into(), s(&pk)), ("sk".into(), s(&sk))])
    }

    fn endpoint_key(client_code: &str, id: &EndpointId) -> Item {
        Self::key(
            format!("client#{client_code}"),
            format!("endpoint#{}", id.as_str()),
        )
    }

    fn delivery_key(ticket: &DeliveryTicket) -> Item {
        Self::key(
            format!("deliveries#{}", ticket.endpoint_id),
            ticket.entry.clone(),
        )
    }
}

impl EndpointStore for DynamoWebhooks {
    async fn insert(&self, endpoint: &Endpoint) -> Result<bool, StoreError> {
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                format!("client#{}", endpoint.client_code),
                "count".into(),
            )))
            .update_expression("ADD endpoints :one")
            .condition_expression("attribute_not_exists(endpoints) OR endpoints < :most")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":most", n(MAX_ENDPOINTS as u64))
            .build()
            .map_err(failed)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(endpoint_item(endpoint)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(failed)?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(count).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(output) => {
                for consumed in output.consumed_capacity() {
                    capacity::record("webhook_endpoint_insert", Some(consumed));
                }
                Ok(true)
            }
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(super::dynamodb::classify(err)),
        }
    }

    async fn list(&self, client_code: &str) -> Result<Vec<Endpoint>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :endpoint)")
            .expression_attribute_values(":pk", s(&format!("client#{client_code}")))
            .expression_attribute_values(":endpoint", s("endpoint#"))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::dynamodb::classify)?;
        capacity::record("webhook_endpoint_list", page.consumed_capacity());
        let mut endpoints = page
            .items()
            .iter()
            .map(|item| endpoint_from(item, self.reach))
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.sort_by_key(|endpoint| endpoint.created_at);
        Ok(endpoints)
    }

    async fn get(
        &self,
        client_code: &str,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::endpoint_key(client_code, id)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::dynamodb::classify)?;
        capacity::record("webhook_endpoint_get", output.consumed_capacity());
        output
            .item
            .as_ref()
            .map(|item| endpoint_from(item, self.reach))
            .transpose()
    }

    async fn save(&self, endpoint: &Endpoint, read_version: u64) -> Result<Save, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .condition_expression("version = :read")
            .expression_attribute_values(":read", n(read_version));
        saved(sdk::put_once("webhook_endpoint_save", request, endpoint_item(endpoint)).await)
    }

    async fn delete(&self, client_code: &str, id: &EndpointId) -> Result<bool, StoreError> {
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                format!("client#{client_code}"),
                "count".into(),
            )))
            .update_expression("ADD endpoints :minus")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .build()
            .map_err(failed)?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::endpoint_key(client_code, id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(failed)?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(count).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(output) => {
                for consumed in output.consumed_capacity() {
                    capacity::record("webhook_endpoint_delete", Some(consumed));
                }
                Ok(true)
            }
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(super::dynamodb::classify(err)),
        }
    }
}

impl DeliveryStore for DynamoWebhooks {
    async fn add(&self, ticket: &DeliveryTicket, delivery: &Delivery) -> Result<bool, StoreError> {
        let mut item = delivery_item(delivery);
        item.extend(Self::delivery_key(ticket));
        item.insert("expires_at".into(), n(expiry(Utc::now() + DELIVERIES_KEPT)));
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match written {
            Ok(output) => {
                capacity::record("webhook_delivery_add", output.consumed_capacity());
                Ok(true)
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(super::dynamodb::classify(err)),
        }
    }

    async fn claim(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Option<DeliveryClaim>, StoreError> {
        let lease = chrono::Duration::from_std(policy.lease).unwrap_or_default();
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::delivery_key(ticket)))
            .update_expression(
                "SET posts = posts + :one, lease_owner = :owner, lease_until = :until",
            )
            // Delivery::check_claim; a missing delivery has no status, so the
            // claim never creates one. Pinned by tests/src/delivery_contract.rs.
            .condition_expression(
                "#status = :pending \
                 AND (attribute_not_exists(lease_until) OR lease_until <= :now) \
                 AND (attribute_not_exists(next_attempt_at) OR next_attempt_at <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", n(millis(now + lease)))
            .expression_attribute_values(":pending", s(status_name(DeliveryStatus::Pending)))
            .expression_attribute_values(":now", n(millis(now)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        // Refused because `owner` holds it: the SDK retried this write after
        // its answer was lost, the first try applied. Claimed as it stands.
        let rule = |delivery: &Delivery| {
            if delivery.claimed_by(owner, now) {
                return Err(Box::new(DeliveryClaim::Claimed(delivery.clone())));
            }
            delivery
                .check_claim(now)
                .map_err(|refused| Box::new(DeliveryClaim::Refused(refused)))
        };
        Ok(
            judged("webhook_delivery_claim", claimed, rule, "claim")?.map(|judged| match judged {
                Ok(delivery) => DeliveryClaim::Claimed(delivery),
                Err(answer) => *answer,
            }),
        )
    }

    async fn settle(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        delivery: &Delivery,
    ) -> Result<Save, StoreError> {
        let mut item = delivery_item(delivery);
        item.extend(Self::delivery_key(ticket));
        item.insert("expires_at".into(), n(expiry(Utc::now() + DELIVERIES_KEPT)));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner));
        saved(sdk::put_once("webhook_delivery_settle", request, item).await)
    }

    async fn reopen(
        &self,
        ticket: &DeliveryTicket,
        now: DateTime<Utc>,
    ) -> Result<Option<Reopen>, StoreError> {
        let reopened = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::delivery_key(ticket)))
            .update_expression(
                "SET #status = :pending, posts = :zero, expires_at = :expires \
                 REMOVE next_attempt_at, lease_owner, lease_until",
            )
            // Delivery::check_reopen; a missing delivery has no status, so
            // re-opening never creates one. Pinned by
            // tests/src/delivery_contract.rs.
            .condition_expression(
                "#status = :failed \
                 AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(status_name(DeliveryStatus::Pending)))
            .expression_attribute_values(":failed", s(status_name(DeliveryStatus::Failed)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":expires", n(expiry(now + DELIVERIES_KEPT)))
            .expression_attribute_values(":now", n(millis(now)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        Ok(judged(
            "webhook_delivery_reopen",
            reopened,
            |delivery| delivery.check_reopen(now),
            "reopening",
        )?
        .map(|judged| match judged {
            Ok(delivery) => Reopen::Reopened(delivery),
            Err(refused) => Reopen::Refused(refused),
        }))
    }

    async fn recent(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&format!("deliveries#{}", endpoint.as_str())))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::dynamodb::classify)?;
        capacity::record("webhook_delivery_recent", page.consumed_capacity());
        page.items().iter().map(delivery_from).collect()
    }
}

impl EventLog for DynamoWebhooks {
    async fn append(&self, event: &WebhookEvent) -> Result<(), StoreError> {
        let output = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("events#{}", event.client_code)))
            .item("sk", s(&event.log_entry()))
            .item("event_id", s(&event.id))
            .item("event_type", s(event.kind.as_str()))
            .item("order_number", s(&event.order_number))
            .item("sequence", n(event.sequence))
            .item("at", n(millis(event.at)))
            .item("body", s(&event.body))
            .item("expires_at", n(expiry(event.at + EVENTS_KEPT)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::dynamodb::classify)?;
        capacity::record("webhook_event_append", output.consumed_capacity());
        Ok(())
    }

    async fn since(
        &self,
        client_code: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk >= :since")
            .expression_attribute_values(":pk", s(&format!("events#{client_code}")))
            .expression_attribute_values(":since", s(&format!("{:013}", millis(since))))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::dynamodb::classify)?;
        capacity::record("webhook_event_since", page.consumed_capacity());
        page.items()
            .iter()
            .map(|item| event_from(item, client_code))
            .collect()
    }
}

fn endpoint_item(endpoint: &Endpoint) -> Item {
    let mut item = DynamoWebhooks::endpoint_key(&endpoint.client_code, &endpoint.id);
    item.insert("url".into(), s(endpoint.url.as_str()));
    if let EventTypes::Only(kinds) = &endpoint.event_types {
        let names = kinds.iter().map(|kind| kind.as_str().to_owned()).collect();
        item.insert("event_types".into(), AttributeValue::Ss(names));
    }
    if let Some(description) = &endpoint.description {
        item.insert("description".into(), s(description));
    }
    item.insert("enabled".into(), AttributeValue::Bool(endpoint.enabled));
    if let Some(reason) = &endpoint.disabled_reason {
        item.insert("disabled_reason".into(), s(reason));
    }
    item.insert("secret".into(), s(&endpoint.secret.expose()));
    if let Some((previous, until)) = &endpoint.previous_secret {
        item.insert("previous_secret".into(), s(&previous.expose()));
        item.insert("previous_until".into(), n(millis(*until)));
    }
    let health = &endpoint.health;
    let times = [
        ("failing_since", health.failing_since),
        ("blocked_until", health.blocked_until),
        ("blocked_at", health.blocked_at),
        ("probe_until", health.probe_until),
        ("last_success_at", health.last_success_at),
    ];
    for (name, time) in times {
        if let Some(time) = time {
            item.insert(name.into(), n(millis(time)));
        }
    }
    item.insert("failures".into(), n(u64::from(health.consecutive_failures)));
    item.insert("created_at".into(), n(millis(endpoint.created_at)));
    item.insert("updated_at".into(), n(millis(endpoint.updated_at)));
    item.insert("version".into(), n(endpoint.version));
    item
}

fn endpoint_from(item: &Item, reach: Reach) -> Result<Endpoint, StoreError> {
    let text = |name: &str| string(item, name).ok_or_else(|| corrupt(item, format!("no {name}")));
    let id = text("sk")?
        .strip_prefix("endpoint#")
        .and_then(EndpointId::parse)
        .ok_or_else(|| corrupt(item, "not an endpoint".into()))?;
    let client_code = text("pk")?
        .strip_prefix("client#")
        .map(str::to_owned)
        .ok_or_else(|| corrupt(item, "not a client's".into()))?;
    // Stored URLs were checked when given; a local run's loopback URL read by
    // a deployed function is refused here, not posted to.
    let url =
        EndpointUrl::parse(&text("url")?, reach).map_err(|err| corrupt(item, err.to_string()))?;
    let event_types = match item.get("event_types") {
        Some(AttributeValue::Ss(names)) => EventTypes::Only(
            names
                .iter()
                .map(|name| {
                    EventType::parse(name)
                        .ok_or_else(|| corrupt(item, format!("event type {name}")))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => EventTypes::All,
    };
    let secret = |name: &str| {
        string(item, name)
            .map(|text| WebhookSecret::parse(&text).map_err(|err| corrupt(item, err.to_string())))
    };
    let previous_secret = match (
        secret("previous_secret").transpose()?,
        time(item, "previous_until"),
    ) {
        (Some(previous), Some(until)) => Some((previous, until)),
        _ => None,
    };
    Ok(Endpoint {
        id,
        client_code,
        url,
        event_types,
        description: string(item, "description"),
        enabled: matches!(item.get("enabled"), Some(AttributeValue::Bool(true))),
        disabled_reason: string(item, "disabled_reason"),
        secret: secret("secret").ok_or_else(|| corrupt(item, "no secret".into()))??,
        previous_secret,
        health: Health {
            failing_since: time(item, "failing_since"),
            consecutive_failures: u32::try_from(number(item, "failures").unwrap_or(0))
                .unwrap_or(u32::MAX),
            blocked_until: time(item, "blocked_until"),
            blocked_at: time(item, "blocked_at"),
            probe_until: time(item, "probe_until"),
            last_success_at: time(item, "last_success_at"),
        },
        created_at: time(item, "created_at")
            .ok_or_else(|| corrupt(item, "no created_at".into()))?,
        updated_at: time(item, "updated_at")
            .ok_or_else(|| corrupt(item, "no updated_at".into()))?,
        version: number(item, "version").ok_or_else(|| corrupt(item, "no version".into()))?,
    })
}

fn delivery_item(delivery: &Delivery) -> Item {
    let mut item = Item::from([
        ("event_id".into(), s(&delivery.event_id)),
        ("event_type".into(), s(delivery.kind.as_str())),
        ("order_number".into(), s(&delivery.order_number)),
        ("sequence".into(), n(delivery.sequence)),
        ("body".into(), s(&delivery.body)),
        ("status".into(), s(status_name(delivery.status))),
        ("posts".into(), n(u64::from(delivery.posts))),
    ]);
    if let Some(at) = delivery.next_attempt_at {
        item.insert("next_attempt_at".into(), n(millis(at)));
    }
    if let Some(lease) = &delivery.lease {
        item.insert("lease_owner".into(), s(&lease.owner));
        item.insert("lease_until".into(), n(millis(lease.until)));
    }
    if let Some(attempt) = &delivery.last_attempt {
        item.insert("last_at".into(), n(millis(attempt.at)));
        if let Some(status) = attempt.http_status {
            item.insert("last_status".into(), n(u64::from(status)));
        }
        item.insert("last_latency_ms".into(), n(attempt.latency_ms));
        item.insert("last_excerpt".into(), s(&attempt.excerpt));
    }
    item
}

fn delivery_from(item: &Item) -> Result<Delivery, StoreError> {
    let text = |name: &str| string(item, name).ok_or_else(|| corrupt(item, format!("no {name}")));
    let kind =
        EventType::parse(&text("event_type")?).ok_or_else(|| corrupt(item, "event type".into()))?;
    let status = match text("status")?.as_str() {
        "pending" => DeliveryStatus::Pending,
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        other => return Err(corrupt(item, format!("status {other}"))),
    };
    let lease = match (string(item, "lease_owner"), time(item, "lease_until")) {
        (Some(owner), Some(until)) => Some(Lease { owner, until }),
        _ => None,
    };
    let last_attempt = time(item, "last_at").map(|at| Attempt {
        at,
        http_status: number(item, "last_status").and_then(|status| u16::try_from(status).ok()),
        latency_ms: number(item, "last_latency_ms").unwrap_or(0),
        excerpt: string(item, "last_excerpt").unwrap_or_default(),
    });
    Ok(Delivery {
        event_id: text("event_id")?,
        kind,
        order_number: text("order_number")?,
        sequence: number(item, "sequence").unwrap_or(0),
        body: text("body")?,
        status,
        posts: u32::try_from(number(item, "posts").unwrap_or(0)).unwrap_or(u32::MAX),
        next_attempt_at: time(item, "next_attempt_at"),
        lease,
        last_attempt,
    })
}

fn event_from(item: &Item, client_code: &str) -> Result<WebhookEvent, StoreError> {
    let text = |name: &str| string(item, name).ok_or_else(|| corrupt(item, format!("no {name}")));
    Ok(WebhookEvent {
        id: text("event_id")?,
        kind: EventType::parse(&text("event_type")?)
            .ok_or_else(|| corrupt(item, "event type".into()))?,
        client_code: client_code.to_owned(),
        order_number: text("order_number")?,
        sequence: number(item, "sequence").unwrap_or(0),
        at: time(item, "at").ok_or_else(|| corrupt(item, "no at".into()))?,
        body: text("body")?,
    })
}

/// A conditional update of a delivery (`ReturnValues` all new, all old on a
/// failed condition), as its rule judges it: the delivery as written, or the
/// rule's refusal of the stored one; `None` when there is no such delivery.
/// The rule is the domain's own check of what the condition says, so it must
/// refuse what the condition refused.
fn judged<R>(
    operation: &'static str,
    answer: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    rule: impl FnOnce(&Delivery) -> Result<(), R>,
    what: &str,
) -> Result<Option<Result<Delivery, R>>, StoreError> {
    let err = match answer {
        Ok(output) => {
            capacity::record(operation, output.consumed_capacity());
            let item = output.attributes.unwrap_or_default();
            return Ok(Some(Ok(delivery_from(&item)?)));
        }
        Err(err) => err,
    };
    let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
    else {
        return Err(super::dynamodb::classify(err));
    };
    let Some(item) = &failed.item else {
        return Ok(None);
    };
    let refused = rule(&delivery_from(item)?).err().ok_or_else(|| {
        corrupt(
            item,
            format!("the {what} was refused, yet its rule allows it"),
        )
    })?;
    Ok(Some(Err(refused)))
}

/// A conditional put's answer ([`sdk::put_once`]) as a versioned save's.
fn saved(
    put: Result<bool, SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, HttpResponse>>,
) -> Result<Save, StoreError> {
    match put {
        Ok(true) => Ok(Save::Saved),
        Ok(false) => Ok(Save::Stale),
        Err(err) => Err(super::dynamodb::classify(err)),
    }
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

/// Whether a transaction was cancelled because a condition failed (the
/// endpoint count is full, or the item is missing).
fn is_condition_failure<R>(
    err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

fn failed(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Failed(Box::new(err))
}

fn corrupt(item: &Item, reason: String) -> StoreError {
    StoreError::Corrupt {
        order_number: string(item, "sk").unwrap_or_default(),
        reason,
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

fn time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    number(item, name).and_then(|ms| DateTime::from_timestamp_millis(i64::try_from(ms).ok()?))
}

fn millis(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp_millis()).unwrap_or(0)
}

/// Epoch seconds, as DynamoDB's TTL reads them.
fn expiry(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}
