//! The webhook delivery protocol's model test
//! (`integration_tests::webhook_model`) over the in-memory delivery store.

use integration_tests::webhook_model::Op::{self, Message, Redeliver, Step};
use integration_tests::webhook_model::{ops, replies, run};
use proptest::prelude::*;
use shared::memory::webhooks::MemoryDeliveries;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_interleaving_keeps_the_webhook_delivery_protocol(ops in ops(), replies in replies()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(run(&MemoryDeliveries::default(), "model", &ops, &replies));
    }
}

/// The same histories on the DynamoDB adapter (DynamoDB Local), where the
/// claim and settle conditions production runs decide; bounded to fit
/// `make test` (each step is a round trip).
#[test]
fn every_interleaving_keeps_the_webhook_delivery_protocol_on_dynamodb() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let store = runtime.block_on(integration_tests::webhooks::dynamo_webhooks());
    let mut runner = TestRunner::deterministic();
    for case in 0..40 {
        let ops = ops().new_tree(&mut runner).expect("a history").current();
        let replies = replies().new_tree(&mut runner).expect("replies").current();
        runtime.block_on(run(&store, &format!("case{case}"), &ops, &replies));
    }
}

/// The race the lease exists for, spelled out (generated histories find it
/// too, but rarely within the few DynamoDB cases): a second holder of the
/// same delivery claims while the first still holds it, posts and settles;
/// the first must then not post.
const RACE: [Op; 7] = [
    Message(0),
    Step(0),
    Redeliver(0),
    Step(1),
    Step(1),
    Step(1),
    Step(0),
];

#[tokio::test]
async fn a_second_holder_is_kept_out_while_the_first_holds_the_lease() {
    run(&MemoryDeliveries::default(), "race", &RACE, &[]).await;
}

#[tokio::test]
async fn a_second_holder_is_kept_out_while_the_first_holds_the_lease_on_dynamodb() {
    let store = integration_tests::webhooks::dynamo_webhooks().await;
    run(&store, "race", &RACE, &[]).await;
}
