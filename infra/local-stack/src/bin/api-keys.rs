//! `api-keys`: creates, rotates, revokes and lists API keys in the table named
//! by `API_KEYS_TABLE` (the stack output `ApiKeysTableName`), with the AWS
//! credentials of the environment. A new key is printed once and stored only
//! as its SHA-256; afterwards keys are named by their public `key_…` id.
//!
//! ```text
//! api-keys create --client 20 [--sign] [--order-prefix mabang- ...]
//! api-keys create --warehouse mabang,lax [--sign]
//! api-keys rotate key_0123456789abcdef [--grace-hours 24]
//! api-keys revoke key_0123456789abcdef
//! api-keys list
//! ```

use std::collections::BTreeSet;
use std::process::ExitCode;

use chrono::{Duration, Utc};
use shared::adapters::DynamoKeyStore;
use shared::auth::{ApiKeyRecord, IssuedKey, Scope, issue};
use shared::config::required_env;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("api-keys: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), Failure> {
    let aws = shared::adapters::https::aws_config().await?;
    let store = DynamoKeyStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        required_env("API_KEYS_TABLE")?,
    );
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("create") => {
            let scope = match (value("--client"), value("--warehouse")) {
                (Some(client), None) => Scope::Client(client),
                (None, Some(centres)) => Scope::Warehouse(
                    centres
                        .split(',')
                        .map(|c| c.trim().to_owned())
                        .collect::<BTreeSet<_>>(),
                ),
                _ => {
                    return Err(
                        "create needs exactly one of --client CODE or --warehouse A,B".into(),
                    );
                }
            };
            let prefixes = order_prefixes(args)?;
            if !prefixes.is_empty() && !matches!(scope, Scope::Client(_)) {
                return Err("--order-prefix applies to --client keys only".into());
            }
            let mut issued = issue(scope, flag("--sign"), Utc::now())?;
            issued.record.order_prefixes = prefixes;
            store.put(&issued.record).await?;
            print_new(&issued);
        }
        Some("rotate") => {
            let old = find(&store, args.get(1)).await?;
            let grace: i64 = value("--grace-hours").map_or(Ok(24), |h| h.parse())?;
            let mut issued = issue(old.scope.clone(), old.signing_secret.is_some(), Utc::now())?;
            issued.record.order_prefixes.clone_from(&old.order_prefixes);
            store.put(&issued.record).await?;
            let expires = Utc::now() + Duration::hours(grace);
            store.retire(&old.key_hash, Some(expires), None).await?;
            print_new(&issued);
            println!("{} stays valid until {expires}", old.key_id);
        }
        Some("revoke") => {
            let old = find(&store, args.get(1)).await?;
            store.retire(&old.key_hash, None, Some(Utc::now())).await?;
            println!("{} revoked", old.key_id);
        }
        Some("list") => {
            for key in store.list().await? {
                let state = if key.active(Utc::now()) {
                    "active"
                } else {
                    "inactive"
                };
                println!(
                    "{}  {:?}  {state}  signed={}  order_prefixes={:?}  expires={:?}",
                    key.key_id,
                    key.scope,
                    key.signing_secret.is_some(),
                    key.order_prefixes,
                    key.expires_at
                );
            }
        }
        _ => return Err("usage: api-keys create|rotate|revoke|list (see the README)".into()),
    }
    Ok(())
}

/// Every `--order-prefix P` (repeatable, or comma-separated): the order-number
/// prefixes a client key may create orders under.
fn order_prefixes(args: &[String]) -> Result<Vec<String>, Failure> {
    let mut prefixes = Vec::new();
    for pair in args.windows(2).filter(|pair| pair[0] == "--order-prefix") {
        for prefix in pair[1].split(',').map(str::trim) {
            let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if prefix.is_empty() || !prefix.chars().all(allowed) {
                return Err(format!(
                    "order prefix {prefix:?}: use letters, digits, '-' and '_' (as order numbers do)"
                )
                .into());
            }
            prefixes.push(prefix.to_owned());
        }
    }
    if args.last().is_some_and(|last| last == "--order-prefix") {
        return Err("--order-prefix needs a value".into());
    }
    Ok(prefixes)
}

async fn find(store: &DynamoKeyStore, key_id: Option<&String>) -> Result<ApiKeyRecord, Failure> {
    let key_id = key_id.ok_or("name the key by its key_… id")?;
    store
        .list()
        .await?
        .into_iter()
        .find(|key| &key.key_id == key_id)
        .ok_or_else(|| format!("no key {key_id}").into())
}

fn print_new(issued: &IssuedKey) {
    println!("key id:  {}", issued.record.key_id);
    println!("API key: {}   (shown once; store it now)", issued.key);
    if let Some(secret) = &issued.record.signing_secret {
        println!("signing secret: {secret}   (shown once)");
    }
}
