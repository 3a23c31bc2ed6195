//! `orderctl order show ORDER`: the order, its event timeline, the attempt
//! ledger with the partner's answers, and where its callback message is.
//! `orderctl order erase ORDER`: its personal data redacted now, label
//! included (a data subject's request that reached the operator).

use adapters::{DynamoOrderStore, S3LabelStore};
use clap::Subcommand;
use serde_json::json;
use shared::domain::OrderNumber;
use shared::lifecycle::LifecycleError;
use shared::lifecycle::personal_data::{self, Erased};
use shared::ports::{Access, OrderStore};
use shared::record::callback::CallbackStatus;
use shared::view::OrderView;

use crate::{Aws, Failure, PARTIAL, output, resource};

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Shows one order (exit code 3 when there is no such order).
    Show {
        /// The order number.
        order: String,
    },
    /// Redacts one order's personal data now and deletes its label (exit
    /// code 3 when there is no such order or the warehouse still needs it).
    Erase {
        /// The order number.
        order: String,
    },
}

/// Where the order's state says its callback message is: the protocol keeps
/// them in step (a due callback has its message in the queue, a dead-lettered
/// one in the DLQ; the dispatcher moves it there itself).
fn message_place(status: CallbackStatus) -> &'static str {
    match status {
        CallbackStatus::Pending | CallbackStatus::Retrying => "queue",
        CallbackStatus::DeadLettered => "dlq",
        _ => "none",
    }
}

pub async fn run(aws: &Aws, command: OrderCommand, json: bool) -> Result<u8, Failure> {
    let store = DynamoOrderStore::new(
        aws.dynamodb.clone(),
        resource("ORDERS_TABLE")?,
        resource("ORDER_HISTORY_TABLE")?,
    );
    let order = match command {
        OrderCommand::Show { order } => order,
        OrderCommand::Erase { order } => return erase(aws, &store, &order, json).await,
    };
    let record = match OrderNumber::parse(&order) {
        Ok(number) => store.get(&number, Access::Service).await?.into_found(),
        Err(_) => None,
    };
    let Some(record) = record else {
        eprintln!("orderctl: no order {order}");
        return Ok(PARTIAL);
    };
    let place = message_place(record.callback.status);
    let view = OrderView::from(&record);
    if json {
        output::json(&json!({
            "order": view,
            "callback_message": place,
            "callback_generation": record.callback.generation,
        }));
        return Ok(0);
    }
    output::table(
        &["FIELD", "VALUE"],
        &[
            vec!["order_number".into(), view.order_number.clone()],
            vec!["client_code".into(), view.client_code.clone()],
            vec!["platform".into(), view.platform_type.clone()],
            vec!["status".into(), view.status.clone()],
            vec!["created_at".into(), view.created_at.clone()],
            vec!["updated_at".into(), view.updated_at.clone()],
            vec![
                "tracking_number".into(),
                view.tracking_number.clone().unwrap_or_default(),
            ],
            vec!["callback".into(), view.callback.status.to_owned()],
            vec![
                "callback reason".into(),
                view.callback.reason.clone().unwrap_or_default(),
            ],
            vec![
                "callback generation".into(),
                record.callback.generation.to_string(),
            ],
            vec!["callback message".into(), place.to_owned()],
            vec![
                "personal data".into(),
                view.personal_data_redacted_at
                    .as_ref()
                    .map_or_else(|| "held".to_owned(), |at| format!("redacted {at}")),
            ],
        ],
    );
    println!("\nEvents");
    let events: Vec<Vec<String>> = view
        .events
        .iter()
        .map(|event| {
            vec![
                event.occurred_at.to_rfc3339(),
                event.kind.clone(),
                event.event_id.clone(),
                event.received_at.to_rfc3339(),
                event.moved_status.to_string(),
            ]
        })
        .collect();
    output::table(
        &["OCCURRED_AT", "TYPE", "EVENT_ID", "RECEIVED_AT", "MOVED"],
        &events,
    );
    println!("\nCallback attempts");
    let attempts: Vec<Vec<String>> = view
        .callback
        .attempts
        .iter()
        .map(|attempt| {
            vec![
                attempt.at.to_rfc3339(),
                attempt
                    .http_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                attempt.outcome.to_string(),
                format!("{} ms", attempt.latency_ms),
            ]
        })
        .collect();
    output::table(&["AT", "HTTP", "OUTCOME", "LATENCY"], &attempts);
    if let Some(message) = &view.callback.partner_message {
        println!("\npartner said: {message}");
    }
    Ok(0)
}

/// `orderctl order erase ORDER`.
async fn erase(
    aws: &Aws,
    store: &DynamoOrderStore,
    order: &str,
    json: bool,
) -> Result<u8, Failure> {
    let labels = S3LabelStore::new(aws.s3.clone(), resource("LABELS_BUCKET")?);
    match personal_data::erase(store, &labels, Access::Service, order, chrono::Utc::now()).await {
        Ok((record, erased)) => {
            let said = match erased {
                Erased::Now => "personal data erased",
                Erased::Before => "personal data already erased",
            };
            if json {
                output::json(&json!({ "order": OrderView::from(&record), "message": said }));
            } else {
                println!("{order}: {said}");
            }
            Ok(0)
        }
        Err(err @ (LifecycleError::NotFound(_) | LifecycleError::StillInWarehouse(_))) => {
            eprintln!("orderctl: {order}: {err}");
            Ok(PARTIAL)
        }
        Err(err) => Err(err.into()),
    }
}
