//! `orderctl dlq stats|redrive`. A redrive receives each message from the
//! dead-letter queue, sends it to the callback queue with its attributes
//! (`dead_lettered_by` tells the dispatcher it is a redrive: a fresh schedule
//! for its generation) and only then deletes it: a crash in between leaves a
//! duplicate, which the claim drops, never a lost message.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use clap::Subcommand;
use serde_json::json;

use crate::{Aws, Failure, output, resource};

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Messages waiting in the callback queue and its dead-letter queue.
    Stats,
    /// Moves every dead-lettered callback message back to the callback queue.
    Redrive {
        /// At most this many messages (default: all).
        #[arg(long)]
        max: Option<u64>,
    },
}

async fn depth(aws: &Aws, url: &str) -> Result<(u64, u64), Failure> {
    let output = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let get = |name: QueueAttributeName| {
        output
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

pub async fn run(aws: &Aws, command: DlqCommand, json: bool) -> Result<u8, Failure> {
    let queue = resource("CALLBACK_QUEUE_URL")?;
    let dlq = resource("CALLBACK_DEAD_LETTER_QUEUE_URL")?;
    match command {
        DlqCommand::Stats => {
            let (queued, in_flight) = depth(aws, &queue).await?;
            let (dead, dead_in_flight) = depth(aws, &dlq).await?;
            if json {
                output::json(&json!({
                    "queue": {"visible": queued, "in_flight": in_flight},
                    "dead_letter_queue": {"visible": dead, "in_flight": dead_in_flight},
                }));
            } else {
                output::table(
                    &["QUEUE", "VISIBLE", "IN_FLIGHT"],
                    &[
                        vec!["callback".into(), queued.to_string(), in_flight.to_string()],
                        vec![
                            "dead-letter".into(),
                            dead.to_string(),
                            dead_in_flight.to_string(),
                        ],
                    ],
                );
            }
            Ok(0)
        }
        DlqCommand::Redrive { max } => {
            let (dead, _) = depth(aws, &dlq).await?;
            let total = max.map_or(dead, |max| max.min(dead));
            let bar = output::progress(total, "redriving");
            let mut moved = 0u64;
            while max.is_none_or(|max| moved < max) {
                let received = aws
                    .sqs
                    .receive_message()
                    .queue_url(&dlq)
                    .max_number_of_messages(10)
                    .message_attribute_names("All")
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .visibility_timeout(60)
                    .wait_time_seconds(1)
                    .send()
                    .await?;
                let messages = received.messages();
                if messages.is_empty() {
                    break;
                }
                for message in messages {
                    let (Some(body), Some(receipt)) = (message.body(), message.receipt_handle())
                    else {
                        continue;
                    };
                    aws.sqs
                        .send_message()
                        .queue_url(&queue)
                        .message_body(body)
                        .set_message_attributes(message.message_attributes().cloned())
                        .send()
                        .await?;
                    aws.sqs
                        .delete_message()
                        .queue_url(&dlq)
                        .receipt_handle(receipt)
                        .send()
                        .await?;
                    moved += 1;
                    bar.inc(1);
                }
            }
            bar.finish_and_clear();
            if json {
                output::json(&json!({ "redriven": moved }));
            } else {
                println!("redriven {moved}");
            }
            Ok(0)
        }
    }
}
