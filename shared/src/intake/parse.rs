//! The intake rules that are always enforced: what an order must contain to be
//! shippable at all. A violation is a 400 (or a 413 for an oversized label).

use std::num::NonZeroU32;

use super::label::{self, LabelBytes};
use crate::domain::{
    ClientType, Item, LogisticsProvider, Money, Order, OrderNumber, Platform, ProcessType,
    Receiver, Sender, SpecialOrderTag,
};
use crate::error::IntakeError;
use crate::limits::{self, text};
use crate::reader::{Object, Reader, root_object};

/// A parsed order request: what [`super::Intake::accept`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// The order, without its inline label.
    pub order: Order,
    /// `logistics_provider.label_base64`, decoded: the intake puts it in the
    /// label store and records on the order where.
    pub label: Option<LabelBytes>,
    /// `real_time_response`: reject the order when a data-quality check finds a
    /// problem, instead of recording the finding on it.
    pub real_time_response: bool,
}

/// Parses a request body into an order, listing every problem when it
/// cannot: the edge every order passes before the intake use case.
pub fn parse_order(body: &[u8]) -> Result<OrderRequest, IntakeError> {
    if body.len() > limits::MAX_BODY_BYTES {
        return Err(IntakeError::BodyTooLarge {
            size: body.len(),
            limit: limits::MAX_BODY_BYTES,
        });
    }
    let root = root_object(body).map_err(|problem| IntakeError::Invalid(vec![problem]))?;
    let mut r = Reader::default();

    let platform_type = r
        .required_text(&root, "platform_type", text::CODE)
        .map(|value| Platform::parse(&value));
    let tiktok = platform_type == Some(Platform::Tiktok);
    let tiktok_text = |r: &mut Reader, key: &str, max| {
        if tiktok {
            r.text_required_because(&root, key, max, TIKTOK)
        } else {
            r.text(&root, key, max)
        }
    };
    let package_id = tiktok_text(&mut r, "package_id", text::IDENTIFIER);
    let shipping_provider_id = tiktok_text(&mut r, "shipping_provider_id", text::IDENTIFIER);
    let shipping_provider_name = tiktok_text(&mut r, "shipping_provider_name", text::NAME);

    let centre_code = r.required_text(&root, "centre_code", text::CODE);
    let client_code = r.required_text(&root, "client_code", text::CODE);
    let client_type = small_enum::<ClientType>(&mut r, &root, "client_type");
    let special_order_tag = small_enum::<SpecialOrderTag>(&mut r, &root, "special_order_tag");
    let process_type = small_enum::<ProcessType>(&mut r, &root, "process_type").unwrap_or_default();
    let platform_order_number = r.text(&root, "platform_order_number", text::IDENTIFIER);
    let real_time_response = r.boolean(&root, "real_time_response").unwrap_or(false);
    let customer_logistics = r.text(&root, "customer_logistics", text::NAME);
    let desc = r.text(&root, "desc", text::DESC);

    let (logistics_provider, label) = match r.object(&root, "logistics_provider") {
        Some(obj) => {
            let (provider, label) = logistics_provider(&mut r, &obj);
            (Some(provider), label)
        }
        None => (None, None),
    };
    if process_type == ProcessType::HandedOver
        && logistics_provider
            .as_ref()
            .and_then(|p| p.tracking_number.as_ref())
            .is_none()
    {
        r.problem(
            "logistics_provider.tracking_number",
            "is required when process_type is 2 (already handed to the carrier)",
        );
    }

    let order_number = r.required_object(&root, "package").and_then(|package| {
        let value = r.required_text(&package, "order_number", text::IDENTIFIER)?;
        OrderNumber::parse(&value)
            .map_err(|why| r.problem(package.path_of("order_number"), why))
            .ok()
    });
    let receiver = r
        .required_object(&root, "receiver")
        .and_then(|obj| receiver(&mut r, &obj));
    let sender = r.object(&root, "sender").map(|obj| sender(&mut r, &obj));
    let items = items(&mut r, &root, tiktok);

    let problems = r.into_problems();
    match (
        order_number,
        centre_code,
        client_code,
        platform_type,
        receiver,
        items,
    ) {
        (
            Some(order_number),
            Some(centre_code),
            Some(client_code),
            Some(platform_type),
            Some(receiver),
            Some(items),
        ) if problems.is_empty() => Ok(OrderRequest {
            order: Order {
                order_number,
                centre_code,
                client_code,
                client_type,
                special_order_tag,
                platform_type,
                platform_order_number,
                process_type,
                customer_logistics,
                desc,
                package_id,
                shipping_provider_id,
                shipping_provider_name,
                logistics_provider,
                receiver,
                sender,
                items,
            },
            label,
            real_time_response,
        }),
        _ => Err(IntakeError::Invalid(problems)),
    }
}

const TIKTOK: &str = " when platform_type is tiktok";

fn small_enum<T: TryFrom<u8, Error = String>>(
    r: &mut Reader,
    obj: &Object<'_>,
    key: &str,
) -> Option<T> {
    let value = r.integer(obj, key)?;
    // 255 is no variant of any of these enums, so it yields the "must be one of" message.
    T::try_from(u8::try_from(value).unwrap_or(u8::MAX))
        .map_err(|why| r.problem(obj.path_of(key), why))
        .ok()
}

/// The provider, and its inline label decoded (a bad one is listed with the
/// other problems).
fn logistics_provider(r: &mut Reader, obj: &Object<'_>) -> (LogisticsProvider, Option<LabelBytes>) {
    let label =
        r.text(obj, "label_base64", text::BASE64)
            .and_then(|text| match label::decode(&text) {
                Ok(bytes) => Some(LabelBytes(bytes)),
                Err(why) => {
                    r.problem(obj.path_of("label_base64"), why);
                    None
                }
            });
    let label_url = r.text(obj, "label_url", text::URL);
    if let Some(url) = &label_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        r.problem(obj.path_of("label_url"), "must be an http(s) URL");
    }
    let provider = LogisticsProvider {
        code: r.text(obj, "code", text::CODE),
        tracking_number: r.text(obj, "tracking_number", text::IDENTIFIER),
        label_url,
        label: None,
    };
    (provider, label)
}

fn receiver(r: &mut Reader, obj: &Object<'_>) -> Option<Receiver> {
    let name = r.required_text(obj, "name", text::NAME);
    let address = r.required_text(obj, "address", text::ADDRESS);
    let city = r.required_text(obj, "city", text::PLACE);
    let country_code = r.required_text(obj, "country_code", text::COUNTRY_CODE);
    let receiver = Receiver {
        name: name?,
        address: address?,
        city: city?,
        province: r.text(obj, "province", text::PLACE),
        district: r.text(obj, "district", text::PLACE),
        country_code: country_code?,
        post_code: r.text(obj, "post_code", text::POST_CODE),
        phone: r.text(obj, "phone", text::PHONE),
        email: r.text(obj, "email", text::EMAIL),
    };
    Some(receiver)
}

fn sender(r: &mut Reader, obj: &Object<'_>) -> Sender {
    Sender {
        name: r.text(obj, "name", text::NAME),
        address: r.text(obj, "address", text::ADDRESS),
        city: r.text(obj, "city", text::PLACE),
        province: r.text(obj, "province", text::PLACE),
        district: r.text(obj, "district", text::PLACE),
        country_code: r.text(obj, "country_code", text::COUNTRY_CODE),
        post_code: r.text(obj, "post_code", text::POST_CODE),
        phone: r.text(obj, "phone", text::PHONE),
        email: r.text(obj, "email", text::EMAIL),
    }
}

fn items(r: &mut Reader, root: &Object<'_>, tiktok: bool) -> Option<Vec<Item>> {
    let path = root.path_of("items");
    let Some(elements) = r.array_of_objects(root, "items", limits::MAX_ITEMS) else {
        if !r.has_problem_at(&path) {
            r.problem(&path, "is required: an order needs at least one item");
        }
        return None;
    };
    if elements.is_empty() {
        r.problem(&path, "must contain at least one item");
        return None;
    }
    let items: Vec<Option<Item>> = elements
        .into_iter()
        .map(|element| element.and_then(|obj| item(r, &obj, tiktok)))
        .collect();
    items.into_iter().collect()
}

fn item(r: &mut Reader, obj: &Object<'_>, tiktok: bool) -> Option<Item> {
    let sku = r.required_text(obj, "sku", text::IDENTIFIER);
    let qty = match r.integer(obj, "qty") {
        Some(0) => {
            r.problem(obj.path_of("qty"), "must be a positive integer");
            None
        }
        Some(qty) if qty > limits::MAX_QTY => {
            r.problem(
                obj.path_of("qty"),
                format!("must be at most {}", limits::MAX_QTY),
            );
            None
        }
        Some(qty) => NonZeroU32::new(qty),
        None => {
            if !r.has_problem_at(&obj.path_of("qty")) {
                r.problem(obj.path_of("qty"), "is required");
            }
            None
        }
    };
    let unit_price = r.decimal_text(obj, "unit_price").and_then(|text| {
        Money::parse(&text)
            .map_err(|why| r.problem(obj.path_of("unit_price"), why))
            .ok()
    });
    let currency = r.text(obj, "currency", text::CURRENCY);
    let platform_sku_id = if tiktok {
        r.text_required_because(obj, "platform_sku_id", text::IDENTIFIER, TIKTOK)
    } else {
        r.text(obj, "platform_sku_id", text::IDENTIFIER)
    };
    Some(Item {
        sku: sku?,
        qty: qty?,
        unit_price,
        currency: currency.map(|c| c.to_ascii_uppercase()),
        platform_sku_id,
    })
}
