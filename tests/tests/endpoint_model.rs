//! The endpoint probe's model test (`integration_tests::endpoint_model`):
//! the real deliverer, several at once for one endpoint, over the in-memory
//! stores and the DynamoDB adapter.

use integration_tests::endpoint_model::{ops, run};
use proptest::prelude::*;
use shared::memory::webhooks::{MemoryDeliveries, MemoryEndpoints};

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_interleaving_keeps_one_probe_per_block_and_every_health_write(
        up in any::<bool>(),
        ops in ops(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(run(&MemoryEndpoints::default(), &MemoryDeliveries::default(), "1", up, &ops));
    }
}

/// The same histories on the DynamoDB adapter (DynamoDB Local), where the
/// endpoint's versioned save and the claim are the conditional writes
/// production runs; bounded to fit `make test`.
#[test]
fn every_interleaving_keeps_one_probe_per_block_and_every_health_write_on_dynamodb() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let store = runtime.block_on(integration_tests::webhooks::dynamo_webhooks());
    let mut runner = TestRunner::deterministic();
    for case in 0..30 {
        let up = any::<bool>()
            .new_tree(&mut runner)
            .expect("a start")
            .current();
        let ops = ops().new_tree(&mut runner).expect("a history").current();
        runtime.block_on(run(&store, &store, &format!("{case:x}"), up, &ops));
    }
}

/// A history the generated runs found once: two deliveries fail at the same
/// instant the first sets the block, the clock passes it, and a probe is
/// taken while the second's failure is still to be recorded.
#[test]
fn a_failure_recorded_after_the_probe_was_taken_does_not_let_a_second_probe_through() {
    use integration_tests::endpoint_model::Op::{Message, Step, Tick};
    let ops = [
        Message(0),
        Message(1),
        Step(1),
        Step(1),
        Step(2),
        Step(1),
        Step(1),
        Step(2),
        Message(0),
        Step(1),
        Step(2),
        Tick(16),
        Message(1),
        Step(2),
        Step(2),
        Step(2),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(run(
        &MemoryEndpoints::default(),
        &MemoryDeliveries::default(),
        "1",
        false,
        &ops,
    ));
}
