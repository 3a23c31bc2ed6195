//! docs/openapi.yaml's `webhooks` are the events the service sends: one per
//! type the code knows, each example shaped exactly like the body the code
//! builds (same fields, same JSON types), and each schema listing the fields
//! the code can send and requiring only those it always sends. The bodies
//! come from an order taken through its life by the real record
//! (`OrderRecord::accept`, `apply_event`), its events found by
//! `webhook::changes` and built by `WebhookEvent::new`, so a field renamed
//! or added on either side fails here instead of in an ERP's parser.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value as Json;
use shared::record::OrderRecord;
use shared::record::callback::CallbackStatus;
use shared::record::event::{EventKind, EventSource, Parcel, Shipment, WarehouseEvent};
use shared::record::progress::Progress;
use shared::webhook::{EventType, OrderState, WebhookEvent, WebhookSecret, changes, sign};

mod repo;

use repo::{openapi, resolve};

/// The Standard Webhooks headers every delivery carries.
const HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];
/// The secret the document's header examples are signed with (the base64 of
/// "example-secret-not-used-anywhere"); the signed event is `order.shipped`.
const EXAMPLE_SECRET: &str = "whsec_ZXhhbXBsZS1zZWNyZXQtbm90LXVzZWQtYW55d2hlcmU=";

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// An order's life, write by write, as the table's stream shows it: the
/// order before and after each write.
struct Life {
    record: OrderRecord,
    clock: i64,
    events: BTreeMap<EventType, OrderState>,
}

impl Life {
    /// The spec sample (a TikTok order, so its callback is awaited), accepted.
    fn accepted() -> Self {
        let sample = repo::read("tests/fixtures/spec-000-sample.json");
        let order = shared::intake::parse_order(sample.as_bytes())
            .expect("the spec sample parses")
            .order;
        let record = OrderRecord::accept(order, Vec::new(), at(0));
        let mut life = Self {
            record,
            clock: 0,
            events: BTreeMap::new(),
        };
        let state = OrderState::from(&life.record);
        life.found(None, &state);
        life
    }

    /// Records the events `changes` finds between `before` and `after`.
    fn found(&mut self, before: Option<&OrderState>, after: &OrderState) {
        for kind in changes(before, after) {
            self.events.insert(kind, after.clone());
        }
    }

    /// One write: the warehouse reports `kind`.
    fn report(&mut self, kind: EventKind) -> &mut Self {
        let before = OrderState::from(&self.record);
        self.clock += 10;
        let now = at(self.clock);
        let event = WarehouseEvent {
            source: EventSource::Warehouse,
            event_id: format!("e-{}", self.clock),
            occurred_at: now,
            kind,
        };
        self.record
            .apply_event(&event, now)
            .expect("a possible step");
        self.record.version += 1;
        self.record.updated_at = now;
        let after = OrderState::from(&self.record);
        self.found(Some(&before), &after);
        self
    }

    /// One write: the callback settles as `status`, after `attempts` tries.
    fn callback(
        &mut self,
        status: CallbackStatus,
        attempts: u32,
        reason: Option<&str>,
        partner: &str,
    ) -> &mut Self {
        let before = OrderState::from(&self.record);
        let mut after = before.clone();
        self.clock += 10;
        after.version += 1;
        after.updated_at = at(self.clock);
        after.callback_status = status;
        after.callback_attempts = attempts;
        after.callback_reason = reason.map(str::to_owned);
        after.partner_message = Some(partner.to_owned());
        self.found(Some(&before), &after);
        self
    }
}

/// The order after each event of every type: one order through the
/// warehouse to the carrier and its callback, one cancelled, two whose
/// callbacks failed.
fn every_event() -> BTreeMap<EventType, OrderState> {
    let shipped = |life: &mut Life| {
        life.report(EventKind::Allocated)
            .report(EventKind::Shortage {
                message: Some("SKU -ALB-908: 0 of 1 on hand".into()),
            })
            .report(EventKind::Picked)
            .report(EventKind::Packed(Parcel {
                weight_g: Some(850),
                number_of_package: Some(1),
                ..Parcel::default()
            }))
            .report(EventKind::Shipped(Shipment {
                tracking_number: "YT4567890123CN".into(),
                logistic_provider_code: Some("jito".into()),
                shipping_provider_id: None,
                shipping_provider_name: None,
                shipping_fee: None,
                currency: None,
                shipping_provider_product: None,
                logistics_message: Some("left the Manila warehouse".into()),
                parcel: Parcel::default(),
            }))
            .report(EventKind::HandedOver {
                tracking_number: None,
                logistics_message: None,
            });
    };
    let mut delivered = Life::accepted();
    shipped(&mut delivered);
    delivered.callback(CallbackStatus::Delivered, 1, None, "Success");
    let mut failed = Life::accepted();
    shipped(&mut failed);
    failed.callback(
        CallbackStatus::Failed,
        1,
        Some("the partner refused the shipment"),
        "PackageId not found",
    );
    let mut dead = Life::accepted();
    shipped(&mut dead);
    dead.callback(
        CallbackStatus::DeadLettered,
        8,
        Some("retries ran out"),
        "Service Unavailable",
    );
    let mut cancelled = Life::accepted();
    cancelled
        .report(EventKind::Allocated)
        .report(EventKind::Cancelled {
            reason: Some("the buyer cancelled on the marketplace".into()),
        });

    let mut events = BTreeMap::new();
    for life in [delivered, failed, dead, cancelled] {
        events.extend(life.events);
    }
    events
}

fn body(kind: EventType, order: &OrderState) -> Json {
    let event = WebhookEvent::new(kind, order, order.updated_at);
    serde_json::from_str(&event.body).expect("an event body is JSON")
}

/// The order with everything an event may leave out filled in.
fn filled(order: &OrderState) -> OrderState {
    OrderState {
        callback_reason: Some(order.callback_reason.clone().unwrap_or("why".into())),
        partner_message: Some(order.partner_message.clone().unwrap_or("said".into())),
        ..order.clone()
    }
}

/// The order with nothing an event may leave out.
fn bare(order: &OrderState) -> OrderState {
    OrderState {
        progress: Progress::default(),
        callback_reason: None,
        partner_message: None,
        ..order.clone()
    }
}

/// Every member of `value`, by its path (`data.tracking_number`), with its
/// JSON type.
fn shape(value: &Json) -> BTreeMap<String, &'static str> {
    fn walk(value: &Json, path: &str, shape: &mut BTreeMap<String, &'static str>) {
        let kind = match value {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(n) if n.is_f64() => "number",
            Json::Number(_) => "integer",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(members) => {
                for (name, member) in members {
                    let inner = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    walk(member, &inner, shape);
                }
                "object"
            }
        };
        shape.insert(path.to_owned(), kind);
    }
    let mut shape = BTreeMap::new();
    walk(value, "", &mut shape);
    shape
}

fn keys(value: &Json) -> BTreeSet<String> {
    value
        .as_object()
        .map(|members| members.keys().cloned().collect())
        .unwrap_or_default()
}

/// An object schema's properties (name → every schema given for it) and
/// required names, gathered through `$ref` and `allOf`.
fn members<'a>(
    doc: &'a Json,
    schema: &'a Json,
) -> (BTreeMap<String, Vec<&'a Json>>, BTreeSet<String>) {
    let schema = resolve(doc, schema);
    let parts: Vec<&Json> = schema["allOf"].as_array().into_iter().flatten().collect();
    let (mut properties, mut required) = members_of_all(doc, &parts);
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        properties.entry(name.clone()).or_default().push(property);
    }
    required.extend(
        schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(str::to_owned),
    );
    (properties, required)
}

/// [`members`] of several schemas together (the parts of an `allOf`, or
/// every schema given for one property).
fn members_of_all<'a>(
    doc: &'a Json,
    schemas: &[&'a Json],
) -> (BTreeMap<String, Vec<&'a Json>>, BTreeSet<String>) {
    let mut properties: BTreeMap<String, Vec<&Json>> = BTreeMap::new();
    let mut required = BTreeSet::new();
    for schema in schemas {
        let (more, needed) = members(doc, schema);
        for (name, schemas) in more {
            properties.entry(name).or_default().extend(schemas);
        }
        required.extend(needed);
    }
    (properties, required)
}

/// The documented `webhooks` entry of `kind`: its POST operation.
fn documented(doc: &Json, kind: EventType) -> &Json {
    let operation = &doc["webhooks"][kind.as_str()]["post"];
    assert!(
        operation.is_object(),
        "docs/openapi.yaml documents no webhook {}",
        kind.as_str()
    );
    operation
}

fn example(operation: &Json) -> &Json {
    &operation["requestBody"]["content"]["application/json"]["example"]
}

#[test]
fn every_event_type_the_code_knows_is_documented_and_nothing_else() {
    let doc = openapi();
    let code: BTreeSet<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    let webhooks: BTreeSet<&str> = doc["webhooks"]
        .as_object()
        .expect("docs/openapi.yaml has webhooks")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(webhooks, code, "the `webhooks` of docs/openapi.yaml");
    let enumerated: BTreeSet<&str> = doc["components"]["schemas"]["WebhookEventType"]["enum"]
        .as_array()
        .expect("WebhookEventType lists the types")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(enumerated, code, "WebhookEventType's enum");
    let made: BTreeSet<&str> = every_event().keys().map(|kind| kind.as_str()).collect();
    assert_eq!(made, code, "the order lives of this test make every type");
}

#[test]
fn each_example_has_exactly_the_fields_and_types_the_code_sends() {
    let doc = openapi();
    let mut wrong = Vec::new();
    for (kind, order) in every_event() {
        let documented = example(documented(&doc, kind));
        let sent = body(kind, &order);
        let (documented_shape, sent_shape) = (shape(documented), shape(&sent));
        let names: BTreeSet<&String> = documented_shape.keys().chain(sent_shape.keys()).collect();
        for name in names {
            let (shown, made) = (documented_shape.get(name), sent_shape.get(name));
            if shown != made {
                wrong.push(format!(
                    "{}: `{name}` is {} in the example but {} in what the code sends",
                    kind.as_str(),
                    shown.copied().unwrap_or("absent"),
                    made.copied().unwrap_or("absent"),
                ));
            }
        }
        if documented["type"] != kind.as_str() {
            wrong.push(format!(
                "{}: the example's type is {}",
                kind.as_str(),
                documented["type"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}\nwhat the code sends: {:#}", {
        let sent: serde_json::Map<String, Json> = every_event()
            .iter()
            .map(|(kind, order)| (kind.as_str().to_owned(), body(*kind, order)))
            .collect();
        Json::Object(sent)
    });
}

#[test]
fn each_schema_lists_what_the_code_can_send_and_requires_what_it_always_sends() {
    let doc = openapi();
    let mut wrong = Vec::new();
    for (kind, order) in every_event() {
        let operation = documented(&doc, kind);
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        let (top, top_required) = members(&doc, schema);
        let full = body(kind, &filled(&order));
        let least = body(kind, &bare(&order));
        let top_names: BTreeSet<String> = top.keys().cloned().collect();
        if top_names != keys(&full) || top_required != keys(&least) {
            wrong.push(format!(
                "{}: the body lists {top_names:?}, requires {top_required:?}; the code sends {:?}",
                kind.as_str(),
                keys(&full)
            ));
        }
        let (data, data_required) =
            members_of_all(&doc, top.get("data").map_or(&[][..], Vec::as_slice));
        let data_names: BTreeSet<String> = data.keys().cloned().collect();
        if data_names != keys(&full["data"]) {
            wrong.push(format!(
                "{}: data lists {data_names:?}; the code can send {:?}",
                kind.as_str(),
                keys(&full["data"])
            ));
        }
        if data_required != keys(&least["data"]) {
            wrong.push(format!(
                "{}: data requires {data_required:?}; the code always sends {:?}",
                kind.as_str(),
                keys(&least["data"])
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_webhook_documents_the_standard_webhooks_headers_and_the_answers() {
    let doc = openapi();
    for kind in EventType::ALL {
        let operation = documented(&doc, kind);
        let headers: BTreeSet<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "header" && parameter["required"] == true)
            .filter_map(|parameter| parameter["name"].as_str())
            .map(str::to_ascii_lowercase)
            .collect();
        let expected: BTreeSet<String> = HEADERS.iter().map(|name| (*name).to_owned()).collect();
        assert_eq!(headers, expected, "{}", kind.as_str());
        let answers = keys(&operation["responses"]);
        for answer in ["2XX", "410", "default"] {
            assert!(
                answers.contains(answer),
                "{}: documents no {answer} answer",
                kind.as_str()
            );
        }
    }
}

#[test]
fn the_header_examples_are_the_shipped_examples_real_signature() {
    let doc = openapi();
    let header = |name: &str| -> String {
        let parameter = &doc["components"]["parameters"][name];
        parameter["example"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no example"))
            .to_owned()
    };
    let events = every_event();
    let shipped = &events[&EventType::OrderShipped];
    let event = WebhookEvent::new(EventType::OrderShipped, shipped, shipped.updated_at);
    let timestamp: i64 = header("WebhookTimestampHeader")
        .parse()
        .expect("webhook-timestamp's example is unix seconds");
    assert_eq!(timestamp, shipped.updated_at.timestamp());
    let secret = WebhookSecret::parse(EXAMPLE_SECRET).expect("the example secret is one");
    let signed = sign(&[secret], &event.id, timestamp, event.body.as_bytes());
    assert_eq!(header("WebhookIdHeader"), signed.id, "webhook-id");
    assert_eq!(
        header("WebhookSignatureHeader"),
        signed.signature,
        "webhook-signature"
    );
    // docs/api.md walks an ERP developer through the same signature, byte for byte.
    let manual = repo::read("docs/api.md");
    for shown in [EXAMPLE_SECRET, &event.body, &signed.id, &signed.signature] {
        assert!(manual.contains(shown), "docs/api.md does not show {shown}");
    }
}
