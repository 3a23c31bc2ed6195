//! The template's tables and queues on the emulators, under a prefix of
//! each test's own: what the tests of one local stand-in (the outbox pipe,
//! the stream mapping) share.

use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::SdkConfig;
use local_stack::provision::{Provisioned, provision};
use local_stack::template::Template;

pub struct Emulated {
    pub aws: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub resources: Provisioned,
}

/// Provisions the project template under `{name}-{pid}-{n}`.
pub async fn provisioned(name: &str) -> Emulated {
    for variable in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"] {
        assert!(
            std::env::var_os(variable).is_some(),
            "{variable} is not set: run through infra/local/emulators.sh exec -- …"
        );
    }
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let aws = adapters::https::aws_config()
        .await
        .expect("the AWS configuration");
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let resources = provision(
        &Template::project().expect("the template"),
        &dynamodb,
        &sqs,
        &prefix,
    )
    .await
    .expect("the emulator answers");
    Emulated {
        aws,
        dynamodb,
        sqs,
        resources,
    }
}
