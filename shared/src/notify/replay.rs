//! `POST /apicenter/api/webhooks/{id}/replay?since=T` (and `orderctl
//! webhooks replay`): an endpoint is sent the events of its client since `T`
//! that it has no delivery for (it was disabled or created later) or whose
//! delivery failed (its schedule was spent, or it was gone), from the event
//! log. A failed delivery is re-opened with a fresh schedule; a delivered one
//! is not sent again, a pending one is on its way already.

use chrono::{DateTime, Utc};

use super::WebhookError;
use crate::ports::{DeliveryQueue, DeliveryStore, EndpointStore, EventLog, Reopen};
use crate::webhook::{Delivery, DeliveryTicket, EndpointId};

/// Most events one replay reads from the log (a week of a busy client's
/// changes is more; the ERP replays again from the last one it got).
pub const MAX_REPLAYED: usize = 1000;

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Deliveries sent: added, or re-opened.
    pub queued: usize,
    /// Of those, failed deliveries re-opened with a fresh schedule.
    pub reopened: usize,
    /// Events whose delivery is delivered or still pending: not sent again.
    pub already: usize,
}

#[derive(Debug)]
pub struct Replay<E, L, D, Q> {
    endpoints: E,
    log: L,
    deliveries: D,
    queue: Q,
}

impl<E: EndpointStore, L: EventLog, D: DeliveryStore, Q: DeliveryQueue> Replay<E, L, D, Q> {
    pub fn new(endpoints: E, log: L, deliveries: D, queue: Q) -> Self {
        Self {
            endpoints,
            log,
            deliveries,
            queue,
        }
    }

    pub async fn replay(
        &self,
        client_code: &str,
        id: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Replayed, WebhookError> {
        let not_found = || WebhookError::NotFound(id.to_owned());
        let id = EndpointId::parse(id).ok_or_else(not_found)?;
        let endpoint = self
            .endpoints
            .get(client_code, &id)
            .await?
            .ok_or_else(not_found)?;
        let mut replayed = Replayed::default();
        let mut tickets = Vec::new();
        for event in self.log.since(client_code, since, MAX_REPLAYED).await? {
            if !endpoint.event_types.includes(event.kind) {
                continue;
            }
            let ticket = DeliveryTicket::new(&endpoint.id, &event);
            if self.deliveries.add(&ticket, &Delivery::of(&event)).await? {
                tickets.push(ticket);
                replayed.queued += 1;
            } else if let Some(Reopen::Reopened(_)) = self.deliveries.reopen(&ticket, now).await? {
                tickets.push(ticket);
                replayed.queued += 1;
                replayed.reopened += 1;
            } else {
                replayed.already += 1;
            }
        }
        self.queue.send(&tickets).await.map_err(|err| {
            WebhookError::Store(crate::error::StoreError::Unavailable(err.0.into()))
        })?;
        Ok(replayed)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::memory::webhooks::{
        MemoryDeliveries, MemoryDeliveryQueue, MemoryEndpoints, MemoryEventLog,
    };
    use crate::webhook::{
        Endpoint, EndpointUrl, EventType, EventTypes, NewEndpoint, Reach, WebhookEvent,
        WebhookSecret,
    };

    fn event(n: i64, kind: EventType, at: DateTime<Utc>) -> WebhookEvent {
        WebhookEvent {
            id: format!("evt_{n}"),
            kind,
            client_code: "20".into(),
            order_number: format!("mabang-{n}"),
            sequence: 2,
            at,
            body: "{}".into(),
        }
    }

    fn stores() -> (
        MemoryEndpoints,
        MemoryEventLog,
        MemoryDeliveries,
        MemoryDeliveryQueue,
    ) {
        Default::default()
    }

    /// An endpoint of client 20 wanting `event_types`, stored.
    async fn endpoint_of(endpoints: &MemoryEndpoints, event_types: EventTypes) -> Endpoint {
        let new = NewEndpoint {
            url: EndpointUrl::parse("https://erp.example.com/", Reach::Internet).unwrap(),
            event_types,
            description: None,
        };
        let endpoint = Endpoint::create(
            EndpointId::generate().unwrap(),
            "20",
            new,
            WebhookSecret::generate().unwrap(),
            Utc::now(),
        );
        endpoints.insert(&endpoint).await.unwrap();
        endpoint
    }

    #[tokio::test]
    async fn an_endpoint_gets_what_it_missed_since_then_and_nothing_twice() {
        let (endpoints, log, deliveries, queue) = stores();
        let endpoint = endpoint_of(
            &endpoints,
            EventTypes::Only([EventType::OrderShipped].into()),
        )
        .await;
        let now = Utc::now();
        let before = event(1, EventType::OrderShipped, now - Duration::hours(2));
        let missed = event(2, EventType::OrderShipped, now - Duration::minutes(30));
        let unwanted = event(3, EventType::OrderPacked, now - Duration::minutes(20));
        let had = event(4, EventType::OrderShipped, now - Duration::minutes(10));
        for event in [&before, &missed, &unwanted, &had] {
            log.append(event).await.unwrap();
        }
        deliveries
            .add(
                &DeliveryTicket::new(&endpoint.id, &had),
                &Delivery::of(&had),
            )
            .await
            .unwrap();
        let replay = Replay::new(endpoints, log, deliveries, queue.clone());

        let replayed = replay
            .replay("20", endpoint.id.as_str(), now - Duration::hours(1), now)
            .await
            .unwrap();

        assert_eq!(
            replayed,
            Replayed {
                queued: 1,
                reopened: 0,
                already: 1
            }
        );
        let sent: Vec<String> = queue
            .take()
            .into_iter()
            .map(|ticket| ticket.entry)
            .collect();
        assert_eq!(sent, [missed.log_entry()]);
        assert!(matches!(
            replay.replay("21", endpoint.id.as_str(), now, now).await,
            Err(WebhookError::NotFound(_))
        ));
    }

    /// A delivery of `event` to `endpoint`, settled by one post answered
    /// `status` (a 410 fails it at once).
    async fn settled_by(
        deliveries: &MemoryDeliveries,
        endpoint: &EndpointId,
        event: &WebhookEvent,
        status: u16,
        now: DateTime<Utc>,
    ) -> DeliveryTicket {
        use crate::ports::DeliveryClaim;
        use crate::webhook::{POST_TIMEOUT, PostResult, schedule};
        let policy = schedule(POST_TIMEOUT);
        let ticket = DeliveryTicket::new(endpoint, event);
        deliveries.add(&ticket, &Delivery::of(event)).await.unwrap();
        let Some(DeliveryClaim::Claimed(mut delivery)) = deliveries
            .claim(&ticket, "m#1", now, &policy)
            .await
            .unwrap()
        else {
            panic!("not claimed");
        };
        let answer = PostResult {
            http_status: Some(status),
            excerpt: String::new(),
            latency_ms: 1,
            retry_after: None,
        };
        delivery.settle("m#1", answer, now, &policy).unwrap();
        deliveries.settle(&ticket, "m#1", &delivery).await.unwrap();
        ticket
    }

    #[tokio::test]
    async fn a_failed_delivery_is_sent_again_with_a_fresh_schedule_and_a_delivered_one_is_not() {
        let (endpoints, log, deliveries, queue) = stores();
        let endpoint = endpoint_of(&endpoints, EventTypes::All).await;
        let now = Utc::now();
        let failed = event(1, EventType::OrderShipped, now - Duration::minutes(30));
        let delivered = event(2, EventType::OrderPacked, now - Duration::minutes(20));
        let pending = event(3, EventType::OrderPicked, now - Duration::minutes(10));
        for event in [&failed, &delivered, &pending] {
            log.append(event).await.unwrap();
        }
        let failed_ticket = settled_by(&deliveries, &endpoint.id, &failed, 410, now).await;
        settled_by(&deliveries, &endpoint.id, &delivered, 200, now).await;
        deliveries
            .add(
                &DeliveryTicket::new(&endpoint.id, &pending),
                &Delivery::of(&pending),
            )
            .await
            .unwrap();
        let replay = Replay::new(endpoints, log, deliveries.clone(), queue.clone());

        let replayed = replay
            .replay("20", endpoint.id.as_str(), now - Duration::hours(1), now)
            .await
            .unwrap();

        assert_eq!(
            replayed,
            Replayed {
                queued: 1,
                reopened: 1,
                already: 2
            }
        );
        assert_eq!(queue.take(), std::slice::from_ref(&failed_ticket));
        let reopened = deliveries.stored(&failed_ticket).unwrap();
        assert_eq!(reopened.status, crate::webhook::DeliveryStatus::Pending);
        assert_eq!((reopened.posts, reopened.next_attempt_at), (0, None));

        // Replayed again before it is tried: it is on its way, not sent twice.
        let again = replay
            .replay("20", endpoint.id.as_str(), now - Duration::hours(1), now)
            .await
            .unwrap();
        assert_eq!((again.queued, again.already), (0, 3));
        assert!(queue.take().is_empty());
    }
}
