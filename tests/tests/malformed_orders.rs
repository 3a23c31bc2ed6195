//! Bad input never gets a 500 and never writes: every malformed body gets a 4xx
//! that names the field at fault, and the table stays empty.

use integration_tests::{SAMPLE_ORDER_AS_PUBLISHED, TestApp, sample_order};
use serde_json::{Value, json};

/// How a case builds its request from the valid sample.
enum Body {
    /// The sample with `edit` applied.
    Edited(fn(&mut Value)),
    /// These exact bytes.
    Raw(Vec<u8>),
}

struct Case {
    name: &'static str,
    body: Body,
    content_type: Option<&'static str>,
    status: u16,
    /// The JSON path `data.errors` must name (400/422 only).
    field: Option<&'static str>,
}

fn case(name: &'static str, edit: fn(&mut Value), field: &'static str) -> Case {
    Case {
        name,
        body: Body::Edited(edit),
        content_type: Some("application/json"),
        status: 400,
        field: Some(field),
    }
}

fn raw(
    name: &'static str,
    bytes: impl Into<Vec<u8>>,
    status: u16,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        body: Body::Raw(bytes.into()),
        content_type: Some("application/json"),
        status,
        field,
    }
}

fn remove(order: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    order
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("an object")
        .remove(key);
}

fn set(order: &mut Value, pointer: &str, value: Value) {
    if let Some(existing) = order.pointer_mut(pointer) {
        *existing = value;
        return;
    }
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    order
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("an object")
        .insert(key.to_owned(), value);
}

fn cases() -> Vec<Case> {
    vec![
        raw(
            "the spec sample as published",
            SAMPLE_ORDER_AS_PUBLISHED,
            400,
            Some("$"),
        ),
        raw("an empty body", "", 400, Some("$")),
        raw("plain text", "hello", 400, Some("$")),
        raw("a JSON array", "[]", 400, Some("$")),
        raw("a JSON string", "\"order\"", 400, Some("$")),
        raw("a JSON null", "null", 400, Some("$")),
        raw(
            "invalid UTF-8",
            vec![b'{', 0xff, 0xfe, b'}'],
            400,
            Some("$"),
        ),
        raw(
            "truncated JSON",
            r#"{"centre_code": "mabang", "items": [{"#,
            400,
            Some("$"),
        ),
        raw(
            "a body over the limit",
            vec![b' '; 6 * 1024 * 1024],
            413,
            None,
        ),
        case(
            "no centre_code",
            |o| remove(o, "/centre_code"),
            "centre_code",
        ),
        case(
            "a numeric centre_code",
            |o| set(o, "/centre_code", json!(7)),
            "centre_code",
        ),
        case(
            "no client_code",
            |o| remove(o, "/client_code"),
            "client_code",
        ),
        case(
            "no platform_type",
            |o| remove(o, "/platform_type"),
            "platform_type",
        ),
        case(
            "client_type 7",
            |o| set(o, "/client_type", json!(7)),
            "client_type",
        ),
        case(
            "client_type as a string",
            |o| set(o, "/client_type", json!("2")),
            "client_type",
        ),
        case(
            "process_type 9",
            |o| set(o, "/process_type", json!(9)),
            "process_type",
        ),
        case(
            "special_order_tag 0",
            |o| set(o, "/special_order_tag", json!(0)),
            "special_order_tag",
        ),
        case(
            "real_time_response \"yes\"",
            |o| set(o, "/real_time_response", json!("yes")),
            "real_time_response",
        ),
        case("no package", |o| remove(o, "/package"), "package"),
        case(
            "package as a string",
            |o| set(o, "/package", json!("p")),
            "package",
        ),
        case(
            "an order_number with a slash",
            |o| set(o, "/package/order_number", json!("a/b")),
            "package.order_number",
        ),
        case(
            "an order_number with a space",
            |o| set(o, "/package/order_number", json!("a b")),
            "package.order_number",
        ),
        case(
            "an empty order_number",
            |o| set(o, "/package/order_number", json!("")),
            "package.order_number",
        ),
        case(
            "an order_number of 101 characters",
            |o| set(o, "/package/order_number", json!("a".repeat(101))),
            "package.order_number",
        ),
        case("no receiver", |o| remove(o, "/receiver"), "receiver"),
        case(
            "no receiver.country_code",
            |o| remove(o, "/receiver/country_code"),
            "receiver.country_code",
        ),
        case(
            "an empty receiver.name",
            |o| set(o, "/receiver/name", json!("")),
            "receiver.name",
        ),
        case(
            "a blank receiver.city",
            |o| set(o, "/receiver/city", json!("   ")),
            "receiver.city",
        ),
        case(
            "a 501-character address",
            |o| set(o, "/receiver/address", json!("x".repeat(501))),
            "receiver.address",
        ),
        case(
            "sender as an array",
            |o| set(o, "/sender", json!([])),
            "sender",
        ),
        case("no items", |o| remove(o, "/items"), "items"),
        case("empty items", |o| set(o, "/items", json!([])), "items"),
        case(
            "items as an object",
            |o| set(o, "/items", json!({})),
            "items",
        ),
        case(
            "an item that is a string",
            |o| set(o, "/items/0", json!("sku")),
            "items[0]",
        ),
        case(
            "qty 0",
            |o| set(o, "/items/0/qty", json!(0)),
            "items[0].qty",
        ),
        case(
            "a negative qty",
            |o| set(o, "/items/0/qty", json!(-1)),
            "items[0].qty",
        ),
        case(
            "a fractional qty",
            |o| set(o, "/items/1/qty", json!(1.5)),
            "items[1].qty",
        ),
        case(
            "qty as a string",
            |o| set(o, "/items/0/qty", json!("1")),
            "items[0].qty",
        ),
        case("no qty", |o| remove(o, "/items/1/qty"), "items[1].qty"),
        case("no sku", |o| remove(o, "/items/0/sku"), "items[0].sku"),
        case(
            "unit_price \"abc\"",
            |o| set(o, "/items/1/unit_price", json!("abc")),
            "items[1].unit_price",
        ),
        case(
            "a negative unit_price",
            |o| set(o, "/items/1/unit_price", json!(-5)),
            "items[1].unit_price",
        ),
        case(
            "unit_price true",
            |o| set(o, "/items/0/unit_price", json!(true)),
            "items[0].unit_price",
        ),
        case(
            "unit_price in exponent notation",
            |o| set(o, "/items/0/unit_price", json!(1e300)),
            "items[0].unit_price",
        ),
        case(
            "tiktok without package_id",
            |o| remove(o, "/package_id"),
            "package_id",
        ),
        case(
            "tiktok without shipping_provider_id",
            |o| set(o, "/shipping_provider_id", json!("")),
            "shipping_provider_id",
        ),
        case(
            "tiktok without platform_sku_id",
            |o| remove(o, "/items/1/platform_sku_id"),
            "items[1].platform_sku_id",
        ),
        case(
            "201 items",
            |o| {
                let item = o["items"][0].clone();
                set(o, "/items", Value::Array(vec![item; 201]));
            },
            "items",
        ),
        case(
            "an ftp label_url",
            |o| {
                set(
                    o,
                    "/logistics_provider/label_url",
                    json!("ftp://x/label.pdf"),
                )
            },
            "logistics_provider.label_url",
        ),
        case(
            "label_base64 that is not base64",
            |o| set(o, "/logistics_provider/label_base64", json!("<pdf>")),
            "logistics_provider.label_base64",
        ),
        case(
            "process_type 2 without a tracking number",
            |o| {
                set(o, "/process_type", json!(2));
                remove(o, "/logistics_provider/tracking_number");
            },
            "logistics_provider.tracking_number",
        ),
        case(
            "a 1001-character desc",
            |o| set(o, "/desc", json!("x".repeat(1001))),
            "desc",
        ),
        case(
            "a 101-character tracking number",
            |o| {
                set(
                    o,
                    "/logistics_provider/tracking_number",
                    json!("x".repeat(101)),
                )
            },
            "logistics_provider.tracking_number",
        ),
        Case {
            name: "text/plain",
            body: Body::Edited(|_| {}),
            content_type: Some("text/plain"),
            status: 415,
            field: None,
        },
        Case {
            name: "no content type",
            body: Body::Edited(|_| {}),
            content_type: None,
            status: 415,
            field: None,
        },
    ]
}

#[tokio::test]
async fn every_malformed_body_gets_a_4xx_naming_its_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let cases = cases();
    assert!(cases.len() >= 30);

    let mut failures = Vec::new();
    for case in &cases {
        let bytes = match &case.body {
            Body::Edited(edit) => {
                let mut order = sample_order();
                edit(&mut order);
                serde_json::to_vec(&order).expect("JSON")
            }
            Body::Raw(bytes) => bytes.clone(),
        };
        let reply = app.post_raw(bytes, case.content_type).await;
        let fields = reply.error_fields();
        let right_status = reply.status == case.status;
        let right_field = case
            .field
            .is_none_or(|field| fields.iter().any(|f| f == field));
        let enveloped =
            reply.body["code"] == json!(reply.status) && reply.body["message"].is_string();
        if !(right_status && right_field && enveloped) {
            failures.push(format!(
                "{}: expected {} naming {:?}, got {} {}",
                case.name, case.status, case.field, reply.status, reply.body
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        app.stored_items().await.is_empty(),
        "a rejected body was written"
    );
}

/// The sample with the JSON text `value` (escapes and all) put at `items[0]`'s `key`.
fn with_item_text(key: &str, value: &str) -> Vec<u8> {
    let mut order = sample_order();
    order["items"][0][key] = json!("PLACEHOLDER");
    serde_json::to_string(&order)
        .expect("JSON")
        .replace("\"PLACEHOLDER\"", value)
        .into_bytes()
}

#[tokio::test]
async fn a_lone_surrogate_is_a_400_naming_the_field_not_a_null() {
    let app = TestApp::spawn().await;

    let price = app
        .post_raw(
            with_item_text("unit_price", r#""\ud800""#),
            Some("application/json"),
        )
        .await;
    let sku = app
        .post_raw(
            with_item_text("sku", r#""a\udfffb""#),
            Some("application/json"),
        )
        .await;

    assert_eq!(price.status, 400, "{}", price.body);
    assert_eq!(price.error_fields(), ["items[0].unit_price"]);
    assert_eq!(sku.status, 400, "{}", sku.body);
    assert_eq!(sku.error_fields(), ["items[0].sku"]);
    assert!(app.stored_items().await.is_empty());
}

#[tokio::test]
async fn control_bidi_and_invisible_identifiers_are_refused() {
    let app = TestApp::spawn().await;

    for value in [
        r#""a\u0000b""#,
        r#""abc\u202etxt.exe""#,
        r#""\u200b""#,
        r#""a\u009bb""#,
    ] {
        let reply = app
            .post_raw(with_item_text("sku", value), Some("application/json"))
            .await;
        assert_eq!(reply.status, 400, "{value}: {}", reply.body);
        assert_eq!(reply.error_fields(), ["items[0].sku"], "{value}");
    }
    assert!(app.stored_items().await.is_empty());
}
