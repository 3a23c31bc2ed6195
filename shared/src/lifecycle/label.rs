//! The warehouse fetches an order's label: `GET …/order/{order_number}/label`.

use std::time::Duration;

use super::LifecycleError;
use crate::auth::Principal;
use crate::domain::{OrderNumber, StoredLabel};
use crate::ports::{Access, LabelStore, OrderStore};

/// How long a label link works.
pub const LINK_TTL: Duration = Duration::from_secs(300);

/// Where the warehouse gets the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelAnswer {
    /// A short-lived link to the stored label.
    Link { url: String, label: StoredLabel },
    /// An order stored before labels moved to the label store keeps it inline.
    Inline(String),
}

/// The label of an order the warehouse `caller` serves; `NotFound` when the
/// order is not theirs, carries no inline label or lost it with its personal data (a `label_url` is the ERP's
/// own link: the order shows it).
pub async fn fetch_label<S: OrderStore, L: LabelStore>(
    store: &S,
    labels: &L,
    caller: &Principal,
    order_number: &str,
) -> Result<LabelAnswer, LifecycleError> {
    let not_found = || LifecycleError::NotFound(order_number.to_owned());
    let number = OrderNumber::parse(order_number).map_err(|_| not_found())?;
    let record = store
        .get(&number, Access::Scope(&caller.scope))
        .await?
        .into_found()
        .ok_or_else(not_found)?;
    if record.redacted_at.is_some() {
        // Deleted with the order's personal data: the label prints the address.
        return Err(not_found());
    }
    let provider = record.order.logistics_provider.ok_or_else(not_found)?;
    if let Some(label) = provider.label {
        let url = labels.label_link(&label.key, LINK_TTL).await?;
        return Ok(LabelAnswer::Link { url, label });
    }
    provider
        .label_base64
        .map(LabelAnswer::Inline)
        .ok_or_else(not_found)
}
