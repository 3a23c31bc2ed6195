//! `orderctl index backfill`: gives orders stored before the polling indexes
//! existed their index keys (`feed_shard`, `updated_key`, `updated_at`,
//! `callback_shard`), so ERPs' change feeds and `callbacks list` see them,
//! and final orders stored before the personal-data index theirs (`final_at`,
//! their last change; `personal_data_shard`), so the scheduled redaction
//! finds them.
//! Every write is conditional on what the scan saw, so it never overwrites a
//! change made meanwhile (that change wrote the keys itself).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;
use shared::domain::{OrderNumber, OrderStatus};
use shared::lifecycle::personal_data::redaction_shard;
use shared::polling;
use shared::record::callback::CallbackStatus;
use shared::record::format_update_time;
use shared::record::personal_data::is_final;

use crate::{Aws, Failure, output, resource};

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Writes the polling index keys of orders that lack them (once, after
    /// deploying the indexes on a table that already holds orders).
    Backfill {
        /// Count what would be written, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

type Item = HashMap<String, AttributeValue>;

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

pub async fn run(aws: &Aws, command: IndexCommand, json: bool) -> Result<u8, Failure> {
    let IndexCommand::Backfill { dry_run } = command;
    let table = resource("ORDERS_TABLE")?;
    let estimate = aws
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await?
        .table()
        .and_then(|t| t.item_count())
        .unwrap_or(0);
    let bar = output::progress(u64::try_from(estimate).unwrap_or(0), "scanning");
    let (mut scanned, mut written, mut skipped) = (0u64, 0u64, 0u64);
    let mut start: Option<Item> = None;
    loop {
        let page = aws
            .dynamodb
            .scan()
            .table_name(&table)
            .projection_expression(
                "order_number, client_code, created_at, updated_at, updated_key, feed_shard, callback_status, callback_shard, #status, final_at, personal_data_shard, redacted_at",
            )
            .expression_attribute_names("#status", "status")
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        for item in page.items() {
            scanned += 1;
            bar.inc(1);
            let complete = ["feed_shard", "updated_key", "updated_at"]
                .iter()
                .all(|name| item.contains_key(*name));
            let (Some(number), Some(client), Some(status)) = (
                string(item, "order_number"),
                string(item, "client_code"),
                string(item, "callback_status"),
            ) else {
                continue;
            };
            let Ok(order_number) = OrderNumber::parse(&number) else {
                continue;
            };
            let Ok(callback) = status.parse::<CallbackStatus>() else {
                continue;
            };
            let callback_shard = polling::callback_shard(callback, &order_number);
            // A final order not yet redacted belongs in the personal-data index.
            let unlisted_final = string(item, "status")
                .and_then(|status| status.parse::<OrderStatus>().ok())
                .is_some_and(|status| is_final(status, callback))
                && !item.contains_key("redacted_at")
                && !(item.contains_key("final_at") && item.contains_key("personal_data_shard"));
            if complete && string(item, "callback_shard") == callback_shard && !unlisted_final {
                continue;
            }
            if dry_run {
                written += 1;
                continue;
            }
            let at: DateTime<Utc> = string(item, "updated_at")
                .or_else(|| string(item, "created_at"))
                .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
                .map_or_else(Utc::now, |at| at.with_timezone(&Utc));
            let mut expression = "SET feed_shard = :feed_shard, \
                 updated_at = if_not_exists(updated_at, :updated_at), \
                 updated_key = if_not_exists(updated_key, :updated_key)"
                .to_owned();
            let mut request = aws
                .dynamodb
                .update_item()
                .table_name(&table)
                .key("order_number", AttributeValue::S(number.clone()))
                .condition_expression("callback_status = :seen")
                .expression_attribute_values(":seen", AttributeValue::S(status.clone()))
                .expression_attribute_values(
                    ":feed_shard",
                    AttributeValue::S(polling::feed_shard(&client, &order_number)),
                )
                .expression_attribute_values(
                    ":updated_at",
                    AttributeValue::S(format_update_time(at)),
                )
                .expression_attribute_values(
                    ":updated_key",
                    AttributeValue::S(polling::updated_key(at, &order_number)),
                );
            if unlisted_final {
                expression.push_str(
                    ", final_at = if_not_exists(final_at, :final_at), personal_data_shard = :personal_data_shard",
                );
                let shard = redaction_shard(&order_number, Some(at), None).unwrap_or_default();
                request = request
                    .expression_attribute_values(
                        ":final_at",
                        AttributeValue::N(at.timestamp_millis().to_string()),
                    )
                    .expression_attribute_values(":personal_data_shard", AttributeValue::S(shard));
            }
            match &callback_shard {
                Some(shard) => {
                    expression.push_str(", callback_shard = :callback_shard");
                    request = request.expression_attribute_values(
                        ":callback_shard",
                        AttributeValue::S(shard.clone()),
                    );
                }
                None => expression.push_str(" REMOVE callback_shard"),
            }
            match request.update_expression(expression).send().await {
                Ok(_) => written += 1,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    // Changed meanwhile: that save wrote the keys.
                    skipped += 1;
                }
                Err(err) => return Err(Box::new(err)),
            }
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => break,
        }
    }
    bar.finish_and_clear();
    let verb = if dry_run { "would write" } else { "wrote" };
    if json {
        output::json(&json!({
            "dry_run": dry_run, "scanned": scanned, "written": written, "skipped": skipped,
        }));
    } else {
        println!("scanned {scanned}, {verb} {written}, skipped {skipped} (changed meanwhile)");
    }
    Ok(0)
}
