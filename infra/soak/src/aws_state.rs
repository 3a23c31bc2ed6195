//! What the service stored, read straight from the emulators (never through
//! the fault proxies): every order's item and its request item in DynamoDB,
//! every label object in S3; and their reconciliation (issue 27): no
//! accepted order without its request item, no label object without the
//! order that names it, no order naming a label that is missing.
//!
//! How intake stores a label (docs/api.md, "Labels"): the object
//! `labels/{order_number}/{sha256}` is put *before* the order is written,
//! and the order's request item (history table, `request#<sha256>`, the
//! request as canonical JSON) names it in
//! `logistics_provider.label.key`; a create that loses the race for its
//! number deletes its own object unless the winner names the same key.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::emulator_dynamodb::{EmulatorDynamoDb, env_value};

/// The stored state the reconciliation needs.
#[derive(Debug, Default)]
pub struct Stored {
    /// Order number → its `request_hash`, for every order item.
    pub orders: HashMap<String, Option<String>>,
    /// (order number, request hash) of every request item, with the label
    /// key its request names.
    pub requests: HashMap<(String, String), Option<String>>,
    /// Every object key under `labels/`.
    pub labels: HashSet<String>,
}

/// The checks' counts, and samples of what failed them.
#[derive(Debug, Clone, Default)]
pub struct StoreFigures {
    pub order_items: usize,
    pub request_items: usize,
    pub label_objects: usize,
    /// Accepted orders (or any order item) with no request item under its hash.
    pub without_request: usize,
    /// Accepted orders with no order item at all.
    pub accepted_not_stored: usize,
    /// Orders whose request names a label object that is missing.
    pub label_missing: usize,
    /// Label objects no stored order names.
    pub orphan_labels: usize,
    pub samples: Vec<String>,
}

impl StoreFigures {
    pub fn passed(&self) -> bool {
        self.without_request == 0
            && self.accepted_not_stored == 0
            && self.label_missing == 0
            && self.orphan_labels == 0
    }

    /// Reconciles what is stored with the orders the ERP saw accepted.
    pub fn reconcile(stored: &Stored, accepted: &[bool]) -> Self {
        let mut figures = Self {
            order_items: stored.orders.len(),
            request_items: stored.requests.len(),
            label_objects: stored.labels.len(),
            ..Self::default()
        };
        let note = |figures: &mut Self, what: String| {
            if figures.samples.len() < 10 {
                figures.samples.push(what);
            }
        };
        for (index, _) in accepted.iter().enumerate().filter(|(_, ok)| **ok) {
            let number = crate::scenario::order_number(index);
            if !stored.orders.contains_key(&number) {
                figures.accepted_not_stored += 1;
                note(&mut figures, format!("{number}: accepted, no order item"));
            }
        }
        let mut named = HashSet::new();
        for (number, hash) in &stored.orders {
            let request = hash
                .as_ref()
                .and_then(|hash| stored.requests.get(&(number.clone(), hash.clone())));
            let Some(label) = request else {
                figures.without_request += 1;
                note(
                    &mut figures,
                    format!("{number}: no request item for request_hash {hash:?}"),
                );
                continue;
            };
            if let Some(key) = label {
                named.insert(key.clone());
                if !stored.labels.contains(key) {
                    figures.label_missing += 1;
                    note(
                        &mut figures,
                        format!("{number}: its label {key} is missing"),
                    );
                }
            }
        }
        for key in &stored.labels {
            if !named.contains(key) {
                figures.orphan_labels += 1;
                note(
                    &mut figures,
                    format!("{key}: a label object no stored order names"),
                );
            }
        }
        figures
    }

    pub fn rows(&self) -> Vec<(String, String)> {
        vec![
            (
                "stored: order items / request items / label objects".into(),
                format!(
                    "{} / {} / {}",
                    self.order_items, self.request_items, self.label_objects
                ),
            ),
            (
                "**accepted order without its request item** (or without its item)".into(),
                format!(
                    "**{}** ({})",
                    self.without_request, self.accepted_not_stored
                ),
            ),
            (
                "**label object without its order / order whose label is missing**".into(),
                format!("**{} / {}**", self.orphan_labels, self.label_missing),
            ),
        ]
    }
}

/// The emulators as the soak itself reaches them (its own environment,
/// not the service's proxies) and the stack's resource names.
pub struct Emulators {
    http: reqwest::Client,
    dynamodb: EmulatorDynamoDb,
    s3: String,
    orders_table: String,
    history_table: String,
    bucket: String,
}

impl Emulators {
    /// The endpoints from the soak's environment, the names from the local
    /// stack's `env` file.
    pub fn from_env(env_file: &Path) -> Result<Self, String> {
        let env = std::fs::read_to_string(env_file)
            .map_err(|err| format!("{}: {err}", env_file.display()))?;
        let value = |name: &str| {
            env_value(&env, name).ok_or_else(|| format!("{name} is not in {}", env_file.display()))
        };
        Ok(Self {
            http: reqwest::Client::new(),
            dynamodb: EmulatorDynamoDb::from_env()?,
            s3: std::env::var("AWS_ENDPOINT_URL_S3")
                .map_err(|_| "AWS_ENDPOINT_URL_S3 is not set: run under emulators.sh")?,
            orders_table: value("ORDERS_TABLE")?,
            history_table: value("ORDER_HISTORY_TABLE")?,
            bucket: value("LABELS_BUCKET")?,
        })
    }

    /// Reads every order item, request item and label object.
    pub async fn read(&self) -> Result<Stored, String> {
        let mut stored = Stored::default();
        for item in self
            .scan(&self.orders_table, "order_number, request_hash", None)
            .await?
        {
            stored.orders.insert(
                attribute(&item, "order_number")?,
                item["request_hash"]["S"].as_str().map(str::to_owned),
            );
        }
        for item in self
            .scan(
                &self.history_table,
                "order_number, #entry, #order",
                Some("begins_with(#entry, :request)"),
            )
            .await?
        {
            let entry = attribute(&item, "entry")?;
            let Some(hash) = entry.strip_prefix("request#") else {
                continue;
            };
            let order: Value = item["order"]["S"]
                .as_str()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null);
            let label = order["logistics_provider"]["label"]["key"]
                .as_str()
                .map(str::to_owned);
            stored
                .requests
                .insert((attribute(&item, "order_number")?, hash.to_owned()), label);
        }
        stored.labels = self.label_keys().await?;
        Ok(stored)
    }

    /// Every item of `table` (the attributes `projection` names).
    async fn scan(
        &self,
        table: &str,
        projection: &str,
        filter: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let mut request = json!({
            "TableName": table,
            "ProjectionExpression": projection,
            "ConsistentRead": true,
        });
        if projection.contains('#') {
            request["ExpressionAttributeNames"] = json!({"#entry": "entry", "#order": "order"});
        }
        if let Some(filter) = filter {
            request["FilterExpression"] = json!(filter);
            request["ExpressionAttributeValues"] = json!({":request": {"S": "request#"}});
        }
        self.dynamodb
            .items(
                "Scan",
                request,
                Duration::from_secs(120),
                &format!("scan {table}"),
            )
            .await
    }

    /// Every key under `labels/` in the bucket (`ListObjectsV2`, every page).
    async fn label_keys(&self) -> Result<HashSet<String>, String> {
        let mut keys = HashSet::new();
        let mut token: Option<String> = None;
        loop {
            // The token is base64 text: `+`, `/` and `=` escaped.
            let after = token.take().map_or_else(String::new, |token| {
                format!(
                    "&continuation-token={}",
                    token
                        .replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D")
                )
            });
            let answer = self
                .http
                .get(format!(
                    "{}/{}?list-type=2&prefix=labels%2F{after}",
                    self.s3.trim_end_matches('/'),
                    self.bucket
                ))
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .map_err(|err| format!("list {}: {err}", self.bucket))?;
            let status = answer.status();
            let body = answer
                .text()
                .await
                .map_err(|err| format!("list {}: {err}", self.bucket))?;
            if !status.is_success() {
                return Err(format!("list {}: {status} {body}", self.bucket));
            }
            keys.extend(elements(&body, "Key").map(unescape));
            match elements(&body, "NextContinuationToken").next() {
                Some(next) => token = Some(unescape(next)),
                None => return Ok(keys),
            }
        }
    }
}

fn attribute(item: &Value, name: &str) -> Result<String, String> {
    item[name]["S"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("an item without {name}: {item}"))
}

/// The texts of every `<name>…</name>` in `xml`.
fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .filter_map(move |rest| rest.split_once(close.as_str()).map(|(text, _)| text))
        .collect::<Vec<_>>()
        .into_iter()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Stored {
        let mut stored = Stored::default();
        stored
            .orders
            .insert("soak-000000".into(), Some("h0".into()));
        stored.requests.insert(
            ("soak-000000".into(), "h0".into()),
            Some("labels/soak-000000/s".into()),
        );
        stored.labels.insert("labels/soak-000000/s".into());
        stored
    }

    #[test]
    fn an_order_with_its_request_and_label_passes() {
        let figures = StoreFigures::reconcile(&stored(), &[true]);
        assert!(figures.passed(), "{figures:?}");
    }

    #[test]
    fn an_order_without_its_request_item_fails() {
        let mut stored = stored();
        stored.requests.clear();
        let figures = StoreFigures::reconcile(&stored, &[true]);
        assert_eq!(figures.without_request, 1);
        assert_eq!(figures.orphan_labels, 1);
        assert!(!figures.passed());
    }

    #[test]
    fn a_missing_label_and_an_orphan_label_each_fail() {
        let mut missing = stored();
        missing.labels.clear();
        assert_eq!(StoreFigures::reconcile(&missing, &[true]).label_missing, 1);
        let mut orphan = stored();
        orphan.labels.insert("labels/soak-000009/x".into());
        assert_eq!(StoreFigures::reconcile(&orphan, &[true]).orphan_labels, 1);
    }

    #[test]
    fn an_accepted_order_that_was_not_stored_fails() {
        let figures = StoreFigures::reconcile(&stored(), &[true, true]);
        assert_eq!(figures.accepted_not_stored, 1);
        assert!(!figures.passed());
    }

    #[test]
    fn list_objects_keys_and_token_are_read_from_the_xml() {
        let xml = "<ListBucketResult><Contents><Key>labels/a/1</Key></Contents>\
                   <Contents><Key>labels/b/&amp;2</Key></Contents>\
                   <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        let keys: Vec<String> = elements(xml, "Key").map(unescape).collect();
        assert_eq!(keys, ["labels/a/1", "labels/b/&2"]);
        assert_eq!(elements(xml, "NextContinuationToken").next(), Some("t1"));
    }
}
