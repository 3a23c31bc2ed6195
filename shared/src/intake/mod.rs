//! Order intake (spec 000): parse, check, store once, answer.
//!
//! The handler parses the body first ([`parse_order`], the edge: every
//! intake rule, every problem listed); [`Intake`] takes the typed
//! [`OrderRequest`] and never sees bytes.

pub mod findings;
pub mod label;
mod parse;

pub use label::LabelBytes;
pub use parse::{OrderRequest, parse_order};

use crate::auth::Principal;
use crate::config::Warehouses;
use crate::domain::{Order, OrderNumber, StoredLabel};
use crate::error::{FieldError, IntakeError, StoreError};
use crate::lifecycle::LifecycleError;
use crate::lifecycle::personal_data::{Erased, erase};
use crate::ports::{Access, Clock, Insert, LabelStore, Lookup, OrderStore};
use crate::record::OrderRecord;
use crate::update::{Change, update_order};

/// What became of an accepted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now (201).
    Created(OrderRecord),
    /// The identical order was already stored; nothing was written (200).
    Replayed(OrderRecord),
}

/// The intake use cases over an order store. An order that arrives already
/// handed to the carrier is stored with its callback due, and the store's
/// outbox sends the callback message with that write.
#[derive(Debug)]
pub struct Intake<S, L, C> {
    store: S,
    labels: L,
    warehouses: Warehouses,
    clock: C,
}

impl<S: OrderStore, L: LabelStore, C: Clock> Intake<S, L, C> {
    pub fn new(store: S, labels: L, warehouses: Warehouses, clock: C) -> Self {
        Self {
            store,
            labels,
            warehouses,
            clock,
        }
    }

    /// Accepts a parsed order request from `caller`: stores it once, or
    /// explains every reason it cannot. Its `client_code` must be the caller's.
    pub async fn accept(
        &self,
        caller: &Principal,
        request: OrderRequest,
    ) -> Result<Accepted, IntakeError> {
        let OrderRequest {
            mut order,
            label,
            real_time_response,
        } = request;
        if caller.client_code() != Some(order.client_code.as_str()) {
            return Err(IntakeError::ForeignClient {
                body: order.client_code,
            });
        }
        if !caller.may_number(order.order_number.as_str()) {
            return Err(IntakeError::Invalid(vec![FieldError::new(
                "package.order_number",
                format!(
                    "must start with one of this API key's order-number prefixes: {}",
                    caller.order_prefixes.join(", ")
                ),
            )]));
        }
        let mut findings = findings::check(&order, &self.warehouses);
        if real_time_response {
            // Every finding refuses the order, so the duplicate check must come first.
            if let Some(finding) = self.duplicate_platform_order(&order).await? {
                findings.push(finding);
            }
            if !findings.is_empty() {
                return Err(IntakeError::Unprocessable(findings));
            }
            let label = label.map(|bytes| place_label(&mut order, bytes));
            let record = OrderRecord::accept(order, findings, self.clock.now());
            let inserted = match label {
                None => self.store.insert_new(&record).await?,
                Some(label) => self.insert_with_label(caller, &record, label).await?,
            };
            return self.answer(record, inserted).await;
        }

        let label = label.map(|bytes| place_label(&mut order, bytes));
        let mut record = OrderRecord::accept(order, findings, self.clock.now());
        // A finding is only recorded here, so the duplicate check (an index
        // query) runs beside the write instead of before it: one round trip
        // of latency instead of two.
        let (inserted, duplicate) = match label {
            None => {
                let (inserted, duplicate) = tokio::join!(
                    self.store.insert_new(&record),
                    self.duplicate_platform_order(&record.order)
                );
                (inserted.map_err(IntakeError::from), duplicate)
            }
            Some(label) => tokio::join!(
                self.insert_with_label(caller, &record, label),
                self.duplicate_platform_order(&record.order)
            ),
        };
        let mut inserted = inserted?;
        let duplicate = duplicate.unwrap_or_else(|err| {
            tracing::warn!(order_number = %record.order.order_number, error = %err,
                "duplicate-order check failed; the order is answered without it");
            None
        });
        if let Some(finding) = duplicate {
            match &mut inserted {
                Insert::Inserted => self.record_finding(&mut record, finding).await,
                // The retry of a request whose first try was stored but whose
                // finding was not (a timeout or crash in between): add it now.
                Insert::AlreadyExists(stored)
                    if stored.same_request_as(&record)
                        && !stored.findings.iter().any(|f| f.field == finding.field) =>
                {
                    self.record_finding(stored, finding).await;
                }
                Insert::AlreadyExists(_) => {}
            }
        }
        self.answer(record, inserted).await
    }

    /// Stores an order that carries an inline label. The label goes to the
    /// label store only for a create that will be accepted, and before the
    /// order, so an accepted order never lacks its label: a number already
    /// taken (another client's, or this client's with other content) or a
    /// replay is answered from the stored order without a write; a create
    /// that loses the race for the number after all removes what it put.
    async fn insert_with_label(
        &self,
        caller: &Principal,
        record: &OrderRecord,
        label: InlineLabel,
    ) -> Result<Insert, IntakeError> {
        let number = &record.order.order_number;
        match self.store.get(number, Access::Scope(&caller.scope)).await? {
            Lookup::Foreign => return Err(self.number_taken(record)),
            // A replay or a conflict, answered as one by `answer`.
            Lookup::Found(stored) => return Ok(Insert::AlreadyExists(stored)),
            Lookup::Missing => {}
        }
        self.labels
            .put_label(&label.stored.key, label.bytes, &label.stored.sha256)
            .await?;
        let inserted = self.store.insert_new(record).await?;
        if let Insert::AlreadyExists(stored) = &inserted {
            let theirs = stored
                .order
                .logistics_provider
                .as_ref()
                .and_then(|provider| provider.label.as_ref());
            if theirs.map(|l| &l.key) != Some(&label.stored.key)
                && let Err(err) = self.labels.delete_label(&label.stored.key).await
            {
                // The bucket's lifecycle rule removes it in the end.
                tracing::warn!(order_number = %number, error = %err,
                    "the label of a create that lost its number was not deleted");
            }
        }
        Ok(inserted)
    }

    /// Said when the number is another client's, without comparing anything;
    /// operators are told (the handler counts `Metric::OrderNumberCollision`).
    fn number_taken(&self, record: &OrderRecord) -> IntakeError {
        tracing::warn!(
            order_number = %record.order.order_number,
            client_code = %record.order.client_code,
            "order number collision between clients"
        );
        IntakeError::NumberTaken(record.order.order_number.clone())
    }

    /// The answer to an insert: created, replayed, or in conflict with the
    /// stored order.
    async fn answer(&self, record: OrderRecord, inserted: Insert) -> Result<Accepted, IntakeError> {
        match inserted {
            Insert::Inserted => {
                tracing::info!(order_number = %record.order.order_number, "order accepted");
                Ok(Accepted::Created(record))
            }
            Insert::AlreadyExists(stored) if stored.same_request_as(&record) => {
                tracing::info!(order_number = %record.order.order_number, "identical order replayed");
                Ok(Accepted::Replayed(*stored))
            }
            // Numbers are shared by all clients (spec 000 keys orders by
            // order_number): say only that it is taken.
            Insert::AlreadyExists(stored)
                if stored.order.client_code != record.order.client_code =>
            {
                Err(self.number_taken(&record))
            }
            Insert::AlreadyExists(_) => {
                tracing::warn!(order_number = %record.order.order_number, "conflicting order refused");
                Err(IntakeError::Conflict(record.order.order_number))
            }
        }
    }

    /// Adds a finding to an order just stored; `record` becomes the saved
    /// order. The order is accepted either way: if this write fails, only the
    /// hint is lost (and logged), and the answer does not show it.
    async fn record_finding(&self, record: &mut OrderRecord, finding: FieldError) {
        let number = record.order.order_number.clone();
        let saved = update_order(&self.store, &number, Access::Service, |stored| {
            stored.findings.push(finding.clone());
            // The store may keep the findings with the request.
            stored.rewrite_request = true;
            Ok::<_, StoreError>(Change::Save(()))
        })
        .await;
        match saved {
            Ok(Some((saved, ()))) => *record = saved,
            Ok(None) => tracing::warn!(order_number = %number,
                "the order vanished before its duplicate-order finding was recorded"),
            Err(err) => tracing::warn!(order_number = %number, error = %err,
                "duplicate-order finding not recorded on the stored order"),
        }
    }

    /// The stored order, if `caller` may see it.
    pub async fn get(
        &self,
        caller: &Principal,
        order_number: &str,
    ) -> Result<OrderRecord, IntakeError> {
        let not_found = || IntakeError::NotFound(order_number.to_owned());
        // A number that cannot be valid cannot be stored either.
        let number = OrderNumber::parse(order_number).map_err(|_| not_found())?;
        self.store
            .get(&number, Access::Scope(&caller.scope))
            .await?
            .into_found()
            .ok_or_else(not_found)
    }

    /// The caller erases the personal data of one of its orders, label
    /// included (`crate::lifecycle::personal_data::erase`).
    pub async fn erase_personal_data(
        &self,
        caller: &Principal,
        order_number: &str,
    ) -> Result<(OrderRecord, Erased), LifecycleError> {
        erase(
            &self.store,
            &self.labels,
            Access::Scope(&caller.scope),
            order_number,
            self.clock.now(),
        )
        .await
    }

    /// The same marketplace order already sent under another order number. The
    /// index is eventually consistent, so two such orders racing each other may
    /// both pass: this is a data-quality hint, not a uniqueness guarantee.
    async fn duplicate_platform_order(
        &self,
        order: &Order,
    ) -> Result<Option<FieldError>, IntakeError> {
        let Some(key) = order.client_platform_order_key() else {
            return Ok(None);
        };
        let others: Vec<String> = self
            .store
            .orders_with_platform_order(&key)
            .await?
            .into_iter()
            .filter(|number| *number != order.order_number)
            .map(|number| number.to_string())
            .collect();
        Ok((!others.is_empty()).then(|| {
            FieldError::new(
                "platform_order_number",
                format!(
                    "client {} already sent this marketplace order as {}",
                    order.client_code,
                    others.join(", ")
                ),
            )
        }))
    }
}

/// An inline label taken out of the order: its bytes, and what the order
/// keeps of it.
struct InlineLabel {
    stored: StoredLabel,
    bytes: Vec<u8>,
}

/// Records on `order` where its inline label will be stored, its size and its
/// SHA-256 (so the same label again is the same request, and another label a
/// conflicting one).
fn place_label(order: &mut Order, LabelBytes(bytes): LabelBytes) -> InlineLabel {
    let stored = label::describe(&order.order_number, &bytes);
    order.logistics_provider.get_or_insert_default().label = Some(stored.clone());
    InlineLabel { stored, bytes }
}

#[cfg(test)]
mod tests;
