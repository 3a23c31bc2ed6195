//! Provisioning over what an earlier `make run` left in DynamoDB Local's
//! data directory: a table whose stream has another view type than the
//! template's gets the template's (the orders stream gained old images for
//! the webhook fan-out).
//!
//! Run through `infra/local/emulators.sh exec -- cargo nextest run -p local-stack --test provision`.

use local_stack::provision::provision;
use local_stack::template::Template;

fn template(view_type: &str) -> Template {
    Template::parse(&format!(
        r"
Resources:
  OrdersTable:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{{AttributeName: order_number, AttributeType: S}}]
      KeySchema: [{{AttributeName: order_number, KeyType: HASH}}]
      StreamSpecification: {{StreamViewType: {view_type}}}
"
    ))
    .expect("a template")
}

#[tokio::test]
async fn a_table_streamed_with_another_view_type_gets_the_templates() {
    let aws = adapters::https::aws_config()
        .await
        .expect("the AWS configuration");
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let prefix = format!("restream-{}", std::process::id());
    let before = provision(&template("NEW_IMAGE"), &dynamodb, &sqs, &prefix)
        .await
        .expect("the emulators (run through emulators.sh exec)");

    let after = provision(&template("NEW_AND_OLD_IMAGES"), &dynamodb, &sqs, &prefix)
        .await
        .expect("provisioned again");

    let described = dynamodb
        .describe_table()
        .table_name(after.table("OrdersTable").expect("provisioned"))
        .send()
        .await
        .expect("the table");
    let table = described.table().expect("a description");
    let stream = table.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type().map(|view| view.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    assert_ne!(
        after.stream_arn("OrdersTable").expect("a stream"),
        before.stream_arn("OrdersTable").expect("a stream"),
        "a new stream"
    );
    assert_eq!(
        table.latest_stream_arn(),
        Some(after.stream_arn("OrdersTable").expect("a stream"))
    );
}
