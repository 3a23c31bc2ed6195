//! The dispatcher's steps over the in-memory fakes, where the breaker meets
//! the claim and the token (the protocol model covers the interleavings).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::callback::breaker::{BreakerState, Gate};
use crate::memory::{MemoryBreakerStore, MemoryPartner, MemoryStore, shipped_order};
use crate::ports::{AccessToken, StaticToken, SystemClock, TokenError};
use crate::record::callback::CallbackStatus;

const WAREHOUSES: &str = r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#;

/// A breaker whose cool-down is over, with one probe slot.
async fn half_open() -> (Arc<MemoryBreakerStore>, BreakerPolicy) {
    let store = Arc::new(MemoryBreakerStore::default());
    let state = BreakerState {
        open_until: Some(Utc::now() - chrono::Duration::seconds(1)),
        cool_down: Duration::from_secs(30),
        ..BreakerState::default()
    };
    assert!(store.save(&state).await.expect("saved"));
    let policy = BreakerPolicy {
        probes: 1,
        ..BreakerPolicy::default()
    };
    (store, policy)
}

fn delivery(record: &OrderRecord) -> Delivery {
    Delivery {
        order_number: record.order.order_number.clone(),
        generation: record.callback.generation,
        message_id: "m-1".into(),
        receive_count: 1,
        receipt: "receipt-1".into(),
        redriven: false,
        sent_at: None,
        deadline: None,
    }
}

/// A dispatcher over the in-memory store and partner, on the system clock.
type TestDispatcher<T> = Dispatcher<Arc<MemoryStore>, MemoryPartner, SystemClock, T>;

fn dispatcher<T: TokenSource>(store: &Arc<MemoryStore>, tokens: T) -> TestDispatcher<T> {
    Dispatcher::new(
        Arc::clone(store),
        MemoryPartner::default(),
        tokens,
        SystemClock,
        Warehouses::from_json(WAREHOUSES).expect("warehouses"),
        RetryPolicy::default(),
    )
}

#[tokio::test]
async fn a_probe_whose_claim_is_refused_gives_its_slot_back_at_once() {
    let store = Arc::new(MemoryStore::default());
    let mut record = shipped_order("o-1");
    record.callback.status = CallbackStatus::Delivered;
    store.put(&mut record);
    let (breaker, policy) = half_open().await;
    let dispatcher = dispatcher(&store, StaticToken::new("t")).with_breaker(
        Arc::clone(&breaker),
        policy.clone(),
        |_| {},
    );

    let (action, outcome) = dispatcher.dispatch(&delivery(&record)).await.unwrap();

    assert_eq!(action, QueueAction::Delete);
    assert_eq!(
        outcome,
        DeliveryOutcome::Skipped("the callback is delivered".into())
    );
    let state = breaker.load().await.expect("the breaker");
    assert_eq!(state.probes, [], "the slot is free for another delivery");
    assert_eq!(state.gate("next", Utc::now(), &policy), Gate::Probe);
}

/// A token source that always fails with its error.
#[derive(Debug)]
struct FailingTokens(TokenError);

impl TokenSource for FailingTokens {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        Err(self.0.clone())
    }

    async fn refresh(&self, _: &AccessToken) -> Result<AccessToken, TokenError> {
        Err(self.0.clone())
    }
}

/// A half-open breaker's probe: order o-1's callback dispatched while
/// every token fails with `error`. What SQS is told, the outcome, and the
/// breaker.
async fn probe_without_a_token(
    error: TokenError,
) -> (QueueAction, DeliveryOutcome, Arc<MemoryBreakerStore>) {
    let store = Arc::new(MemoryStore::default());
    let mut record = shipped_order("o-1");
    store.put(&mut record);
    let (breaker, policy) = half_open().await;
    let dispatcher =
        dispatcher(&store, FailingTokens(error)).with_breaker(Arc::clone(&breaker), policy, |_| {});
    let (action, outcome) = dispatcher.dispatch(&delivery(&record)).await.unwrap();
    (action, outcome, breaker)
}

#[tokio::test]
async fn a_probe_without_a_token_posts_nothing_gives_its_slot_back_and_retries_for_credentials() {
    let (action, outcome, breaker) =
        probe_without_a_token(TokenError::Refresh("the token endpoint refused".into())).await;

    assert!(matches!(action, QueueAction::RetryIn(_)), "{action:?}");
    assert!(
        matches!(&outcome, DeliveryOutcome::Retrying { cause: RetryCause::Credentials, reason, .. }
            if reason.starts_with(CREDENTIALS_REJECTED)),
        "{outcome:?}"
    );
    let state = breaker.load().await.expect("the breaker");
    assert_eq!(state.probes, []);
    assert!(
        state.is_open(),
        "a probe that learnt nothing closes nothing"
    );
    assert_eq!(
        (state.failed_probes, state.cool_down),
        (0, Duration::from_secs(30)),
        "nor reopens it for longer"
    );
}

#[tokio::test]
async fn a_probe_whose_token_endpoint_does_not_answer_finds_the_partner_down() {
    let (action, outcome, breaker) =
        probe_without_a_token(TokenError::Unreachable("connection refused".into())).await;

    assert!(matches!(action, QueueAction::RetryIn(_)), "{action:?}");
    assert!(
        matches!(
            &outcome,
            DeliveryOutcome::Retrying {
                cause: RetryCause::Unavailable,
                ..
            }
        ),
        "{outcome:?}"
    );
    let state = breaker.load().await.expect("the breaker");
    assert!(state.is_open());
    assert_eq!(
        state.cool_down,
        Duration::from_secs(60),
        "a failed probe: open again, for longer"
    );
}

/// A shipped order whose dispatcher cannot read the partner's credentials
/// (Secrets Manager throttling every read).
fn credentials_out_of_reach() -> (Arc<MemoryStore>, OrderRecord, TestDispatcher<FailingTokens>) {
    let store = Arc::new(MemoryStore::default());
    let mut record = shipped_order("o-1");
    store.put(&mut record);
    let dispatcher = dispatcher(
        &store,
        FailingTokens(TokenError::Unavailable("ThrottlingException".into())),
    );
    (store, record, dispatcher)
}

#[tokio::test]
async fn credentials_out_of_reach_back_off_without_posting_or_spending_a_try() {
    let (store, record, dispatcher) = credentials_out_of_reach();

    let (action, outcome) = dispatcher.dispatch(&delivery(&record)).await.unwrap();

    assert!(matches!(action, QueueAction::RetryIn(_)), "{action:?}");
    assert!(
        matches!(
            &outcome,
            DeliveryOutcome::Retrying {
                cause: RetryCause::NotPosted,
                ..
            }
        ),
        "{outcome:?}"
    );
    let stored = store.stored(&record.order.order_number).expect("stored");
    assert_eq!(stored.callback.posts, 0, "the try is given back");
    assert_eq!(stored.callback.status, CallbackStatus::Retrying);
    assert_eq!(stored.callback.lease, None);
}

/// A credentials store that never comes back must not hold a callback for
/// ever (only the queue's `maxReceiveCount` would end it, with the order
/// still `retrying`): past the schedule's span the try is spent, so the
/// schedule runs out and the callback is dead-lettered with its reason.
#[tokio::test]
async fn credentials_out_of_reach_past_the_schedules_span_spend_the_try() {
    let (store, record, dispatcher) = credentials_out_of_reach();
    let span = chrono::Duration::from_std(RetryPolicy::default().span()).expect("a span");
    let long_due = Delivery {
        sent_at: Some(Utc::now() - span - chrono::Duration::hours(1)),
        ..delivery(&record)
    };

    let (action, _) = dispatcher.dispatch(&long_due).await.unwrap();

    assert!(matches!(action, QueueAction::RetryIn(_)), "{action:?}");
    let stored = store.stored(&record.order.order_number).expect("stored");
    assert_eq!(stored.callback.posts, 1, "the try is spent");
    assert!(
        stored
            .callback
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("out of reach")),
        "{:?}",
        stored.callback.reason
    );
}
