//! The callback protocol's model test (`integration_tests::protocol_model`):
//! thousands of generated interleavings over the in-memory store, and a few
//! dozen over the DynamoDB adapter on DynamoDB Local, where the claim and
//! settle conditions production runs decide.

use integration_tests::protocol_model::{
    check_a_slow_token_posts_nothing, check_interleavings, runtime,
};
use shared::memory::MemoryStore;

#[test]
fn every_interleaving_keeps_the_callback_protocol() {
    check_interleavings(&runtime(), MemoryStore::default, 2_000, 80);
}

/// Bounded to fit `make test`: each step is a few round trips to DynamoDB Local.
#[test]
fn every_interleaving_keeps_the_callback_protocol_on_dynamodb() {
    let runtime = runtime();
    let stack = runtime.block_on(integration_tests::provision_stack());
    let store = stack.store().expect("the orders table");
    check_interleavings(&runtime, || store.clone(), 24, 40);
}

#[tokio::test]
async fn a_token_that_takes_most_of_the_lease_posts_nothing_and_costs_no_post() {
    check_a_slow_token_posts_nothing(MemoryStore::default()).await;
}
