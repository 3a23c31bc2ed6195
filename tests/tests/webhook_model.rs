//! The webhook delivery protocol's model test
//! (`integration_tests::webhook_model`) over the in-memory delivery store.

use integration_tests::webhook_model::{ops, replies, run};
use proptest::prelude::*;
use shared::webhook::memory::MemoryDeliveries;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_interleaving_keeps_the_webhook_delivery_protocol(ops in ops(), replies in replies()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(run(&MemoryDeliveries::default(), "model", &ops, &replies));
    }
}
