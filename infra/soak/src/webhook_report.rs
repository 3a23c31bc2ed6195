//! The webhooks' reconciliation: every event the stack logged for the soak's
//! client against what the ERP received and what the delivery items
//! recorded, and each order's events against the order as the API shows it.
//!
//! - **lost**: a logged event the ERP never processed verified, or an event
//!   the order's final state implies (accepted, its final status, its
//!   callback's outcome) that was never logged;
//! - **after a recorded success**: a post the ERP received after the
//!   delivering post of a delivered item ended (its record follows that
//!   moment, so this over-counts rather than under-counts), and posts beyond
//!   the item's count of claimed posts;
//! - **order**: docs/webhooks.md promises `data.sequence` grows with the
//!   order's writes and that a receiver keeping the highest one per order
//!   ends with the order's state: no two writes share a sequence, the
//!   statuses rise with it, and the highest-sequence event of each kind
//!   names the order's final status and callback outcome.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::erp::{ErpAnswer, Receipt};
use crate::webhook_log::{DeliveryItem, DeliveryState, LoggedEvent};

/// Everything the reconciliation reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub events: &'a [LoggedEvent],
    pub deliveries: &'a [DeliveryItem],
    pub receipts: &'a [Receipt],
    /// The soak's orders as the API finally shows them, by number.
    pub views: &'a HashMap<String, Value>,
    /// When the service was SIGKILLed.
    pub kills: &'a [DateTime<Utc>],
    /// When a delivery's store call failed, by event id ([`store_failures`]).
    pub store_failures: &'a HashMap<String, Vec<DateTime<Utc>>>,
    /// The endpoint is still enabled at the end.
    pub endpoint_enabled: bool,
    pub drained: bool,
    pub drain_time: Duration,
}

/// The webhooks' figures.
#[derive(Debug, Default, Clone)]
pub struct WebhookFigures {
    pub events_logged: usize,
    pub deliveries: usize,
    pub delivered: usize,
    pub failed: usize,
    pub pending: usize,
    pub receipts: usize,
    pub receipts_by_answer: Vec<(&'static str, usize)>,
    pub lost: usize,
    pub missing_from_log: usize,
    pub without_delivery: usize,
    pub unknown_received: usize,
    pub unverified: usize,
    pub after_success: usize,
    pub beyond_posts: usize,
    pub repeated_after_late: usize,
    pub repeated_after_crash: usize,
    pub repeated_after_failed_record: usize,
    pub repeated_unexplained: usize,
    pub shared_sequences: usize,
    pub out_of_step: usize,
    pub final_view_wrong: usize,
    pub arrived_out_of_order: usize,
    /// From the write to the ERP's first processed receipt (ms): p50, p95,
    /// p99, max.
    pub latency_ms: [u64; 4],
    pub endpoint_enabled: bool,
    pub drained: bool,
    pub drain_time: Duration,
    pub samples: Vec<String>,
}

/// How far along an order the event's status is (order events only).
fn rank(event_type: &str) -> Option<u8> {
    Some(match event_type {
        "order.accepted" => 0,
        "order.allocated" | "order.short" => 1,
        "order.picked" => 2,
        "order.packed" => 3,
        "order.shipped" => 4,
        "order.handed_over" => 5,
        "order.cancelled" => 6,
        _ => return None,
    })
}

/// The events an order's final state implies were logged.
fn implied(view: &Value) -> Vec<String> {
    let mut kinds = vec!["order.accepted".to_owned()];
    match view["status"].as_str() {
        Some("pending") | None => {}
        Some("shortage") => kinds.push("order.short".into()),
        Some(status) => kinds.push(format!("order.{status}")),
    }
    if let Some(status @ ("delivered" | "failed" | "dead_lettered")) =
        view["callback"]["status"].as_str()
    {
        kinds.push(format!("callback.{status}"));
    }
    kinds
}

/// The event type a receiver that keeps the highest sequence per order sees
/// last among those named `prefix…`, as the order shows it.
fn final_kind(view: &Value, prefix: &str) -> Option<String> {
    implied(view)
        .into_iter()
        .rfind(|kind| kind.starts_with(prefix) && kind != "order.accepted")
}

/// The webhook dispatcher's store failures in the service log, by event
/// id: `<time> ERROR webhook_dispatch: webhook store failure; … event=<entry>
/// …`, the entry ending `#<event id>`.
pub fn store_failures(service_log: &str) -> HashMap<String, Vec<DateTime<Utc>>> {
    let mut failures: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for line in service_log
        .lines()
        .filter(|line| line.contains("webhook store failure"))
    {
        let mut words = line.split_whitespace();
        let Some(at) = words
            .next()
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
        else {
            continue;
        };
        let Some(id) = words
            .find_map(|word| word.strip_prefix("event="))
            .and_then(|entry| entry.rsplit('#').next())
        else {
            continue;
        };
        failures
            .entry(id.to_owned())
            .or_default()
            .push(at.with_timezone(&Utc));
    }
    failures
}

/// Whether the delivery items and the log have caught up with the orders:
/// every implied event logged, every logged event with a delivery item, and
/// none of them pending.
pub fn settled(
    events: &[LoggedEvent],
    deliveries: &[DeliveryItem],
    views: &HashMap<String, Value>,
) -> bool {
    let logged: HashSet<(&str, &str)> = events
        .iter()
        .map(|event| (event.order_number.as_str(), event.event_type.as_str()))
        .collect();
    let items: HashSet<&str> = deliveries.iter().map(|d| d.event_id.as_str()).collect();
    views.iter().all(|(number, view)| {
        implied(view)
            .iter()
            .all(|kind| logged.contains(&(number.as_str(), kind.as_str())))
    }) && events.iter().all(|event| items.contains(event.id.as_str()))
        && deliveries
            .iter()
            .all(|delivery| delivery.status != DeliveryState::Pending)
}

/// A delivery's lease (three 5 s post timeouts, `shared::webhook::schedule`):
/// a post's answer is recorded within it, or by another holder after it.
const DELIVERY_LEASE: chrono::Duration = chrono::Duration::seconds(15);

/// The ERP's posts of each event, oldest first.
type ByEvent<'a> = HashMap<&'a str, Vec<&'a Receipt>>;

impl WebhookFigures {
    pub fn reconcile(input: &Inputs<'_>) -> Self {
        let mut figures = Self {
            events_logged: input.events.len(),
            deliveries: input.deliveries.len(),
            receipts: input.receipts.len(),
            endpoint_enabled: input.endpoint_enabled,
            drained: input.drained,
            drain_time: input.drain_time,
            ..Self::default()
        };
        let mut receipts: ByEvent<'_> = HashMap::new();
        for receipt in input.receipts {
            receipts
                .entry(receipt.webhook_id.as_str())
                .or_default()
                .push(receipt);
        }
        for list in receipts.values_mut() {
            list.sort_by_key(|receipt| receipt.received_at);
        }
        for item in input.deliveries {
            match item.status {
                DeliveryState::Delivered => figures.delivered += 1,
                DeliveryState::Failed => figures.failed += 1,
                DeliveryState::Pending => figures.pending += 1,
            }
        }
        figures.unverified = input.receipts.iter().filter(|r| !r.verified).count();
        figures.receipts_by_answer = ErpAnswer::ALL
            .iter()
            .map(|answer| {
                let count = input
                    .receipts
                    .iter()
                    .filter(|r| r.answer == *answer)
                    .count();
                (answer.describe(), count)
            })
            .collect();
        figures.check_events(input, &receipts);
        figures.check_orders(input, &receipts);
        figures
    }

    fn note(&mut self, what: String) {
        if self.samples.len() < 20 {
            self.samples.push(what);
        }
    }

    /// Each logged event against the ERP's posts of it and its delivery
    /// item; then the posts of events never logged.
    fn check_events(&mut self, input: &Inputs<'_>, receipts: &ByEvent<'_>) {
        let items: HashMap<&str, &DeliveryItem> = input
            .deliveries
            .iter()
            .map(|item| (item.event_id.as_str(), item))
            .collect();
        let mut latencies = Vec::new();
        for event in input.events {
            let got = receipts.get(event.id.as_str()).cloned().unwrap_or_default();
            if got.iter().any(|r| {
                r.event_type != event.event_type
                    || r.order_number != event.order_number
                    || r.sequence != event.sequence
            }) {
                self.unknown_received += 1;
                self.note(format!(
                    "{}: received with another type, order or sequence",
                    event.id
                ));
            }
            let processed: Vec<&Receipt> = got
                .iter()
                .copied()
                .filter(|r| r.verified && r.answer.processed())
                .collect();
            match processed.first() {
                Some(first) => latencies.push(
                    u64::try_from((first.received_at - event.at).num_milliseconds()).unwrap_or(0),
                ),
                None => {
                    self.lost += 1;
                    self.note(format!(
                        "{} {} of {}: never processed by the ERP ({} post(s) received)",
                        event.id,
                        event.event_type,
                        event.order_number,
                        got.len()
                    ));
                }
            }
            let failures = input
                .store_failures
                .get(event.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            self.count_repeats(&event.id, &processed, input.kills, failures);
            match items.get(event.id.as_str()) {
                Some(item) => self.check_item(item, &got),
                None => {
                    self.without_delivery += 1;
                    self.note(format!("{}: logged, no delivery item", event.id));
                }
            }
        }
        let logged: HashSet<&str> = input.events.iter().map(|e| e.id.as_str()).collect();
        for (id, got) in receipts {
            if !logged.contains(id) {
                self.unknown_received += got.len();
                self.note(format!("{id:?}: received, never logged"));
            }
        }
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        self.latency_ms = [at(0.5), at(0.95), at(0.99), at(1.0)];
    }

    /// Why the ERP processed an event more than once: its 200 came after
    /// the timeout, the service died between the post and its record
    /// (within the lease after the post: the record follows the answer at
    /// once, so a kill later than that explains nothing), or a store call
    /// of that delivery failed between the two posts (the store did not
    /// answer: the message comes back and the delivery is posted again;
    /// had its record been written, the repeat would count as a post after
    /// a recorded success, which is checked apart); anything else is
    /// counted apart (and fails the soak). A delivered
    /// item claimed again rewrites its end and its count of posts, so this
    /// is what sees it.
    fn count_repeats(
        &mut self,
        id: &str,
        processed: &[&Receipt],
        kills: &[DateTime<Utc>],
        failures: &[DateTime<Utc>],
    ) {
        for pair in processed.windows(2) {
            let (before, repeat) = (pair[0], pair[1]);
            let record_by = (before.received_at + DELIVERY_LEASE).min(repeat.received_at);
            if before.answer == ErpAnswer::AcceptedLate {
                self.repeated_after_late += 1;
            } else if crate::report::killed_between(kills, before.received_at, record_by) {
                self.repeated_after_crash += 1;
            } else if failures
                .iter()
                .any(|failed| (before.received_at..=repeat.received_at).contains(failed))
            {
                self.repeated_after_failed_record += 1;
            } else {
                self.repeated_unexplained += 1;
                self.note(format!(
                    "{id}: processed again at {} after a 200 in time at {} with no crash or failed record between",
                    repeat.received_at, before.received_at
                ));
            }
        }
    }

    /// The posts of an event against its delivery item: no more than it
    /// claimed, none after its delivering post ended.
    fn check_item(&mut self, item: &DeliveryItem, got: &[&Receipt]) {
        let beyond = (got.len() as u64).saturating_sub(item.posts);
        if beyond > 0 {
            self.beyond_posts += usize::try_from(beyond).unwrap_or(usize::MAX);
            self.note(format!(
                "{}: {} post(s) received, {} claimed",
                item.event_id,
                got.len(),
                item.posts
            ));
        }
        if item.status == DeliveryState::Delivered {
            // The item keeps whole milliseconds, rounded down: a post is
            // after the end only from the next millisecond on (on loopback
            // the delivering post arrives within the millisecond it ends).
            let after = match item.last_at {
                Some(ended) => got
                    .iter()
                    .filter(|r| r.received_at >= ended + chrono::Duration::milliseconds(1))
                    .count(),
                None => got.len(),
            };
            if after > 0 {
                self.after_success += after;
                let posts: Vec<String> = got
                    .iter()
                    .map(|r| format!("{} {:?}", r.received_at.format("%H:%M:%S%.3f"), r.answer))
                    .collect();
                self.note(format!(
                    "{}: {after} post(s) after the delivering post ended at {:?} ({} claimed; received: {})",
                    item.event_id,
                    item.last_at,
                    item.posts,
                    posts.join(", ")
                ));
            }
        }
    }

    /// Each order's events against its final state and each other.
    fn check_orders(&mut self, input: &Inputs<'_>, receipts: &ByEvent<'_>) {
        let mut by_order: HashMap<&str, Vec<&LoggedEvent>> = HashMap::new();
        for event in input.events {
            by_order
                .entry(event.order_number.as_str())
                .or_default()
                .push(event);
        }
        for (number, view) in input.views {
            let events = by_order.get(number.as_str()).cloned().unwrap_or_default();
            for kind in implied(view) {
                if !events.iter().any(|event| event.event_type == kind) {
                    self.missing_from_log += 1;
                    self.note(format!("{number}: {kind} was never logged"));
                }
            }
        }
        for (number, events) in &mut by_order {
            events.sort_by_key(|event| (event.sequence, event.at));
            for pair in events.windows(2) {
                if pair[0].sequence == pair[1].sequence && pair[0].at != pair[1].at {
                    self.shared_sequences += 1;
                    self.note(format!(
                        "{number}: two writes share sequence {} ({}, {})",
                        pair[0].sequence, pair[0].event_type, pair[1].event_type
                    ));
                }
            }
            let ranks: Vec<(u8, &str)> = events
                .iter()
                .filter_map(|event| Some((rank(&event.event_type)?, event.event_type.as_str())))
                .collect();
            if ranks.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                self.out_of_step += 1;
                let order: Vec<&str> = ranks.iter().map(|(_, kind)| *kind).collect();
                self.note(format!("{number}: by sequence {}", order.join(" → ")));
            }
            self.arrived_out_of_order += arrived_out_of_order(events, receipts);
            if let Some(view) = input.views.get(*number) {
                for prefix in ["order.", "callback."] {
                    let seen = receiver_view(events, receipts, prefix);
                    let shown = final_kind(view, prefix);
                    if seen != shown {
                        self.final_view_wrong += 1;
                        self.note(format!(
                            "{number}: the ERP's highest sequence says {seen:?}, the order {shown:?}"
                        ));
                    }
                }
            }
        }
    }

    pub fn passed(&self) -> bool {
        self.drained
            && self.endpoint_enabled
            && self.events_logged > 0
            && self.lost == 0
            && self.missing_from_log == 0
            && self.without_delivery == 0
            && self.unknown_received == 0
            && self.unverified == 0
            && self.after_success == 0
            && self.beyond_posts == 0
            && self.repeated_unexplained == 0
            && self.shared_sequences == 0
            && self.out_of_step == 0
            && self.final_view_wrong == 0
    }

    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "webhook events logged / delivery items (delivered, failed, pending)".into(),
                format!(
                    "{} / {} ({}, {}, {})",
                    self.events_logged, self.deliveries, self.delivered, self.failed, self.pending
                ),
            ),
            (
                "**webhook events lost** (logged, never processed by the ERP; implied by an order, never logged)".into(),
                format!("**{} ; {}**", self.lost, self.missing_from_log),
            ),
            (
                "**webhooks posted after a recorded success** (after the delivering post; beyond the claimed posts)".into(),
                format!("**{} ; {}**", self.after_success, self.beyond_posts),
            ),
            (
                "**webhook signatures the ERP could not verify (standardwebhooks)**".into(),
                format!("**{}**", self.unverified),
            ),
            (
                "webhooks received that the log does not hold as sent; logged without a delivery item".into(),
                format!("{} ; {}", self.unknown_received, self.without_delivery),
            ),
            (
                "webhooks processed again: after a late 200 / after a crash / after its record failed / with none of these".into(),
                format!(
                    "{} / {} / {} / {}",
                    self.repeated_after_late,
                    self.repeated_after_crash,
                    self.repeated_after_failed_record,
                    self.repeated_unexplained
                ),
            ),
            (
                "**per-order sequence: writes sharing one / statuses not rising with it / highest sequence ≠ the order**".into(),
                format!(
                    "**{} / {} / {}**",
                    self.shared_sequences, self.out_of_step, self.final_view_wrong
                ),
            ),
            (
                "webhooks that arrived after a higher sequence of their order (receivers order by data.sequence)".into(),
                self.arrived_out_of_order.to_string(),
            ),
            ("posts the ERP received".into(), self.receipts.to_string()),
        ];
        for (answer, count) in &self.receipts_by_answer {
            rows.push((format!("  ERP answered: {answer}"), count.to_string()));
        }
        let [p50, p95, p99, max] = self.latency_ms;
        rows.extend([
            (
                "webhook latency, order write → ERP processed (p50 / p95 / p99 / max)".into(),
                format!(
                    "{:.1} s / {:.1} s / {:.1} s / {:.1} s",
                    p50 as f64 / 1000.0,
                    p95 as f64 / 1000.0,
                    p99 as f64 / 1000.0,
                    max as f64 / 1000.0
                ),
            ),
            (
                "**webhook drain** (callbacks settled → every delivery settled)".into(),
                format!(
                    "**{:.1} s**{}",
                    self.drain_time.as_secs_f64(),
                    if self.drained {
                        ""
                    } else {
                        " (NOT drained: timed out)"
                    }
                ),
            ),
            (
                "ERP endpoint still enabled".into(),
                if self.endpoint_enabled { "yes" } else { "NO" }.into(),
            ),
        ]);
        rows
    }
}

/// An order's events whose first processed receipt came after that of an
/// event with a higher sequence.
fn arrived_out_of_order(events: &[&LoggedEvent], receipts: &ByEvent<'_>) -> usize {
    let mut firsts: Vec<(DateTime<Utc>, u64)> = events
        .iter()
        .filter_map(|event| {
            let first = receipts
                .get(event.id.as_str())?
                .iter()
                .find(|r| r.verified && r.answer.processed())?;
            Some((first.received_at, event.sequence))
        })
        .collect();
    firsts.sort();
    let mut highest = 0;
    let mut late = 0;
    for (_, sequence) in firsts {
        if sequence < highest {
            late += 1;
        }
        highest = highest.max(sequence);
    }
    late
}

/// What a receiver keeping the highest `data.sequence` per order holds of
/// the events named `prefix…` (order statuses after `order.accepted`, or
/// callback outcomes).
fn receiver_view(events: &[&LoggedEvent], receipts: &ByEvent<'_>, prefix: &str) -> Option<String> {
    events
        .iter()
        .flat_map(|event| receipts.get(event.id.as_str()).cloned().unwrap_or_default())
        .filter(|r| r.verified && r.answer.processed())
        .filter(|r| r.event_type.starts_with(prefix) && r.event_type != "order.accepted")
        .max_by_key(|r| r.sequence)
        .map(|r| r.event_type.clone())
}

#[cfg(test)]
mod tests;
