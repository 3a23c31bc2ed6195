//! The warehouse fetches an order's label: `GET …/order/{order_number}/label`.

use std::time::Duration;

use super::LifecycleError;
use crate::auth::Principal;
use crate::domain::{OrderNumber, StoredLabel};
use crate::ports::{Access, LabelStore, OrderStore};

/// How long a label link works.
pub const LINK_TTL: Duration = Duration::from_secs(300);

/// Where the warehouse gets the label: a short-lived link to the stored label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelLink {
    pub url: String,
    pub label: StoredLabel,
}

/// The label of an order the warehouse `caller` serves; `NotFound` when the
/// order is not theirs, carries no inline label or lost it with its personal data (a `label_url` is the ERP's
/// own link: the order shows it).
pub async fn fetch_label<S: OrderStore, L: LabelStore>(
    store: &S,
    labels: &L,
    caller: &Principal,
    order_number: &str,
) -> Result<LabelLink, LifecycleError> {
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
    let label = record
        .order
        .logistics_provider
        .and_then(|provider| provider.label)
        .ok_or_else(not_found)?;
    let url = labels.label_link(&label.key, LINK_TTL).await?;
    Ok(LabelLink { url, label })
}
