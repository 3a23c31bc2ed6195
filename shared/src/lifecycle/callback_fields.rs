//! The body of `POST /apicenter/api/order/{order_number}/callback/fields`:
//! callback fields the ERP supplies for an order that lacked them.
//!
//! ```json
//! {"shipping_provider_id": "…", "shipping_provider_name": "…",
//!  "items": [{"sku": "A-1", "platform_sku_id": "…"}]}
//! ```

use crate::error::FieldError;
use crate::limits::{MAX_ITEMS, text};
use crate::reader::{Reader, root_object};
use crate::record::CallbackFields;

/// Parses the body, listing every problem; at least one field must be given.
pub fn parse_callback_fields(body: &[u8]) -> Result<CallbackFields, Vec<FieldError>> {
    let root = root_object(body).map_err(|problem| vec![problem])?;
    let mut r = Reader::default();
    let mut fields = CallbackFields {
        shipping_provider_id: r.text(&root, "shipping_provider_id", text::IDENTIFIER),
        shipping_provider_name: r.text(&root, "shipping_provider_name", text::NAME),
        ..CallbackFields::default()
    };
    if let Some(items) = r.array_of_objects(&root, "items", MAX_ITEMS) {
        for item in items.iter().flatten() {
            let sku = r.required_text(item, "sku", text::IDENTIFIER);
            let id = r.required_text(item, "platform_sku_id", text::IDENTIFIER);
            if let (Some(sku), Some(id)) = (sku, id) {
                fields.platform_sku_ids.insert(sku, id);
            }
        }
    }
    let mut problems = r.into_problems();
    if problems.is_empty() && fields.is_empty() {
        problems.push(FieldError::new(
            "$",
            "give at least one of shipping_provider_id, shipping_provider_name, items",
        ));
    }
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_and_an_empty_body_is_refused() {
        let problems = parse_callback_fields(
            br#"{"shipping_provider_id": 7, "items": [{"sku": "A"}, {"platform_sku_id": "x"}]}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "shipping_provider_id",
                "items[0].platform_sku_id",
                "items[1].sku"
            ]
        );
        assert_eq!(parse_callback_fields(b"{}").unwrap_err()[0].field, "$");
    }

    #[test]
    fn supplied_fields_are_read() {
        let fields = parse_callback_fields(
            br#"{"shipping_provider_name": "USPS", "items": [{"sku": "A", "platform_sku_id": "9"}]}"#,
        )
        .unwrap();
        assert_eq!(fields.shipping_provider_name.as_deref(), Some("USPS"));
        assert_eq!(fields.platform_sku_ids["A"], "9");
    }

    #[test]
    fn a_sku_as_long_as_an_order_allows_can_be_given_its_platform_sku_id() {
        let sku = "S".repeat(crate::limits::text::IDENTIFIER.max_chars);
        let body = format!(r#"{{"items": [{{"sku": "{sku}", "platform_sku_id": "9"}}]}}"#);

        let fields = parse_callback_fields(body.as_bytes()).unwrap();

        assert_eq!(fields.platform_sku_ids[&sku], "9");
    }

    #[test]
    fn a_body_of_thousands_of_wrong_items_is_one_problem() {
        let body = format!(r#"{{"items": [{}{{}}]}}"#, "{},".repeat(5_000));

        let problems = parse_callback_fields(body.as_bytes()).unwrap_err();

        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "items");
        assert!(
            problems[0]
                .message
                .contains("at most 200 entries, got 5001")
        );
    }
}
