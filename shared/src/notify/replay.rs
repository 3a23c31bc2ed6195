//! `POST /apicenter/api/webhooks/{id}/replay?since=T`: an endpoint is sent
//! the events of its client it has no delivery for since `T` (it was
//! disabled, failing, or created later), from the event log. An event it
//! already has a delivery for keeps it: a delivered one is not sent again.

use chrono::{DateTime, Utc};

use super::WebhookError;
use crate::ports::{DeliveryQueue, DeliveryStore, EndpointStore, EventLog};
use crate::webhook::{Delivery, DeliveryTicket, EndpointId};

/// Most events one replay reads from the log (a week of a busy client's
/// changes is more; the ERP replays again from the last one it got).
pub const MAX_REPLAYED: usize = 1000;

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Deliveries added and sent.
    pub queued: usize,
    /// Events the endpoint already had a delivery for.
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

    #[tokio::test]
    async fn an_endpoint_gets_what_it_missed_since_then_and_nothing_twice() {
        let (endpoints, log, deliveries, queue) = (
            MemoryEndpoints::default(),
            MemoryEventLog::default(),
            MemoryDeliveries::default(),
            MemoryDeliveryQueue::default(),
        );
        let new = NewEndpoint {
            url: EndpointUrl::parse("https://erp.example.com/", Reach::Internet).unwrap(),
            event_types: EventTypes::Only([EventType::OrderShipped].into()),
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
            .replay("20", endpoint.id.as_str(), now - Duration::hours(1))
            .await
            .unwrap();

        assert_eq!(
            replayed,
            Replayed {
                queued: 1,
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
            replay.replay("21", endpoint.id.as_str(), now).await,
            Err(WebhookError::NotFound(_))
        ));
    }
}
