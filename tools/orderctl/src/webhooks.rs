//! `orderctl webhooks list|show|create|disable|enable|rotate-secret|delete|replay`:
//! an ERP's webhook endpoints, through the API's own use cases
//! (`Subscriptions`, `Replay`) over `WEBHOOKS_TABLE` and
//! `WEBHOOK_DELIVERY_QUEUE_URL`. An endpoint is named by its id; its client
//! is found from the id unless `--client` says it (a scan of the table).

use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use shared::notify::{Issued, Replay, Subscriptions, WebhookError};
use shared::ports::EndpointStore;
use shared::record::format_time;
use shared::webhook::{Delivery, DeliveryStatus, Endpoint, EndpointId, EventType, EventTypes};

use crate::{Aws, Failure, PARTIAL, output, resource};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Lists a client's endpoints (never their secrets).
    List {
        /// The ERP client's client_code.
        #[arg(long)]
        client: String,
    },
    /// One endpoint: its status, health and recent attempts (status, latency, answer).
    Show(Named),
    /// Registers an endpoint for a client; prints its secret once.
    Create {
        /// The ERP client's client_code.
        #[arg(long)]
        client: String,
        /// Where events are posted (https; plain http and loopback only with
        /// WEBHOOKS_LOCAL_NETWORK=1, as `make run` sets).
        #[arg(long)]
        url: String,
        /// An event type it wants (repeatable, or comma-separated; none: every type).
        #[arg(long = "type", value_delimiter = ',', value_parser = event_type)]
        types: Vec<String>,
    },
    /// Stops deliveries to an endpoint (they wait as failed for a replay).
    Disable(Named),
    /// Delivers to an endpoint again, its health reset; `replay` sends what it missed.
    Enable(Named),
    /// A new secret, printed once; the old one signs beside it for 24 hours.
    RotateSecret(Named),
    /// Removes an endpoint.
    Delete(Named),
    /// Sends an endpoint the events since a time it has no delivery for or
    /// whose delivery failed (a fresh schedule); delivered ones are not sent again.
    Replay {
        #[command(flatten)]
        named: Named,
        /// RFC 3339, e.g. 2026-12-01T00:00:00Z (the event log keeps 7 days).
        #[arg(long, value_parser = rfc3339)]
        since: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Named {
    /// The endpoint's id (ep_…).
    id: String,
    /// Its client's client_code (found from the id when left out).
    #[arg(long)]
    client: Option<String>,
}

fn event_type(value: &str) -> Result<String, String> {
    EventType::parse(value.trim())
        .map(|kind| kind.as_str().to_owned())
        .ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
            format!("unknown event type {value:?}; one of {}", known.join(", "))
        })
}

fn rfc3339(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|err| format!("{value:?} is not an RFC 3339 time ({err})"))
}

pub async fn run(aws: &Aws, command: WebhooksCommand, json: bool) -> Result<u8, Failure> {
    let Err(err) = execute(aws, command, json).await else {
        return Ok(0);
    };
    match err.downcast::<WebhookError>().map(|err| *err) {
        Ok(WebhookError::NotFound(id)) => {
            eprintln!("orderctl: no webhook endpoint {id}");
            Ok(PARTIAL)
        }
        Ok(WebhookError::Invalid(problems)) => {
            for problem in problems {
                eprintln!("orderctl: {}: {}", problem.field, problem.message);
            }
            Ok(USAGE)
        }
        Ok(other) => Err(other.into()),
        Err(other) => Err(other),
    }
}

async fn execute(aws: &Aws, command: WebhooksCommand, json: bool) -> Result<(), Failure> {
    let reach = adapters::settings::Env::process().webhook_reach();
    let store = DynamoWebhooks::new(aws.dynamodb.clone(), resource("WEBHOOKS_TABLE")?, reach);
    let subscriptions = Subscriptions::new(store.clone(), store.clone(), reach);
    let now = Utc::now();
    let answered: Result<(), WebhookError> = match command {
        WebhooksCommand::List { client } => {
            let endpoints = subscriptions.list(&client).await?;
            if json {
                let shown: Vec<Value> = endpoints.iter().map(endpoint_json).collect();
                output::json(&json!({ "client": client, "endpoints": shown }));
            } else {
                let rows: Vec<Vec<String>> = endpoints
                    .iter()
                    .map(|endpoint| {
                        vec![
                            endpoint.id.as_str().to_owned(),
                            state(endpoint),
                            types(&endpoint.event_types).join(","),
                            endpoint.url.as_str().to_owned(),
                        ]
                    })
                    .collect();
                output::table(&["ID", "STATE", "TYPES", "URL"], &rows);
            }
            Ok(())
        }
        WebhooksCommand::Show(named) => {
            let client = owner(&store, &named).await?;
            subscriptions
                .get(&client, &named.id)
                .await
                .map(|(endpoint, recent)| show(&endpoint, &recent, json))
        }
        WebhooksCommand::Create { client, url, types } => {
            let mut body = json!({ "url": url });
            if !types.is_empty() {
                body["event_types"] = json!(types);
            }
            subscriptions
                .create(&client, body.to_string().as_bytes(), now)
                .await
                .map(|issued| print_issued(&issued, json))
        }
        WebhooksCommand::Disable(named) => {
            switch(&store, &subscriptions, &named, false, json).await
        }
        WebhooksCommand::Enable(named) => switch(&store, &subscriptions, &named, true, json).await,
        WebhooksCommand::RotateSecret(named) => {
            let client = owner(&store, &named).await?;
            subscriptions
                .rotate(&client, &named.id, now)
                .await
                .map(|issued| {
                    print_issued(&issued, json);
                    if !json {
                        println!("the old secret signs beside it for 24 hours");
                    }
                })
        }
        WebhooksCommand::Delete(named) => {
            let client = owner(&store, &named).await?;
            subscriptions.delete(&client, &named.id).await.map(|()| {
                if json {
                    output::json(&json!({ "deleted": named.id }));
                } else {
                    println!("{} deleted", named.id);
                }
            })
        }
        WebhooksCommand::Replay { named, since } => {
            let client = owner(&store, &named).await?;
            let disabled = match EndpointId::parse(&named.id) {
                Some(id) => store.get(&client, &id).await?.is_some_and(|e| !e.enabled),
                None => false,
            };
            if disabled {
                eprintln!(
                    "orderctl: {} is disabled: the dispatcher gives up what this queues; \
                     `orderctl webhooks enable {}` first, then replay",
                    named.id, named.id
                );
            }
            let queue =
                SqsDeliveryQueue::new(aws.sqs.clone(), resource("WEBHOOK_DELIVERY_QUEUE_URL")?);
            let replay = Replay::new(store.clone(), store.clone(), store.clone(), queue);
            replay.replay(&client, &named.id, since, now).await.map(|replayed| {
                if json {
                    output::json(&json!({
                        "id": named.id, "since": format_time(since), "queued": replayed.queued,
                        "reopened": replayed.reopened, "already_delivered_or_due": replayed.already,
                    }));
                } else {
                    println!(
                        "{} event(s) queued ({} failed one(s) re-opened); {} delivered or on their way",
                        replayed.queued, replayed.reopened, replayed.already
                    );
                }
            })
        }
    };
    Ok(answered?)
}

/// Exit code 2: bad usage, as clap's own (here: a URL or type the rules refuse).
const USAGE: u8 = 2;

/// The endpoint's client: given, or found from its id.
async fn owner(store: &DynamoWebhooks, named: &Named) -> Result<String, WebhookError> {
    if let Some(client) = &named.client {
        return Ok(client.clone());
    }
    let not_found = || WebhookError::NotFound(named.id.clone());
    let id = EndpointId::parse(&named.id).ok_or_else(not_found)?;
    store.owner_of(&id).await?.ok_or_else(not_found)
}

async fn switch(
    store: &DynamoWebhooks,
    subscriptions: &Subscriptions<DynamoWebhooks, DynamoWebhooks>,
    named: &Named,
    enabled: bool,
    json: bool,
) -> Result<(), WebhookError> {
    let client = owner(store, named).await?;
    let body = json!({ "enabled": enabled }).to_string();
    let endpoint = subscriptions
        .change(&client, &named.id, body.as_bytes(), Utc::now())
        .await?;
    if json {
        output::json(&endpoint_json(&endpoint));
    } else {
        println!("{} {}", endpoint.id.as_str(), state(&endpoint));
        if enabled {
            println!(
                "send what it missed: orderctl webhooks replay {} --since <time>",
                endpoint.id.as_str()
            );
        }
    }
    Ok(())
}

fn types(event_types: &EventTypes) -> Vec<&'static str> {
    match event_types {
        EventTypes::All => vec!["*"],
        EventTypes::Only(kinds) => kinds.iter().map(|kind| kind.as_str()).collect(),
    }
}

fn state(endpoint: &Endpoint) -> String {
    match (&endpoint.enabled, &endpoint.disabled_reason) {
        (true, _) if endpoint.health.failing_since.is_some() => "failing".into(),
        (true, _) => "enabled".into(),
        (false, Some(reason)) => format!("disabled: {reason}"),
        (false, None) => "disabled".into(),
    }
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    let health = &endpoint.health;
    json!({
        "id": endpoint.id.as_str(),
        "client": endpoint.client_code,
        "url": endpoint.url.as_str(),
        "event_types": types(&endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "health": {
            "failing_since": health.failing_since.map(format_time),
            "consecutive_failures": health.consecutive_failures,
            "blocked_until": health.blocked_until.map(format_time),
            "last_success_at": health.last_success_at.map(format_time),
        },
        "rotation_overlap_until": endpoint.previous_secret.as_ref().map(|(_, until)| format_time(*until)),
        "created_at": format_time(endpoint.created_at),
        "updated_at": format_time(endpoint.updated_at),
    })
}

fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "event_id": delivery.event_id,
        "type": delivery.kind.as_str(),
        "order_number": delivery.order_number,
        "sequence": delivery.sequence,
        "status": status_name(delivery.status),
        "attempts": delivery.posts,
        "next_attempt_at": delivery.next_attempt_at.map(format_time),
        "last_attempt": delivery.last_attempt.as_ref().map(|attempt| json!({
            "at": format_time(attempt.at),
            "http_status": attempt.http_status,
            "latency_ms": attempt.latency_ms,
            "answer": attempt.excerpt,
        })),
    })
}

fn show(endpoint: &Endpoint, recent: &[Delivery], json: bool) {
    if json {
        let mut shown = endpoint_json(endpoint);
        shown["recent_deliveries"] = recent.iter().map(delivery_json).collect();
        output::json(&shown);
        return;
    }
    let health = &endpoint.health;
    let time = |at: Option<DateTime<Utc>>| at.map_or_else(|| "-".to_owned(), format_time);
    println!(
        "endpoint:  {} (client {})",
        endpoint.id.as_str(),
        endpoint.client_code
    );
    println!("url:       {}", endpoint.url.as_str());
    println!("types:     {}", types(&endpoint.event_types).join(","));
    println!("status:    {}", state(endpoint));
    println!(
        "health:    {} consecutive failure(s), failing since {}, held until {}, last success {}",
        health.consecutive_failures,
        time(health.failing_since),
        time(health.blocked_until),
        time(health.last_success_at)
    );
    println!("recent attempts (newest first):");
    let rows: Vec<Vec<String>> = recent
        .iter()
        .map(|delivery| {
            let last = delivery.last_attempt.as_ref();
            vec![
                delivery.kind.as_str().to_owned(),
                delivery.order_number.clone(),
                status_name(delivery.status).to_owned(),
                delivery.posts.to_string(),
                last.map_or_else(|| "-".into(), |a| format_time(a.at)),
                last.and_then(|a| a.http_status)
                    .map_or_else(|| "-".into(), |status| status.to_string()),
                last.map_or_else(|| "-".into(), |a| format!("{} ms", a.latency_ms)),
                last.map_or_else(String::new, |a| excerpt(&a.excerpt)),
            ]
        })
        .collect();
    output::table(
        &[
            "TYPE", "ORDER", "STATUS", "POSTS", "LAST_AT", "HTTP", "LATENCY", "ANSWER",
        ],
        &rows,
    );
}

/// An answer on one line of a table (the JSON has it whole).
fn excerpt(answer: &str) -> String {
    let line: String = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(59).collect::<String>())
    } else {
        line
    }
}

fn print_issued(issued: &Issued, json: bool) {
    if json {
        let mut shown = endpoint_json(&issued.endpoint);
        shown["secret"] = json!(issued.secret);
        output::json(&shown);
        return;
    }
    println!("endpoint id: {}", issued.endpoint.id.as_str());
    println!(
        "secret:      {}   (shown once; give it to the ERP now)",
        issued.secret
    );
}
