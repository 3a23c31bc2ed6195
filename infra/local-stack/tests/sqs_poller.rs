//! The local stand-in for an SQS event source mapping against the (moto)
//! queue: a poller told to stop takes nothing it does not hand over.
//!
//! Run through `infra/local/emulators.sh exec -- cargo nextest run -p local-stack --test sqs_poller`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use local_stack::sqs_poller::{PollerConfig, SqsFunction, run_until};

/// A queue of the test's own on the SQS emulator: (client, url, arn).
async fn queue(name: &str) -> (aws_sdk_sqs::Client, String, String) {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some(),
        "AWS_ENDPOINT_URL_SQS is not set: run through infra/local/emulators.sh exec -- …"
    );
    let aws = adapters::https::aws_config()
        .await
        .expect("the AWS configuration");
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let name = format!("{name}-{}", std::process::id());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("the queue emulator answers")
        .queue_url
        .expect("a queue url");
    let arn = format!("arn:aws:sqs:us-east-1:000000000000:{name}");
    (sqs, url, arn)
}

#[tokio::test]
async fn a_stopped_poller_leaves_what_is_queued_afterwards_for_the_next_consumer() {
    let (sqs, queue_url, queue_arn) = queue("poller-stop").await;
    let mut config = PollerConfig::new(&queue_url, queue_arn, "us-east-1");
    config.wait_time_seconds = 2;
    let handled = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handled);
    let function: SqsFunction = Arc::new(move |event: SqsEvent| {
        counted.fetch_add(event.records.len(), Ordering::SeqCst);
        Box::pin(async { SqsBatchResponse::default() })
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let poller = tokio::spawn(run_until(sqs.clone(), config, function, async move {
        let _ = stopped.await;
    }));

    // Told to stop while its long poll is out; it returns once that poll
    // has ended, so nothing queued afterwards is taken by it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(());
    poller.await.expect("the poller stops");
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body("queued after the stop")
        .send()
        .await
        .expect("the queue answers");

    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("the queue answers");
    let bodies: Vec<_> = received
        .messages()
        .iter()
        .filter_map(|message| message.body())
        .collect();
    assert_eq!(bodies, ["queued after the stop"]);
    assert_eq!(handled.load(Ordering::SeqCst), 0, "nothing was handed over");
}
