//! `orderctl keys create|rotate|revoke|list`: API keys in `API_KEYS_TABLE`. A
//! new key is printed once and stored only as its SHA-256; afterwards keys are
//! named by their public `key_…` id.

use std::collections::BTreeSet;

use adapters::DynamoKeyStore;
use chrono::{Duration, Utc};
use clap::{ArgGroup, Subcommand};
use serde_json::json;
use shared::auth::{IssuedKey, issue};
use shared::domain::{ApiKeyRecord, Scope};

use crate::{Aws, Failure, output, resource};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a key for one ERP client or for warehouses; prints it once.
    #[command(group(ArgGroup::new("scope").required(true).args(["client", "warehouse"])))]
    Create {
        /// An ERP key for this client_code.
        #[arg(long)]
        client: Option<String>,
        /// A warehouse key for these centre codes (comma-separated).
        #[arg(long, value_delimiter = ',')]
        warehouse: Vec<String>,
        /// Requests must also be signed (a signing secret is printed once).
        #[arg(long)]
        sign: bool,
        /// Order-number prefixes the client key may create orders under
        /// (repeatable, or comma-separated; --client keys only).
        #[arg(long, value_delimiter = ',', requires = "client", value_parser = prefix)]
        order_prefix: Vec<String>,
    },
    /// Replaces a key; the old one stays valid for the grace period.
    Rotate {
        /// The key's public id (key_…).
        key_id: String,
        /// How long the old key stays valid, in hours (0 to 8784, a leap year).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(0..=MAX_GRACE_HOURS))]
        grace_hours: i64,
    },
    /// Revokes a key at once.
    Revoke {
        /// The key's public id (key_…).
        key_id: String,
    },
    /// Lists keys (never the keys themselves).
    List,
}

/// The longest grace period a rotation gives the old key: a year. A longer
/// one is a typo, and one past what a clock holds would fail after the new
/// key was stored.
const MAX_GRACE_HOURS: i64 = 366 * 24;

fn prefix(value: &str) -> Result<String, String> {
    let value = value.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if value.is_empty() || !value.chars().all(allowed) {
        return Err(format!(
            "order prefix {value:?}: use letters, digits, '-' and '_' (as order numbers do)"
        ));
    }
    Ok(value.to_owned())
}

pub async fn run(aws: &Aws, command: KeysCommand, json: bool) -> Result<u8, Failure> {
    let store = DynamoKeyStore::new(aws.dynamodb.clone(), resource("API_KEYS_TABLE")?);
    match command {
        KeysCommand::Create {
            client,
            warehouse,
            sign,
            order_prefix,
        } => {
            let scope = match client {
                Some(client) => Scope::Client(client),
                None => Scope::Warehouse(
                    warehouse
                        .iter()
                        .map(|c| c.trim().to_owned())
                        .collect::<BTreeSet<_>>(),
                ),
            };
            let mut issued = issue(scope, sign, Utc::now())?;
            issued.record.order_prefixes = order_prefix;
            store.put(&issued.record).await?;
            print_new(&issued, json);
        }
        KeysCommand::Rotate {
            key_id,
            grace_hours,
        } => {
            let old = find(&store, &key_id).await?;
            // Known before anything is stored.
            let expires = Utc::now() + Duration::hours(grace_hours);
            let mut issued = issue(old.scope.clone(), old.signing_secret.is_some(), Utc::now())?;
            issued.record.order_prefixes.clone_from(&old.order_prefixes);
            store.put(&issued.record).await?;
            store.retire(&old.key_hash, Some(expires), None).await?;
            print_new(&issued, json);
            if !json {
                println!("{} stays valid until {expires}", old.key_id);
            }
        }
        KeysCommand::Revoke { key_id } => {
            let old = find(&store, &key_id).await?;
            store.retire(&old.key_hash, None, Some(Utc::now())).await?;
            if json {
                output::json(&json!({ "revoked": old.key_id }));
            } else {
                println!("{} revoked", old.key_id);
            }
        }
        KeysCommand::List => {
            let now = Utc::now();
            let keys = store.list().await?;
            if json {
                let rows: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|key| {
                        json!({
                            "key_id": key.key_id, "scope": format!("{:?}", key.scope),
                            "active": key.active(now), "signed": key.signing_secret.is_some(),
                            "order_prefixes": key.order_prefixes,
                            "expires_at": key.expires_at.map(|at| at.to_rfc3339()),
                        })
                    })
                    .collect();
                output::json(&json!({ "keys": rows }));
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|key| {
                        vec![
                            key.key_id.clone(),
                            format!("{:?}", key.scope),
                            if key.active(now) {
                                "active"
                            } else {
                                "inactive"
                            }
                            .into(),
                            key.signing_secret.is_some().to_string(),
                            key.order_prefixes.join(","),
                            key.expires_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "KEY_ID",
                        "SCOPE",
                        "STATE",
                        "SIGNED",
                        "ORDER_PREFIXES",
                        "EXPIRES",
                    ],
                    &rows,
                );
            }
        }
    }
    Ok(0)
}

async fn find(store: &DynamoKeyStore, key_id: &str) -> Result<ApiKeyRecord, Failure> {
    store
        .list()
        .await?
        .into_iter()
        .find(|key| key.key_id == key_id)
        .ok_or_else(|| format!("no key {key_id}").into())
}

fn print_new(issued: &IssuedKey, json: bool) {
    if json {
        output::json(&json!({
            "key_id": issued.record.key_id,
            "api_key": issued.key,
            "signing_secret": issued.record.signing_secret,
        }));
        return;
    }
    println!("key id:  {}", issued.record.key_id);
    println!("API key: {}   (shown once; store it now)", issued.key);
    if let Some(secret) = &issued.record.signing_secret {
        println!("signing secret: {secret}   (shown once)");
    }
}
