//! [`KeyStore`] on a DynamoDB table keyed by `key_hash`, plus the writes the
//! key-management command needs. The plain key is never stored.
//!
//! The same table records the signed requests already received, as
//! `spent#{key_id}#{digest}` items (a key hash is hex, so the two never meet),
//! each with `purge_at` (epoch seconds) for the table's TTL: a minute after
//! the signature left its window, when a repeat is refused anyway.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use shared::domain::{ApiKeyRecord, Scope, SignedRequest};
use shared::error::StoreError;
use shared::ports::KeyStore;
use shared::record::format_time;

use crate::sdk;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores a new key record.
    pub async fn put(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(key_hash)")
            .send()
            .await
            .map_err(|err| StoreError::Failed(Box::new(err)))?;
        Ok(())
    }

    /// Every key record (a handful per client: a scan is fine for the admin command).
    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| StoreError::Failed(Box::new(err)))?;
            for item in page.items().iter().filter(|item| !is_spent_signature(item)) {
                records.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(records);
            }
        }
    }

    /// Sets the expiry (rotation) or revocation time of a stored key.
    pub async fn retire(
        &self,
        key_hash: &str,
        expires_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("key_hash", AttributeValue::S(key_hash.to_owned()))
            .condition_expression("attribute_exists(key_hash)");
        let mut set = Vec::new();
        if let Some(at) = expires_at {
            set.push("expires_at = :expires");
            update =
                update.expression_attribute_values(":expires", AttributeValue::S(format_time(at)));
        }
        if let Some(at) = revoked_at {
            set.push("revoked_at = :revoked");
            update =
                update.expression_attribute_values(":revoked", AttributeValue::S(format_time(at)));
        }
        if set.is_empty() {
            return Ok(());
        }
        update
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
            .map_err(|err| StoreError::Failed(Box::new(err)))?;
        Ok(())
    }
}

impl KeyStore for DynamoKeyStore {
    async fn find(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let output = sdk::read_item(&self.client, &self.table, "key_hash", key_hash.to_owned())
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|err| StoreError::Unavailable(Box::new(err)))?;
        super::capacity::record("key_lookup", output.consumed_capacity());
        output.item.as_ref().map(from_item).transpose()
    }

    async fn spend_signature(
        &self,
        key_id: &str,
        signed: &SignedRequest,
    ) -> Result<bool, StoreError> {
        let purge_at = signed.valid_until.timestamp() + SPENT_KEPT_PAST_WINDOW_SECONDS;
        // Who spends it, so that the SDK's retry of this put, sent again
        // after its answer was lost, finds its own item rather than a
        // replay of the request ([`sdk::put_once`]).
        let mut spender = [0_u8; 8];
        shared::random::fill(&mut spender).map_err(|err| StoreError::Failed(Box::new(err)))?;
        let item = HashMap::from([
            (
                "key_hash".to_owned(),
                AttributeValue::S(format!("{SPENT_PREFIX}{key_id}#{}", signed.digest)),
            ),
            (
                "purge_at".to_owned(),
                AttributeValue::N(purge_at.to_string()),
            ),
            (
                "spent_by".to_owned(),
                AttributeValue::S(shared::hex::encode(&spender)),
            ),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .condition_expression("attribute_not_exists(key_hash)");
        sdk::put_once("signature_spend", put, item)
            .await
            .map_err(super::dynamodb::classify)
    }
}

/// The key of a spent signature's item begins so.
const SPENT_PREFIX: &str = "spent#";
/// How long a spent signature's item outlives the signature's window.
const SPENT_KEPT_PAST_WINDOW_SECONDS: i64 = 60;

fn is_spent_signature(item: &Item) -> bool {
    matches!(item.get("key_hash"), Some(AttributeValue::S(hash)) if hash.starts_with(SPENT_PREFIX))
}

fn to_item(record: &ApiKeyRecord) -> Item {
    let s = |value: &str| AttributeValue::S(value.to_owned());
    let mut item = Item::from([
        ("key_hash".into(), s(&record.key_hash)),
        ("key_id".into(), s(&record.key_id)),
        ("created_at".into(), s(&format_time(record.created_at))),
    ]);
    match &record.scope {
        Scope::Client(client) => {
            item.insert("client_code".into(), s(client));
        }
        Scope::Warehouse(centres) => {
            item.insert(
                "centre_codes".into(),
                AttributeValue::Ss(centres.iter().cloned().collect()),
            );
        }
    }
    if let Some(secret) = &record.signing_secret {
        item.insert("signing_secret".into(), s(secret));
    }
    if !record.order_prefixes.is_empty() {
        item.insert(
            "order_prefixes".into(),
            AttributeValue::Ss(record.order_prefixes.clone()),
        );
    }
    if let Some(at) = record.expires_at {
        item.insert("expires_at".into(), s(&format_time(at)));
    }
    if let Some(at) = record.revoked_at {
        item.insert("revoked_at".into(), s(&format_time(at)));
    }
    item
}

fn from_item(item: &Item) -> Result<ApiKeyRecord, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    let corrupt = |reason: &str| StoreError::Corrupt {
        order_number: text("key_id").unwrap_or_default(),
        reason: reason.to_owned(),
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        text(name)
            .map(|value| {
                DateTime::parse_from_rfc3339(&value)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| corrupt("bad time"))
            })
            .transpose()
    };
    let scope = match (text("client_code"), item.get("centre_codes")) {
        (Some(client), _) => Scope::Client(client),
        (None, Some(AttributeValue::Ss(centres))) => {
            Scope::Warehouse(centres.iter().cloned().collect::<BTreeSet<_>>())
        }
        _ => return Err(corrupt("key has no scope")),
    };
    Ok(ApiKeyRecord {
        key_id: text("key_id").ok_or_else(|| corrupt("no key_id"))?,
        key_hash: text("key_hash").ok_or_else(|| corrupt("no key_hash"))?,
        scope,
        signing_secret: text("signing_secret"),
        order_prefixes: match item.get("order_prefixes") {
            Some(AttributeValue::Ss(prefixes)) => prefixes.clone(),
            _ => Vec::new(),
        },
        created_at: time("created_at")?.ok_or_else(|| corrupt("no created_at"))?,
        expires_at: time("expires_at")?,
        revoked_at: time("revoked_at")?,
    })
}
