//! Redaction among everything else that happens to orders, under generated
//! interleavings: warehouse events, cancellations, callbacks settling and
//! being replayed, erasures, sweeps, time passing (days). After every step:
//! nothing in the warehouse's hands is redacted, a redaction is never undone
//! and keeps the request's hash, the store's `final_at` follows the order's
//! state, a sweep redacts exactly the final orders whose retention has
//! passed, and a redacted order has neither personal data nor a label.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::{Erased, erase, sweep};
use crate::auth::Principal;
use crate::domain::{OrderNumber, OrderStatus, Scope};
use crate::lifecycle::requests::Cancel;
use crate::lifecycle::{Lifecycle, LifecycleError, parse_event};
use crate::memory::{MemoryLabels, MemoryStore};
use crate::ports::{Access, Clock};
use crate::record::callback::CallbackStatus;
use crate::update::{Change, update_order};

const SAMPLE: &str = include_str!("../../../../tests/fixtures/spec-000-sample.json");
const ORDERS: usize = 3;
const RETENTION_DAYS: i64 = 30;

#[derive(Debug, Clone)]
enum Step {
    /// The warehouse reports the next step of an order's life.
    Event { order: usize, kind: usize },
    /// The ERP cancels.
    Cancel { order: usize },
    /// The dispatcher settles a due callback.
    Settle { order: usize, delivered: bool },
    /// The ERP replays the callback.
    Replay { order: usize },
    /// The ERP erases the order's personal data.
    Erase { order: usize },
    /// The hourly sweep runs.
    Sweep,
    /// Days pass.
    Advance { days: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..ORDERS, 0..4usize).prop_map(|(order, kind)| Step::Event { order, kind }),
        1 => (0..ORDERS).prop_map(|order| Step::Cancel { order }),
        3 => (0..ORDERS, any::<bool>()).prop_map(|(order, delivered)| Step::Settle { order, delivered }),
        1 => (0..ORDERS).prop_map(|order| Step::Replay { order }),
        2 => (0..ORDERS).prop_map(|order| Step::Erase { order }),
        3 => Just(Step::Sweep),
        3 => (1..20i64).prop_map(|days| Step::Advance { days }),
    ]
}

/// Real time moved on by the days the model let pass: the stores stamp
/// `final_at` with the real clock, as DynamoDB's does.
#[derive(Debug, Clone, Default)]
struct Later(Arc<Mutex<Duration>>);

impl Clock for Later {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.0.lock().unwrap()
    }
}

struct World {
    store: Arc<MemoryStore>,
    labels: Arc<MemoryLabels>,
    clock: Later,
    lifecycle: Lifecycle<Arc<MemoryStore>, Later>,
    numbers: Vec<OrderNumber>,
    /// Each order's hash as accepted.
    hashes: BTreeMap<String, String>,
}

fn erp() -> Principal {
    Principal {
        key_id: "erp".into(),
        scope: Scope::Client("20".into()),
        order_prefixes: Vec::new(),
        signed: None,
    }
}

fn wms() -> Principal {
    Principal {
        key_id: "wms".into(),
        scope: Scope::Warehouse(["mabang".to_owned()].into()),
        order_prefixes: Vec::new(),
        signed: None,
    }
}

impl World {
    async fn new() -> Self {
        let store: Arc<MemoryStore> = Arc::default();
        let labels: Arc<MemoryLabels> = Arc::default();
        let clock = Later::default();
        let warehouses = crate::config::Warehouses::from_json(
            r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
        )
        .unwrap();
        let intake =
            crate::intake::Intake::new(store.clone(), labels.clone(), warehouses, clock.clone());
        let mut numbers = Vec::new();
        let mut hashes = BTreeMap::new();
        for n in 0..ORDERS {
            let mut order: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
            order["package"]["order_number"] = format!("mabang-m{n}").into();
            order["logistics_provider"]["label_base64"] = "JVBERi0xLjcK".into();
            let body = serde_json::to_vec(&order).unwrap();
            let request = crate::intake::parse_order(&body).unwrap();
            let accepted = intake.accept(&erp(), request).await.unwrap();
            let crate::intake::Accepted::Created(record) = accepted else {
                panic!("created")
            };
            hashes.insert(record.order.order_number.to_string(), record.request_hash);
            numbers.push(record.order.order_number);
        }
        Self {
            lifecycle: Lifecycle::new(store.clone(), clock.clone()),
            store,
            labels,
            clock,
            numbers,
            hashes,
        }
    }

    async fn run(&mut self, step: &Step) {
        let now = self.clock.now();
        let pick = |order: usize| self.numbers[order].to_string();
        match *step {
            Step::Event { order, kind } => {
                let at = crate::record::format_time(now);
                let body = match kind {
                    0 => format!(r#"{{"event_id":"a","type":"allocated","occurred_at":"{at}"}}"#),
                    1 => format!(r#"{{"event_id":"p","type":"packed","occurred_at":"{at}"}}"#),
                    2 => format!(
                        r#"{{"event_id":"s","type":"shipped","occurred_at":"{at}","tracking_number":"YT1"}}"#
                    ),
                    _ => format!(r#"{{"event_id":"h","type":"handed_over","occurred_at":"{at}"}}"#),
                };
                match self
                    .lifecycle
                    .record_event(&wms(), &pick(order), parse_event(body.as_bytes()).unwrap())
                    .await
                {
                    Ok(_) | Err(LifecycleError::Impossible { .. } | LifecycleError::Invalid(_)) => {
                    }
                    Err(other) => panic!("an event failed: {other}"),
                }
            }
            Step::Cancel { order } => {
                match self
                    .lifecycle
                    .cancel(&erp(), &pick(order), Cancel::default())
                    .await
                {
                    Ok(_) | Err(LifecycleError::Impossible { .. }) => {}
                    Err(other) => panic!("a cancel failed: {other}"),
                }
            }
            Step::Settle { order, delivered } => {
                update_order(
                    &self.store,
                    &self.numbers[order],
                    Access::Service,
                    |record| {
                        if !record.callback.status.in_flight() {
                            return Ok::<_, LifecycleError>(Change::Keep(()));
                        }
                        record.callback.status = if delivered {
                            CallbackStatus::Delivered
                        } else {
                            CallbackStatus::Failed
                        };
                        Ok(Change::Save(()))
                    },
                )
                .await
                .unwrap();
            }
            Step::Replay { order } => {
                match self.lifecycle.retry_callback(&erp(), &pick(order)).await {
                    Ok(_)
                    | Err(LifecycleError::NotReplayable(_) | LifecycleError::AttemptInFlight(_)) => {
                    }
                    Err(other) => panic!("a replay failed: {other}"),
                }
            }
            Step::Erase { order } => {
                let before = self.store.stored(&self.numbers[order]).unwrap();
                let erased = erase(
                    &self.store,
                    &self.labels,
                    Access::Scope(&erp().scope),
                    &pick(order),
                    now,
                )
                .await;
                let erasable = matches!(
                    before.status,
                    OrderStatus::HandedOver | OrderStatus::Cancelled
                );
                match erased {
                    Ok((_, how)) => {
                        assert!(erasable, "erased while {}", before.status);
                        assert_eq!(how == Erased::Before, before.redacted_at.is_some());
                    }
                    Err(LifecycleError::StillInWarehouse(_)) => assert!(!erasable),
                    Err(other) => panic!("an erasure failed: {other}"),
                }
            }
            Step::Sweep => {
                let retention = Duration::days(RETENTION_DAYS);
                let due: Vec<bool> = self
                    .numbers
                    .iter()
                    .map(|n| self.store.stored(n).unwrap().redaction_due(now, retention))
                    .collect();
                let before: Vec<bool> = self
                    .numbers
                    .iter()
                    .map(|n| self.store.stored(n).unwrap().redacted_at.is_some())
                    .collect();
                let done = sweep(&self.store, &self.labels, &Fixed(now), retention)
                    .await
                    .unwrap();
                for (n, number) in self.numbers.iter().enumerate() {
                    let after = self.store.stored(number).unwrap().redacted_at.is_some();
                    assert_eq!(
                        after,
                        before[n] || due[n],
                        "{number}: the sweep redacts exactly what is due"
                    );
                }
                assert_eq!(done.redacted, due.iter().filter(|d| **d).count());
            }
            Step::Advance { days } => *self.clock.0.lock().unwrap() += Duration::days(days),
        }
    }

    fn check(&self, redacted: &mut BTreeMap<String, DateTime<Utc>>) {
        for number in &self.numbers {
            let record = self.store.stored(number).unwrap();
            let name = number.to_string();
            assert_eq!(
                record.request_hash, self.hashes[&name],
                "{name}: the hash stays"
            );
            assert_eq!(
                record.final_at.is_some(),
                record.is_final(),
                "{name}: final_at follows the state ({}, callback {:?})",
                record.status,
                record.callback.status
            );
            let label = record
                .order
                .logistics_provider
                .as_ref()
                .and_then(|p| p.label.as_ref())
                .map(|l| l.key.clone())
                .unwrap();
            match record.redacted_at {
                Some(at) => {
                    assert!(
                        matches!(
                            record.status,
                            OrderStatus::HandedOver | OrderStatus::Cancelled
                        ),
                        "{name}: redacted while {}",
                        record.status
                    );
                    assert!(!record.order_json.contains("Juan Carlos"), "{name}");
                    assert_eq!(record.order.receiver.name, "redacted");
                    assert!(self.labels.get(&label).is_none(), "{name}: its label went");
                    assert_eq!(*redacted.entry(name).or_insert(at), at, "redacted once");
                }
                None => {
                    assert!(
                        !redacted.contains_key(&name),
                        "{name}: a redaction was undone"
                    );
                    assert!(record.order_json.contains("Juan Carlos"), "{name}");
                    assert!(self.labels.get(&label).is_some(), "{name}: its label stays");
                }
            }
        }
    }
}

/// The sweep's clock: the model's now, fixed for the run.
struct Fixed(DateTime<Utc>);

impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn run_model(steps: &[Step]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut world = World::new().await;
        let mut redacted = BTreeMap::new();
        world.check(&mut redacted);
        for step in steps {
            world.run(step).await;
            world.check(&mut redacted);
        }
        // Long after: every final order has lost its personal data.
        world
            .run(&Step::Advance {
                days: RETENTION_DAYS + 1,
            })
            .await;
        world.run(&Step::Sweep).await;
        world.check(&mut redacted);
        for number in &world.numbers {
            let record = world.store.stored(number).unwrap();
            assert!(
                record.redacted_at.is_some() || !record.is_final(),
                "{number}"
            );
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_algorithm: prop::test_runner::RngAlgorithm::ChaCha,
        rng_seed: prop::test_runner::RngSeed::Fixed(20_261_206),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn redaction_among_every_interleaving_keeps_its_promises(steps in prop::collection::vec(step(), 1..40)) {
        run_model(&steps);
    }
}
