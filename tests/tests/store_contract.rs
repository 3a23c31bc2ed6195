//! The store contract (`integration_tests::store_contract`): the same table of
//! claims and saves, with the same expected outcomes and stored states, on the
//! in-memory store the model tests use and on the DynamoDB adapter as
//! deployed (DynamoDB Local).

use integration_tests::store_contract::assert_contract;
use shared::memory::MemoryStore;

#[tokio::test]
async fn the_in_memory_store_keeps_the_store_contract() {
    assert_contract(&MemoryStore::default(), "contract").await;
}

#[tokio::test]
async fn the_dynamodb_store_keeps_the_store_contract() {
    let stack = integration_tests::provision_stack().await;
    let store = stack.store().expect("the orders table");
    assert_contract(&store, "contract").await;
}
