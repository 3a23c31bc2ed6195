//! Data-quality checks: problems that do not stop a warehouse from shipping but
//! that someone should look at. With `real_time_response: true` they reject the
//! order (422); otherwise they are recorded on it (`status_message`).

use crate::config::Warehouses;
use crate::domain::iso_codes::{is_country_code, is_currency_code};
use crate::domain::{CallbackPlatform, Order, Platform};
use crate::error::FieldError;

/// Every finding about `order` that needs no I/O.
#[must_use]
pub fn check(order: &Order, warehouses: &Warehouses) -> Vec<FieldError> {
    let mut findings = Vec::new();
    let mut note = |field: &str, message: String| findings.push(FieldError::new(field, message));

    // The configured warehouses are not the client's business: not listed.
    if warehouses.get(&order.centre_code).is_none() {
        note(
            "centre_code",
            format!(
                "unknown warehouse \"{}\"; ask the warehouse for its centre_code",
                order.centre_code
            ),
        );
    }
    if let Platform::Other(other) = &order.platform_type {
        note(
            "platform_type",
            format!("\"{other}\" is not one of shopee, lazada, tiktok, tokopedia, temu, ebay"),
        );
    }
    let receiver = &order.receiver;
    country(
        &mut note,
        "receiver.country_code",
        Some(&receiver.country_code),
    );
    email(&mut note, "receiver.email", receiver.email.as_deref());
    phone(&mut note, "receiver.phone", receiver.phone.as_deref());
    if let Some(sender) = &order.sender {
        country(
            &mut note,
            "sender.country_code",
            sender.country_code.as_deref(),
        );
        email(&mut note, "sender.email", sender.email.as_deref());
        phone(&mut note, "sender.phone", sender.phone.as_deref());
    }
    for (index, item) in order.items.iter().enumerate() {
        match &item.currency {
            Some(currency) if !is_currency_code(currency) => note(
                &format!("items[{index}].currency"),
                format!("\"{currency}\" is not an ISO 4217 currency code"),
            ),
            None if item.unit_price.is_some() => note(
                &format!("items[{index}].currency"),
                "is needed to make sense of unit_price".into(),
            ),
            _ => {}
        }
    }
    if let Some(platform) = order.platform_type.callback() {
        callback_needs(&mut note, order, platform);
    }
    findings
}

/// What the platform callback (spec 001) will need that the order lacks. The
/// shipping data (fee, size, weight) comes later, from the warehouse.
fn callback_needs(note: &mut impl FnMut(&str, String), order: &Order, platform: CallbackPlatform) {
    let name = platform.code();
    if order.platform_order_number.is_none() {
        note(
            "platform_order_number",
            format!("the {name} shipment callback reports it as OrderId; it is missing"),
        );
    }
    if platform == CallbackPlatform::EBay && order.shipping_provider_name.is_none() {
        note(
            "shipping_provider_name",
            "the eBay shipment callback requires ShippingProviderName; it is missing".into(),
        );
    }
    if platform != CallbackPlatform::TikTok {
        for (index, item) in order.items.iter().enumerate() {
            if item.platform_sku_id.is_none() {
                note(
                    &format!("items[{index}].platform_sku_id"),
                    format!("the {name} shipment callback reports it as SkuId; it is missing"),
                );
            }
        }
    }
}

fn country(note: &mut impl FnMut(&str, String), field: &str, code: Option<&str>) {
    if let Some(code) = code
        && !is_country_code(code)
    {
        note(
            field,
            format!("\"{code}\" is not an ISO 3166-1 alpha-2 country code"),
        );
    }
}

fn email(note: &mut impl FnMut(&str, String), field: &str, email: Option<&str>) {
    if let Some(email) = email
        && !looks_like_email(email)
    {
        note(field, "is not a valid email address".into());
    }
}

fn phone(note: &mut impl FnMut(&str, String), field: &str, phone: Option<&str>) {
    if let Some(phone) = phone
        && !looks_like_phone(phone)
    {
        note(
            field,
            "is not a phone number (6 to 20 digits, optionally with + - ( ) . and spaces)".into(),
        );
    }
}

/// `local@domain.tld` with no spaces: what carriers accept, without pretending
/// to implement RFC 5322.
fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    !local.is_empty() && !local.chars().any(char::is_whitespace) && domain_ok
}

fn looks_like_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (6..=20).contains(&digits)
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(looks_like_email("mabang@qq.com"));
        assert!(!looks_like_email("寄件人Email"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("a b@c.com"));
        assert!(!looks_like_email("@c.com"));
    }

    #[test]
    fn phones_need_six_to_twenty_digits() {
        assert!(looks_like_phone("+34 655549503"));
        assert!(looks_like_phone("(02) 8123-4567"));
        assert!(!looks_like_phone("寄件人手机"));
        assert!(!looks_like_phone("12345"));
    }

    #[test]
    fn an_unknown_centre_names_no_configured_warehouse() {
        let warehouses = Warehouses::from_json(
            r#"{"secret-site": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
        )
        .unwrap();
        let sample = include_str!("../../../tests/fixtures/spec-000-sample.json").replace(
            r#""centre_code": "mabang""#,
            r#""centre_code": "elsewhere""#,
        );
        let order = crate::intake::parse_order(sample.as_bytes()).unwrap().order;
        let findings = check(&order, &warehouses);
        let centre = findings.iter().find(|f| f.field == "centre_code").unwrap();
        assert!(centre.message.contains("elsewhere"), "{}", centre.message);
        assert!(
            !centre.message.contains("secret-site"),
            "{}",
            centre.message
        );
    }
}
