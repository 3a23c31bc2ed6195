//! The webhook delivery store's contract
//! (`integration_tests::delivery_contract`) on the in-memory store and on the
//! DynamoDB adapter as deployed (DynamoDB Local).

use integration_tests::delivery_contract::assert_contract;
use shared::memory::webhooks::MemoryDeliveries;

#[tokio::test]
async fn the_in_memory_delivery_store_keeps_the_contract() {
    assert_contract(&MemoryDeliveries::default(), "contract").await;
}

#[tokio::test]
async fn the_dynamodb_delivery_store_keeps_the_contract() {
    let store = integration_tests::webhooks::dynamo_webhooks().await;
    assert_contract(&store, "contract").await;
}
