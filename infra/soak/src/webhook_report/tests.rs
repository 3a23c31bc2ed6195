use chrono::TimeZone;
use serde_json::json;

use super::*;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
}

const ORDER: &str = "soak-000001";

/// One order through every step, its callback delivered: each event
/// written at `1000 × sequence` ms, received 200 ms later, recorded 50 ms
/// after that.
struct Run {
    events: Vec<LoggedEvent>,
    deliveries: Vec<DeliveryItem>,
    receipts: Vec<Receipt>,
    views: HashMap<String, Value>,
    kills: Vec<DateTime<Utc>>,
    store_failures: HashMap<String, Vec<DateTime<Utc>>>,
}

impl Run {
    fn clean() -> Self {
        let kinds = [
            (2, "order.accepted"),
            (3, "order.allocated"),
            (4, "order.picked"),
            (5, "order.packed"),
            (6, "order.shipped"),
            (7, "order.handed_over"),
            (9, "callback.delivered"),
        ];
        let events: Vec<LoggedEvent> = kinds
            .iter()
            .map(|(sequence, kind)| LoggedEvent {
                id: format!("evt_{sequence}"),
                event_type: (*kind).into(),
                order_number: ORDER.into(),
                sequence: *sequence,
                at: at(1000 * i64::try_from(*sequence).unwrap()),
            })
            .collect();
        let receipts = events
            .iter()
            .map(|event| {
                receipt(
                    event,
                    event.at + chrono::Duration::milliseconds(200),
                    ErpAnswer::Accepted,
                )
            })
            .collect();
        let deliveries = events
            .iter()
            .map(|event| DeliveryItem {
                event_id: event.id.clone(),
                status: DeliveryState::Delivered,
                posts: 1,
                last_at: Some(event.at + chrono::Duration::milliseconds(250)),
            })
            .collect();
        let views = HashMap::from([(
            ORDER.to_owned(),
            json!({"order_number": ORDER, "status": "handed_over", "callback": {"status": "delivered"}}),
        )]);
        Self {
            events,
            deliveries,
            receipts,
            views,
            kills: Vec::new(),
            store_failures: HashMap::new(),
        }
    }

    fn figures(&self) -> WebhookFigures {
        WebhookFigures::reconcile(&Inputs {
            events: &self.events,
            deliveries: &self.deliveries,
            receipts: &self.receipts,
            views: &self.views,
            kills: &self.kills,
            store_failures: &self.store_failures,
            endpoint_enabled: true,
            drained: true,
            drain_time: Duration::from_secs(1),
        })
    }

    fn event(&self, kind: &str) -> LoggedEvent {
        self.events
            .iter()
            .find(|e| e.event_type == kind)
            .unwrap()
            .clone()
    }

    fn item(&mut self, kind: &str) -> &mut DeliveryItem {
        let id = self.event(kind).id;
        self.deliveries
            .iter_mut()
            .find(|d| d.event_id == id)
            .unwrap()
    }
}

fn receipt(event: &LoggedEvent, received_at: DateTime<Utc>, answer: ErpAnswer) -> Receipt {
    Receipt {
        webhook_id: event.id.clone(),
        event_type: event.event_type.clone(),
        order_number: event.order_number.clone(),
        sequence: event.sequence,
        received_at,
        verified: true,
        answer,
    }
}

#[test]
fn every_event_received_once_in_order_passes_with_its_latency() {
    let figures = Run::clean().figures();
    assert!(figures.passed(), "{figures:#?}");
    assert_eq!(
        (figures.events_logged, figures.delivered, figures.lost),
        (7, 7, 0)
    );
    assert_eq!(figures.latency_ms, [200; 4]);
    assert_eq!(figures.arrived_out_of_order, 0);
}

#[test]
fn an_event_the_erp_only_failed_is_lost() {
    let mut run = Run::clean();
    let shipped = run.event("order.shipped");
    run.receipts.retain(|r| r.webhook_id != shipped.id);
    run.receipts
        .push(receipt(&shipped, at(6_100), ErpAnswer::ServerError));
    run.receipts
        .push(receipt(&shipped, at(6_200), ErpAnswer::Reset));
    let figures = run.figures();
    assert_eq!(figures.lost, 1);
    assert!(!figures.passed());
}

#[test]
fn an_event_the_order_implies_but_nobody_logged_is_lost() {
    let mut run = Run::clean();
    run.events.retain(|e| e.event_type != "callback.delivered");
    run.receipts
        .retain(|r| r.event_type != "callback.delivered");
    let figures = run.figures();
    assert_eq!(figures.missing_from_log, 1);
    assert_eq!(figures.final_view_wrong, 1);
    assert!(!figures.passed());
}

#[test]
fn a_post_after_the_delivering_post_ended_fails_even_if_answered() {
    let mut run = Run::clean();
    let packed = run.event("order.packed");
    run.item("order.packed").posts = 2;
    run.receipts
        .push(receipt(&packed, at(5_400), ErpAnswer::ServerError));
    let figures = run.figures();
    assert_eq!(figures.after_success, 1);
    assert!(!figures.passed());
}

#[test]
fn the_delivering_post_within_the_millisecond_its_end_was_recorded_in_is_not_after_it() {
    let mut run = Run::clean();
    // The item keeps 12:00:05.250; the post arrived at .250 and a bit.
    run.receipts[3].received_at = at(5_250) + chrono::Duration::microseconds(600);
    assert_eq!(run.figures().after_success, 0);
    run.receipts[3].received_at = at(5_251);
    assert_eq!(run.figures().after_success, 1);
}

#[test]
fn more_posts_than_the_item_claimed_fail() {
    let mut run = Run::clean();
    let picked = run.event("order.picked");
    run.item("order.picked").last_at = Some(at(4_900));
    run.receipts
        .insert(0, receipt(&picked, at(4_100), ErpAnswer::Reset));
    let figures = run.figures();
    assert_eq!((figures.beyond_posts, figures.after_success), (1, 0));
    assert!(!figures.passed());
}

#[test]
fn repeats_after_a_late_answer_or_a_crash_are_counted_and_others_fail() {
    let mut run = Run::clean();
    let packed = run.event("order.packed");
    let shipped = run.event("order.shipped");
    for kind in ["order.packed", "order.shipped"] {
        let item = run.item(kind);
        item.posts = 2;
        item.last_at = item.last_at.map(|t| t + chrono::Duration::seconds(10));
    }
    run.receipts.retain(|r| r.webhook_id != packed.id);
    run.receipts
        .push(receipt(&packed, at(5_200), ErpAnswer::AcceptedLate));
    run.receipts
        .push(receipt(&packed, at(11_000), ErpAnswer::Accepted));
    run.receipts
        .push(receipt(&shipped, at(12_000), ErpAnswer::Accepted));
    run.kills.push(at(8_000));
    let figures = run.figures();
    assert_eq!(
        (
            figures.repeated_after_late,
            figures.repeated_after_crash,
            figures.repeated_unexplained
        ),
        (1, 1, 0)
    );
    assert!(figures.passed(), "{figures:#?}");
    run.kills.clear();
    let figures = run.figures();
    assert_eq!(figures.repeated_unexplained, 1);
    assert!(!figures.passed());
}

#[test]
fn a_crash_long_after_a_200_in_time_does_not_explain_posting_it_again() {
    let mut run = Run::clean();
    let shipped = run.event("order.shipped");
    let item = run.item("order.shipped");
    item.posts = 2;
    item.last_at = Some(at(60_050));
    // Delivered at 6.2 s and recorded; a SIGKILL 30 s later; posted again
    // (a delivered item claimed anew rewrites its end and its count).
    run.receipts
        .push(receipt(&shipped, at(60_000), ErpAnswer::Accepted));
    run.kills.push(at(36_200));
    let figures = run.figures();
    assert_eq!(
        (figures.repeated_after_crash, figures.repeated_unexplained),
        (0, 1)
    );
    assert!(!figures.passed());
    run.kills = vec![at(6_300)];
    assert_eq!(run.figures().repeated_after_crash, 1);
}

#[test]
fn a_repeat_after_a_store_failure_of_its_delivery_is_explained_and_one_after_the_repeat_is_not() {
    let mut run = Run::clean();
    let shipped = run.event("order.shipped");
    let item = run.item("order.shipped");
    item.posts = 2;
    item.last_at = Some(at(70_050));
    // Delivered at 6.2 s; its record failed at 9 s (the store did not
    // answer); the message came back and it was posted again.
    run.receipts
        .push(receipt(&shipped, at(70_000), ErpAnswer::Accepted));
    run.store_failures = store_failures(&format!(
        "2026-12-06T12:00:09.000000Z ERROR webhook_dispatch: webhook store failure; the message \
         will be delivered again endpoint=ep_1 event=6000#{} error=the order store is unavailable\n",
        shipped.id
    ));
    let figures = run.figures();
    assert_eq!(
        (
            figures.repeated_after_failed_record,
            figures.repeated_unexplained
        ),
        (1, 0)
    );
    assert!(figures.passed(), "{figures:#?}");
    // A failure after the repeat explains nothing.
    run.store_failures = store_failures(&format!(
        "2026-12-06T12:01:20.000000Z ERROR webhook_dispatch: webhook store failure; endpoint=ep_1 event=6000#{} error=x\n",
        shipped.id
    ));
    assert_eq!(run.figures().repeated_unexplained, 1);
}

#[test]
fn a_delivery_that_does_not_verify_fails() {
    let mut run = Run::clean();
    let mut forged = run.receipts[0].clone();
    forged.verified = false;
    forged.answer = ErpAnswer::Unverified;
    forged.received_at = at(2_100);
    run.receipts.push(forged);
    run.item("order.accepted").posts = 2;
    let figures = run.figures();
    assert_eq!(figures.unverified, 1);
    assert!(!figures.passed());
}

#[test]
fn two_writes_with_one_sequence_or_statuses_against_it_fail() {
    let mut shared = Run::clean();
    shared.events[2].sequence = 3;
    shared.receipts[2].sequence = 3;
    assert_eq!(shared.figures().shared_sequences, 1);
    assert!(!shared.figures().passed());

    let mut backwards = Run::clean();
    // Packed written after shipped: a receiver ordering by sequence would
    // end at packed although the order moved on.
    backwards.events[3].sequence = 8;
    backwards.receipts[3].sequence = 8;
    let figures = backwards.figures();
    assert_eq!((figures.out_of_step, figures.final_view_wrong), (1, 1));
    assert!(!figures.passed());
}

#[test]
fn events_arriving_out_of_order_are_counted_not_failed() {
    let mut run = Run::clean();
    // Picked arrives after packed: its retry took longer.
    run.receipts[2].received_at = at(5_300);
    run.item("order.picked").last_at = Some(at(5_350));
    let figures = run.figures();
    assert_eq!(figures.arrived_out_of_order, 1);
    assert!(figures.passed(), "{figures:#?}");
}

#[test]
fn a_receipt_the_log_never_held_fails() {
    let mut run = Run::clean();
    let mut stranger = run.receipts[0].clone();
    stranger.webhook_id = "evt_unknown".into();
    run.receipts.push(stranger);
    assert_eq!(run.figures().unknown_received, 1);
    assert!(!run.figures().passed());
}

#[test]
fn settled_waits_for_implied_events_items_and_pending_deliveries() {
    let run = Run::clean();
    assert!(settled(&run.events, &run.deliveries, &run.views));
    let mut pending = Run::clean();
    pending.item("order.packed").status = DeliveryState::Pending;
    assert!(!settled(
        &pending.events,
        &pending.deliveries,
        &pending.views
    ));
    let mut unlogged = Run::clean();
    unlogged.events.pop();
    unlogged.deliveries.pop();
    assert!(!settled(
        &unlogged.events,
        &unlogged.deliveries,
        &unlogged.views
    ));
    let mut no_item = Run::clean();
    no_item.deliveries.pop();
    assert!(!settled(
        &no_item.events,
        &no_item.deliveries,
        &no_item.views
    ));
}
