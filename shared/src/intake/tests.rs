//! The intake rules over an in-memory store.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::memory::{MemoryLabels, MemoryStore};
use crate::ports::Clock;
use crate::view::OrderView;

const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");
const SAMPLE_AS_PUBLISHED: &str =
    include_str!("../../../tests/fixtures/spec-000-sample-as-published.json");

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
    }
}

type TestIntake = Intake<Arc<MemoryStore>, Arc<MemoryLabels>, FixedClock>;

fn intake() -> TestIntake {
    intake_over(Arc::default())
}

fn intake_over(store: Arc<MemoryStore>) -> TestIntake {
    intake_with(store, Arc::default())
}

fn intake_with(store: Arc<MemoryStore>, labels: Arc<MemoryLabels>) -> TestIntake {
    Intake::new(store, labels, warehouses(), FixedClock)
}

fn warehouses() -> Warehouses {
    Warehouses::from_json(
        r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
    )
    .unwrap()
}

fn client() -> crate::auth::Principal {
    crate::auth::Principal {
        key_id: "key_test".into(),
        scope: crate::domain::Scope::Client("20".into()),
        order_prefixes: Vec::new(),
        signed: None,
    }
}

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

/// The sample's marketplace order sent again under another order number.
fn the_sample_renumbered() -> Value {
    let mut order = sample();
    order["package"]["order_number"] = json!("mabang-test003");
    order
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// What the handler does: parse the body at the edge, then accept the request.
async fn accept<S: OrderStore, L: LabelStore, C: Clock>(
    intake: &Intake<S, L, C>,
    caller: &Principal,
    body: &[u8],
) -> Result<Accepted, IntakeError> {
    intake.accept(caller, parse_order(body)?).await
}

fn problems(result: Result<Accepted, IntakeError>) -> Vec<(String, String)> {
    match result {
        Err(IntakeError::Invalid(errors) | IntakeError::Unprocessable(errors)) => {
            errors.into_iter().map(|e| (e.field, e.message)).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

fn fields(result: Result<Accepted, IntakeError>) -> Vec<String> {
    problems(result)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

fn created(result: Result<Accepted, IntakeError>) -> OrderView {
    match result {
        Ok(Accepted::Created(record)) => OrderView::from(&record),
        other => panic!("expected Created, got {other:?}"),
    }
}

#[tokio::test]
async fn the_spec_sample_without_its_trailing_commas_is_accepted_as_pending() {
    let view = created(accept(&intake(), &client(), SAMPLE.as_bytes()).await);

    assert_eq!(view.order_number, "mabang-test002");
    assert_eq!(view.status, "pending");
    assert_eq!(view.items, ["-ALB-908", "#"]);
    assert_eq!(view.tracking_number.as_deref(), Some("222225555"));
    assert_eq!(view.created_at, "2026-11-20T02:00:00Z");
}

#[tokio::test]
async fn the_sample_placeholders_are_recorded_as_findings_not_rejected() {
    let view = created(accept(&intake(), &client(), SAMPLE.as_bytes()).await);

    let found: Vec<&str> = view.findings.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        found,
        ["sender.country_code", "sender.email", "sender.phone"]
    );
    let message = view.status_message.unwrap();
    assert!(
        message.contains("sender.email: is not a valid email address"),
        "{message}"
    );
}

#[tokio::test]
async fn the_spec_sample_as_published_names_the_trailing_comma_and_where_it_is() {
    let problems = problems(accept(&intake(), &client(), SAMPLE_AS_PUBLISHED.as_bytes()).await);

    assert_eq!(problems.len(), 1);
    let (field, message) = &problems[0];
    assert_eq!(field, "$");
    assert!(message.contains("line 17, column 1"), "{message}");
    assert!(message.contains("trailing comma"), "{message}");
}

#[tokio::test]
async fn every_problem_is_listed_at_once_by_json_path() {
    let mut order = sample();
    order["centre_code"] = json!(12);
    order["receiver"]["country_code"] = json!("");
    order["receiver"].as_object_mut().unwrap().remove("name");
    order["items"][0]["qty"] = json!(0);
    order["items"][1]["qty"] = json!(1.5);
    order["items"][1]["unit_price"] = json!("ten");
    order["package"]["order_number"] = json!("mabang/002");

    let fields = fields(accept(&intake(), &client(), &body(&order)).await);

    assert_eq!(
        fields,
        [
            "centre_code",
            "package.order_number",
            "receiver.name",
            "receiver.country_code",
            "items[0].qty",
            "items[1].qty",
            "items[1].unit_price",
        ]
    );
}

#[tokio::test]
async fn tiktok_orders_need_package_shipping_provider_and_platform_sku_ids() {
    let mut order = sample();
    for key in [
        "package_id",
        "shipping_provider_id",
        "shipping_provider_name",
    ] {
        order.as_object_mut().unwrap().remove(key);
    }
    order["items"][1]
        .as_object_mut()
        .unwrap()
        .remove("platform_sku_id");

    let problems = problems(accept(&intake(), &client(), &body(&order)).await);

    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "package_id",
            "shipping_provider_id",
            "shipping_provider_name",
            "items[1].platform_sku_id"
        ]
    );
    assert!(problems[0].1.contains("when platform_type is tiktok"));
}

#[tokio::test]
async fn other_platforms_do_not_need_the_tiktok_fields() {
    let mut order = sample();
    order["platform_type"] = json!("Shopee");
    for key in [
        "package_id",
        "shipping_provider_id",
        "shipping_provider_name",
    ] {
        order.as_object_mut().unwrap().remove(key);
    }

    let view = created(accept(&intake(), &client(), &body(&order)).await);

    assert_eq!(view.platform_type, "shopee");
}

#[tokio::test]
async fn an_order_needs_items_a_receiver_and_a_package() {
    for (change, field) in [
        (json!({"items": []}), "items"),
        (json!({"items": null}), "items"),
        (json!({"receiver": null}), "receiver"),
        (json!({"package": {}}), "package.order_number"),
    ] {
        let mut order = sample();
        for (key, value) in change.as_object().unwrap() {
            order[key] = value.clone();
        }
        assert_eq!(
            fields(accept(&intake(), &client(), &body(&order)).await),
            [field]
        );
    }
}

#[tokio::test]
async fn unit_price_as_number_or_string_is_the_same_exact_price() {
    let intake = intake();
    let mut as_number = sample();
    as_number["items"][0]["unit_price"] = json!(10.5);
    created(accept(&intake, &client(), &body(&as_number)).await);

    let mut as_string = sample();
    as_string["items"][0]["unit_price"] = json!("10.50");
    let replay = accept(&intake, &client(), &body(&as_string)).await.unwrap();

    assert!(matches!(replay, Accepted::Replayed(_)), "{replay:?}");
}

#[tokio::test]
async fn a_replayed_order_returns_the_stored_result() {
    let intake = intake();
    let first = created(accept(&intake, &client(), SAMPLE.as_bytes()).await);
    // Same order, other key order and spacing.
    let reformatted = serde_json::to_vec_pretty(&sample()).unwrap();

    let replay = accept(&intake, &client(), &reformatted).await.unwrap();

    let Accepted::Replayed(stored) = replay else {
        panic!("expected a replay, got {replay:?}")
    };
    assert_eq!(OrderView::from(&stored), first);
}

#[tokio::test]
async fn the_same_order_number_with_other_content_is_a_conflict() {
    let intake = intake();
    created(accept(&intake, &client(), SAMPLE.as_bytes()).await);
    let mut changed = sample();
    changed["items"][0]["qty"] = json!(2);

    let result = accept(&intake, &client(), &body(&changed)).await;

    assert!(
        matches!(&result, Err(IntakeError::Conflict(n)) if n.as_str() == "mabang-test002"),
        "{result:?}"
    );
    let stored = intake.get(&client(), "mabang-test002").await.unwrap();
    assert_eq!(stored.findings.len(), 3, "the stored order is unchanged");
}

#[tokio::test]
async fn real_time_response_rejects_every_finding_and_stores_nothing() {
    let intake = intake();
    let mut order = sample();
    order["real_time_response"] = json!(true);
    order["centre_code"] = json!("nowhere");
    order["items"][0]["currency"] = json!("PESO");

    let fields = fields(accept(&intake, &client(), &body(&order)).await);

    assert_eq!(
        fields,
        [
            "centre_code",
            "sender.country_code",
            "sender.email",
            "sender.phone",
            "items[0].currency"
        ]
    );
    assert!(matches!(
        intake.get(&client(), "mabang-test002").await,
        Err(IntakeError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_retried_duplicate_whose_finding_was_lost_gets_it_on_the_replay() {
    let intake = intake();
    created(accept(&intake, &client(), SAMPLE.as_bytes()).await);
    let second = the_sample_renumbered();
    // Its first try was stored, then the function stopped before the finding was added.
    let OrderRequest { order, .. } = parse_order(&body(&second)).unwrap();
    let without_finding = OrderRecord::accept(order, Vec::new(), FixedClock.now());
    intake.store.insert_new(&without_finding).await.unwrap();

    let view = match accept(&intake, &client(), &body(&second)).await {
        Ok(Accepted::Replayed(record)) => OrderView::from(&record),
        other => panic!("expected a replay, got {other:?}"),
    };

    let stored = intake
        .store
        .get(
            &OrderNumber::parse("mabang-test003").unwrap(),
            crate::ports::Access::Service,
        )
        .await
        .unwrap()
        .into_found()
        .unwrap();
    for findings in [&view.findings, &stored.findings] {
        assert_names_the_first_number(findings);
    }
}

/// The duplicate finding points at the number the marketplace order was first sent under.
fn assert_names_the_first_number(findings: &[crate::error::FieldError]) {
    let duplicate = findings
        .iter()
        .find(|f| f.field == "platform_order_number")
        .expect("the duplicate finding");
    assert!(
        duplicate.message.contains("mabang-test002"),
        "{}",
        duplicate.message
    );
}

#[tokio::test]
async fn a_marketplace_order_sent_twice_under_two_numbers_is_a_finding() {
    let intake = intake();
    created(accept(&intake, &client(), SAMPLE.as_bytes()).await);
    let second = the_sample_renumbered();

    let view = created(accept(&intake, &client(), &body(&second)).await);

    assert_names_the_first_number(&view.findings);
}

#[tokio::test]
async fn ebay_and_temu_orders_note_what_their_callback_will_miss() {
    let mut order = sample();
    order["platform_type"] = json!("ebay");
    order
        .as_object_mut()
        .unwrap()
        .remove("shipping_provider_name");
    order
        .as_object_mut()
        .unwrap()
        .remove("platform_order_number");
    order["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("platform_sku_id");

    let view = created(accept(&intake(), &client(), &body(&order)).await);

    let found: Vec<&str> = view.findings.iter().map(|f| f.field.as_str()).collect();
    assert!(found.contains(&"platform_order_number"), "{found:?}");
    assert!(found.contains(&"shipping_provider_name"), "{found:?}");
    assert!(found.contains(&"items[0].platform_sku_id"), "{found:?}");
}

#[tokio::test]
async fn an_inline_label_goes_to_the_label_store_and_the_order_keeps_where_it_is() {
    let labels = Arc::new(MemoryLabels::default());
    let store = Arc::new(MemoryStore::default());
    let intake = intake_with(Arc::clone(&store), Arc::clone(&labels));
    let mut order = sample();
    order["logistics_provider"]["label_base64"] = json!("JVBERi0xLjcK");

    let view = created(accept(&intake, &client(), &body(&order)).await);

    let label = view.label.expect("the view says a label is stored");
    assert_eq!(label.bytes, 9);
    let stored = store
        .stored(&OrderNumber::parse("mabang-test002").unwrap())
        .unwrap();
    assert!(
        !stored.order_json.contains("JVBERi0xLjcK"),
        "{}",
        stored.order_json
    );
    let key = format!("labels/mabang-test002/{}", label.sha256);
    assert_eq!(labels.get(&key).as_deref(), Some(&b"%PDF-1.7\n"[..]));
    // The same label again is a replay; another label is a conflict.
    assert!(matches!(
        accept(&intake, &client(), &body(&order)).await,
        Ok(Accepted::Replayed(_))
    ));
    order["logistics_provider"]["label_base64"] = json!("JVBERi0xLjYK");
    assert!(matches!(
        accept(&intake, &client(), &body(&order)).await,
        Err(IntakeError::Conflict(_))
    ));
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_parsing() {
    let huge = vec![b' '; crate::limits::MAX_BODY_BYTES + 1];

    let result = accept(&intake(), &client(), &huge).await;

    assert!(
        matches!(result, Err(IntakeError::BodyTooLarge { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn already_handed_over_orders_must_carry_their_tracking_number() {
    let mut order = sample();
    order["process_type"] = json!(2);
    order["logistics_provider"] = json!({"code": "jito"});

    assert_eq!(
        fields(accept(&intake(), &client(), &body(&order)).await),
        ["logistics_provider.tracking_number"]
    );
}

#[tokio::test]
async fn an_unknown_order_is_not_found() {
    assert!(matches!(
        intake().get(&client(), "nope").await,
        Err(IntakeError::NotFound(_))
    ));
    assert!(matches!(
        intake().get(&client(), "../etc").await,
        Err(IntakeError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_order_already_handed_over_goes_straight_to_the_callback() {
    let mut order = sample();
    order["process_type"] = json!(2);
    order["package"]["order_number"] = json!("handed-over-1");

    let store = Arc::new(MemoryStore::default());

    let view = created(accept(&intake_over(Arc::clone(&store)), &client(), &body(&order)).await);

    assert_eq!(view.status, "handed_over");
    assert_eq!(view.callback.status, "pending");
    assert_eq!(view.tracking_number.as_deref(), Some("222225555"));
    let sent = store.take_outbox();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].order_number.as_str(), "handed-over-1");
    assert_eq!(sent[0].generation, 1);
}

#[tokio::test]
async fn orders_of_other_platforms_need_no_callback() {
    let mut order = sample();
    order["platform_type"] = json!("lazada");

    let view = created(accept(&intake(), &client(), &body(&order)).await);

    assert_eq!(view.callback.status, "not_required");
}

#[tokio::test]
async fn an_order_of_another_client_is_refused_and_invisible() {
    let intake = intake();
    let other = crate::auth::Principal {
        key_id: "key_other".into(),
        scope: crate::domain::Scope::Client("21".into()),
        order_prefixes: Vec::new(),
        signed: None,
    };

    let refused = accept(&intake, &other, SAMPLE.as_bytes()).await;
    created(accept(&intake, &client(), SAMPLE.as_bytes()).await);

    assert!(
        matches!(refused, Err(IntakeError::ForeignClient { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        intake.get(&other, "mabang-test002").await,
        Err(IntakeError::NotFound(_))
    ));
}

/// Property-based fuzzing of the intake parser and validator: no input panics,
/// every rejection is the caller's fault and lists its problems, and nothing is stored for
/// a rejected body. Bounded so it runs inside `make test`.
mod fuzz {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    /// Any JSON value, nested a few levels, with the awkward cases weighted in:
    /// huge and fractional numbers, empty, long and non-ASCII strings.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            Just(json!(0)),
            Just(json!(-1)),
            Just(json!(1e300)),
            ".{0,40}".prop_map(Value::String),
            "[a-zA-Z0-9_#/ -]{0,12}".prop_map(Value::String),
            Just(json!("x".repeat(1200))),
            Just(json!("")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every JSON pointer of the sample order.
    fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = format!("{prefix}/{key}");
                    out.push(path.clone());
                    pointers(child, &path, out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    let path = format!("{prefix}/{index}");
                    out.push(path.clone());
                    pointers(child, &path, out);
                }
            }
            _ => {}
        }
    }

    /// Runs one body through the intake and checks the properties.
    fn check(body: &[u8]) -> Result<(), TestCaseError> {
        let store = Arc::new(MemoryStore::default());
        let intake = intake_over(Arc::clone(&store));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let result = runtime.block_on(accept(&intake, &client(), body));
        let stored = store.stored_count();
        match result {
            Ok(_) => prop_assert_eq!(stored, 1),
            Err(err) => {
                let problems = match &err {
                    IntakeError::Invalid(p) | IntakeError::Unprocessable(p) => Some(p.clone()),
                    _ => None,
                };
                // Only our own failures (store, labels) are 5xx answers.
                prop_assert!(
                    !matches!(err, IntakeError::Store(_) | IntakeError::Labels(_)),
                    "{err}"
                );
                if let Some(problems) = problems {
                    prop_assert!(!problems.is_empty());
                    prop_assert!(
                        problems
                            .iter()
                            .all(|p| !p.field.is_empty() && !p.message.is_empty())
                    );
                }
                prop_assert_eq!(stored, 0, "a rejected body was stored");
            }
        }
        Ok(())
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_rejected_with_a_4xx() {
        let mut runner = TestRunner::new(Config::with_cases(2000));
        runner
            .run(&prop::collection::vec(any::<u8>(), 0..600), |bytes| {
                check(&bytes)
            })
            .unwrap();
    }

    #[test]
    fn any_field_of_the_sample_replaced_or_removed_is_handled() {
        let sample = sample();
        let mut paths = Vec::new();
        pointers(&sample, "", &mut paths);
        let mut runner = TestRunner::new(Config::with_cases(3000));
        runner
            .run(
                &(
                    0..paths.len(),
                    proptest::option::of(json_value()),
                    any::<bool>(),
                ),
                |(index, replacement, also_strict)| {
                    let mut order = sample.clone();
                    let path = &paths[index];
                    let (parent, key) = path.rsplit_once('/').unwrap();
                    match (replacement, order.pointer_mut(parent)) {
                        (Some(value), Some(Value::Object(map))) => {
                            map.insert(key.to_owned(), value);
                        }
                        (Some(value), Some(Value::Array(items))) => {
                            items[key.parse::<usize>().unwrap()] = value;
                        }
                        (None, Some(Value::Object(map))) => {
                            map.remove(key);
                        }
                        (None, Some(Value::Array(items))) => {
                            items.remove(key.parse::<usize>().unwrap());
                        }
                        _ => {}
                    }
                    if also_strict {
                        order["real_time_response"] = json!(true);
                    }
                    check(&serde_json::to_vec(&order).unwrap())
                },
            )
            .unwrap();
    }

    /// The shapes that cost a reader the most (issue 20's size budget),
    /// smaller and mixed: every answer is a 4xx with a bounded list.
    fn hostile_body() -> impl Strategy<Value = String> {
        let unit = prop_oneof![
            Just("0".to_owned()),
            Just("{}".to_owned()),
            Just("[]".to_owned()),
            Just(r#"{"sku":1,"qty":"x","unit_price":[]}"#.to_owned()),
            Just(r#""x""#.to_owned()),
            "[a-z]{0,30}".prop_map(|s| format!("{s:?}")),
        ];
        let field = prop_oneof![
            Just("items"),
            Just("receiver"),
            Just("package"),
            Just("logistics_provider"),
            Just("desc"),
        ];
        (unit, field, 0_usize..5_000, 0_usize..40, 0_usize..300).prop_map(
            |(unit, field, count, depth, keys)| {
                let array = format!("[{}]", vec![unit; count].join(","));
                let nested = format!("{}{array}{}", "[".repeat(depth), "]".repeat(depth));
                let extra: String = (0..keys).map(|k| format!(r#""k{k}":0,"#)).collect();
                format!(r#"{{{extra}"platform_type":"temu","{field}":{nested}}}"#)
            },
        )
    }

    #[test]
    fn hostile_shapes_are_refused_with_a_bounded_list() {
        let mut runner = TestRunner::new(Config::with_cases(300));
        runner
            .run(&hostile_body(), |body| {
                check(body.as_bytes())?;
                let listed = match super::parse_order(body.as_bytes()) {
                    Err(IntakeError::Invalid(problems)) => problems.len(),
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert!(listed <= crate::problems::MAX_LISTED + 1, "{listed}");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn text_bodies_near_json_never_panic() {
        let mut runner = TestRunner::new(Config::with_cases(1500));
        runner
            .run(&"[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,200}", |text| {
                check(text.as_bytes())
            })
            .unwrap();
    }
}

#[tokio::test]
async fn a_key_with_order_prefixes_creates_only_numbers_under_them() {
    let intake = intake();
    let mut caller = client();
    caller.order_prefixes = vec!["erp20-".into(), "shop20-".into()];
    let mut outside = sample();
    outside["package"]["order_number"] = json!("mabang-test002");
    let mut inside = sample();
    inside["package"]["order_number"] = json!("shop20-1");

    let refused = accept(&intake, &caller, &body(&outside)).await;
    let accepted = accept(&intake, &caller, &body(&inside)).await;

    let Err(IntakeError::Invalid(problems)) = refused else {
        panic!("not refused: {refused:?}");
    };
    assert_eq!(problems[0].field, "package.order_number");
    assert!(problems[0].message.contains("erp20-, shop20-"));
    created(accepted);
}

/// The canonical form is a contract with every order already stored: a change
/// to it would turn ERP retries that span a deploy into 409s.
#[tokio::test]
async fn the_spec_samples_request_hash_is_pinned() {
    let request = parse_order(SAMPLE.as_bytes()).unwrap();
    let record = OrderRecord::accept(request.order, Vec::new(), FixedClock.now());

    assert!(!record.order_json.contains("null"), "{}", record.order_json);
    assert_eq!(
        record.request_hash,
        "8e9ef6ab46d720103fdc5ff6196fb609708a63b45ed2d0d86ae0df29218a560f"
    );
}

/// The store's text reads back as the order accepted, inline label included:
/// the one way to an order that skips the intake rules is exact.
#[tokio::test]
async fn a_stored_order_reads_back_as_the_order_accepted() {
    let store = Arc::new(MemoryStore::default());
    let mut order = sample();
    order["logistics_provider"]["label_base64"] = json!("JVBERi0xLjcK");
    order["sender"] = json!({"name": "Shop", "country_code": "CN"});
    created(accept(&intake_over(Arc::clone(&store)), &client(), &body(&order)).await);
    let stored = store
        .stored(&OrderNumber::parse("mabang-test002").unwrap())
        .unwrap();

    let read = Order::from_stored(&stored.order_json).unwrap();

    assert_eq!(read, stored.order);
    assert!(read.logistics_provider.and_then(|p| p.label).is_some());
}

/// A body as large as the gateway passes, of a shape that costs the most to
/// read: the answer is one problem about the array's length, not one per element.
#[tokio::test]
async fn an_items_array_of_millions_of_scalars_is_one_problem() {
    let mut text = String::from(r#"{"platform_type":"tiktok","items":["#);
    let count = (crate::limits::MAX_BODY_BYTES - 100) / 2;
    text.push_str(&"0,".repeat(count - 1));
    text.push_str("0]}");

    let found = problems(accept(&intake(), &client(), text.as_bytes()).await);

    let on_items: Vec<_> = found.iter().filter(|(field, _)| field == "items").collect();
    assert_eq!(on_items.len(), 1, "{:?}", &found[..found.len().min(5)]);
    assert!(
        on_items[0]
            .1
            .contains(&format!("at most 200 entries, got {count}")),
        "{}",
        on_items[0].1
    );
    assert!(
        found.len() <= crate::problems::MAX_LISTED + 1,
        "{}",
        found.len()
    );
}

#[tokio::test]
async fn an_order_of_two_hundred_thousand_keys_is_one_problem() {
    let keys: String = (0..200_000).map(|i| format!(r#""k{i}":0,"#)).collect();
    let mut huge = String::from_utf8(body(&sample())).unwrap();
    huge.insert_str(1, &keys);

    let found = problems(accept(&intake(), &client(), huge.as_bytes()).await);

    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "$");
    assert!(found[0].1.contains("at most 100"), "{}", found[0].1);
}

#[tokio::test]
async fn two_hundred_items_each_wrong_in_every_field_list_a_bounded_answer() {
    let mut order = sample();
    order["items"] = Value::Array(vec![json!({"sku": 1, "qty": "x", "unit_price": []}); 200]);

    let found = problems(accept(&intake(), &client(), &body(&order)).await);

    assert_eq!(found.len(), crate::problems::MAX_LISTED + 1);
    let (field, message) = found.last().unwrap();
    assert_eq!(field, "$");
    assert!(message.contains("more problem(s) not listed"), "{message}");
}

/// A store whose reads never see the order another writer is about to
/// insert: the create that checked the number first loses the race anyway.
struct RacedStore(Arc<MemoryStore>);

impl OrderStore for RacedStore {
    async fn insert_new(&self, record: &OrderRecord) -> Result<crate::ports::Insert, StoreError> {
        self.0.insert_new(record).await
    }
    async fn get(
        &self,
        _: &OrderNumber,
        _: crate::ports::Access<'_>,
    ) -> Result<crate::ports::Lookup, StoreError> {
        Ok(crate::ports::Lookup::Missing)
    }
    async fn save(
        &self,
        record: &mut OrderRecord,
        guard: crate::ports::Guard<'_>,
    ) -> Result<crate::ports::Save, StoreError> {
        self.0.save(record, guard).await
    }
    async fn claim(
        &self,
        number: &OrderNumber,
        claim: &crate::record::callback::Claim,
    ) -> Result<Option<crate::ports::ClaimOutcome>, StoreError> {
        self.0.claim(number, claim).await
    }
    async fn orders_with_platform_order(&self, key: &str) -> Result<Vec<OrderNumber>, StoreError> {
        self.0.orders_with_platform_order(key).await
    }
}

#[tokio::test]
async fn a_create_that_loses_the_race_for_its_number_removes_its_label() {
    let store = Arc::new(MemoryStore::default());
    let labels = Arc::new(MemoryLabels::default());
    let mut theirs = sample();
    theirs["client_code"] = json!("21");
    let mut holder = client();
    holder.scope = crate::domain::Scope::Client("21".into());
    accept(&intake_over(Arc::clone(&store)), &holder, &body(&theirs))
        .await
        .unwrap();
    let raced = Intake::new(
        RacedStore(store),
        Arc::clone(&labels),
        warehouses(),
        FixedClock,
    );
    let mut ours = sample();
    ours["logistics_provider"]["label_base64"] = json!("JVBERi0=");

    let refused = accept(&raced, &client(), &body(&ours)).await;

    assert!(
        matches!(refused, Err(IntakeError::NumberTaken(_))),
        "{refused:?}"
    );
    assert_eq!(labels.keys(), Vec::<String>::new());
}

/// The sample with a small PDF as its inline label.
fn sample_with_label() -> Value {
    let mut order = sample();
    order["logistics_provider"]["label_base64"] = json!("JVBERi0xLjcKJcOkw7w=");
    order
}

/// An intake over its own stores, holding the sample with an inline label
/// cancelled by the ERP (a final order).
struct Cancelled {
    store: Arc<MemoryStore>,
    labels: Arc<MemoryLabels>,
    intake: TestIntake,
    number: OrderNumber,
}

async fn cancelled_with_label() -> Cancelled {
    let store: Arc<MemoryStore> = Arc::default();
    let labels: Arc<MemoryLabels> = Arc::default();
    let intake = intake_with(store.clone(), labels.clone());
    created(accept(&intake, &client(), &body(&sample_with_label())).await);
    let number = OrderNumber::parse("mabang-test002").unwrap();
    let mut record = store.stored(&number).unwrap();
    record.status = crate::domain::OrderStatus::Cancelled;
    let saved = store
        .save(&mut record, crate::ports::Guard::Version)
        .await
        .unwrap();
    assert_eq!(saved, crate::ports::Save::Saved);
    Cancelled {
        store,
        labels,
        intake,
        number,
    }
}

#[tokio::test]
async fn an_erased_order_replays_from_its_stored_hash_without_its_personal_data() {
    let Cancelled {
        store,
        labels,
        intake,
        number,
    } = cancelled_with_label().await;
    assert_eq!(labels.keys().len(), 1);

    let (erased, how) = intake
        .erase_personal_data(&client(), "mabang-test002")
        .await
        .unwrap();

    assert_eq!(how, crate::lifecycle::personal_data::Erased::Now);
    assert!(labels.keys().is_empty(), "the label goes with the address");
    let stored = store.stored(&number).unwrap();
    assert!(
        !stored.order_json.contains("Juan Carlos"),
        "{}",
        stored.order_json
    );
    assert!(stored.redacted_at.is_some());
    assert_eq!(stored.request_hash, erased.request_hash);
    match accept(&intake, &client(), &body(&sample_with_label())).await {
        Ok(Accepted::Replayed(replayed)) => {
            assert_eq!(replayed.order.receiver.name, "redacted");
            assert!(
                OrderView::from(&replayed)
                    .personal_data_redacted_at
                    .is_some()
            );
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(labels.keys().is_empty(), "a replay puts no label back");
}

#[tokio::test]
async fn an_order_in_the_warehouse_or_of_another_client_is_not_erased() {
    let store: Arc<MemoryStore> = Arc::default();
    let intake = intake_over(store.clone());
    created(accept(&intake, &client(), SAMPLE.as_bytes()).await);
    let other = crate::auth::Principal {
        key_id: "key_other".into(),
        scope: crate::domain::Scope::Client("21".into()),
        order_prefixes: Vec::new(),
        signed: None,
    };

    let pending = intake
        .erase_personal_data(&client(), "mabang-test002")
        .await;
    let foreign = intake.erase_personal_data(&other, "mabang-test002").await;

    assert!(
        matches!(pending, Err(LifecycleError::StillInWarehouse(_))),
        "{pending:?}"
    );
    assert!(
        matches!(foreign, Err(LifecycleError::NotFound(_))),
        "{foreign:?}"
    );
    let number = OrderNumber::parse("mabang-test002").unwrap();
    assert_eq!(store.stored(&number).unwrap().redacted_at, None);
}

#[tokio::test]
async fn the_sweep_redacts_final_orders_only_once_their_retention_has_passed() {
    let Cancelled {
        store,
        labels,
        number,
        ..
    } = cancelled_with_label().await;
    let final_at = store.stored(&number).unwrap().final_at.expect("final");
    let retention = chrono::Duration::days(30);
    struct At(DateTime<Utc>);
    impl Clock for At {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }
    let sweep = |at| {
        let (store, labels) = (store.clone(), labels.clone());
        async move {
            crate::lifecycle::personal_data::sweep(&store, &labels, &At(at), retention)
                .await
                .unwrap()
        }
    };

    let early = sweep(final_at + retention - chrono::Duration::minutes(1)).await;
    assert_eq!(early.redacted, 0);
    assert_eq!(store.stored(&number).unwrap().redacted_at, None);
    assert_eq!(labels.keys().len(), 1);

    let due = sweep(final_at + retention).await;
    assert_eq!(due.redacted, 1);
    assert!(store.stored(&number).unwrap().redacted_at.is_some());
    assert!(labels.keys().is_empty());
    assert_eq!(
        sweep(final_at + retention * 2).await.redacted,
        0,
        "done once"
    );
}
