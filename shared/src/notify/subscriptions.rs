//! The subscription routes' use case: an ERP key manages its own endpoints.
//! Another client's endpoint is answered exactly as a missing one.

use chrono::{DateTime, Utc};

use crate::error::{FieldError, StoreError, quoted};
use crate::ports::{DeliveryStore, EndpointStore, Save};
use crate::random::RandomnessError;
use crate::webhook::{
    Delivery, Endpoint, EndpointId, MAX_ENDPOINTS, Reach, WebhookSecret, parse_endpoint_change,
    parse_new_endpoint,
};

/// Tries of a read-change-write that keeps losing races.
const UPDATE_TRIES: usize = 8;
/// Recent deliveries shown with an endpoint.
pub const RECENT_DELIVERIES: usize = 20;

/// Why a subscription request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the request has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("webhook endpoint {} does not exist", quoted(.0))]
    NotFound(String),
    #[error("a client may register at most {MAX_ENDPOINTS} webhook endpoints")]
    TooMany,
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] crate::ports::QueueError),
}

/// An endpoint and, once only, its secret in plain text. Its `Debug`
/// leaves the secret out.
pub struct Issued {
    pub endpoint: Endpoint,
    pub secret: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Subscriptions<E, D> {
    endpoints: E,
    deliveries: D,
    reach: Reach,
}

impl<E: EndpointStore, D: DeliveryStore> Subscriptions<E, D> {
    pub fn new(endpoints: E, deliveries: D, reach: Reach) -> Self {
        Self {
            endpoints,
            deliveries,
            reach,
        }
    }

    pub async fn create(
        &self,
        client_code: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Issued, WebhookError> {
        let new = parse_new_endpoint(body, self.reach).map_err(WebhookError::Invalid)?;
        let secret = WebhookSecret::generate()?;
        let endpoint = Endpoint::create(EndpointId::generate()?, client_code, new, secret, now);
        if !self.endpoints.insert(&endpoint).await? {
            return Err(WebhookError::TooMany);
        }
        Ok(Issued {
            secret: endpoint.secret.expose(),
            endpoint,
        })
    }

    pub async fn list(&self, client_code: &str) -> Result<Vec<Endpoint>, WebhookError> {
        Ok(self.endpoints.list(client_code).await?)
    }

    /// The endpoint and its latest deliveries, newest first.
    pub async fn get(
        &self,
        client_code: &str,
        id: &str,
    ) -> Result<(Endpoint, Vec<Delivery>), WebhookError> {
        let endpoint = self.find(client_code, id).await?;
        let recent = self
            .deliveries
            .recent(&endpoint.id, RECENT_DELIVERIES)
            .await?;
        Ok((endpoint, recent))
    }

    pub async fn change(
        &self,
        client_code: &str,
        id: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Endpoint, WebhookError> {
        let change = parse_endpoint_change(body, self.reach).map_err(WebhookError::Invalid)?;
        self.update(client_code, id, |endpoint| {
            endpoint.change(change.clone(), now)
        })
        .await
    }

    /// A new secret, returned once; the old one signs beside it for a day.
    pub async fn rotate(
        &self,
        client_code: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Issued, WebhookError> {
        let secret = WebhookSecret::generate()?;
        let endpoint = self
            .update(client_code, id, |endpoint| {
                endpoint.rotate(secret.clone(), now)
            })
            .await?;
        Ok(Issued {
            secret: secret.expose(),
            endpoint,
        })
    }

    pub async fn delete(&self, client_code: &str, id: &str) -> Result<(), WebhookError> {
        let id = EndpointId::parse(id).ok_or_else(|| WebhookError::NotFound(id.to_owned()))?;
        if self.endpoints.delete(client_code, &id).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound(id.as_str().to_owned()))
        }
    }

    async fn find(&self, client_code: &str, id: &str) -> Result<Endpoint, WebhookError> {
        let not_found = || WebhookError::NotFound(id.to_owned());
        let id = EndpointId::parse(id).ok_or_else(not_found)?;
        self.endpoints
            .get(client_code, &id)
            .await?
            .ok_or_else(not_found)
    }

    /// Read, change, write if nobody wrote since; again on a lost race (the
    /// deliverers write the endpoint's health meanwhile).
    async fn update(
        &self,
        client_code: &str,
        id: &str,
        apply: impl Fn(&mut Endpoint),
    ) -> Result<Endpoint, WebhookError> {
        for _ in 0..UPDATE_TRIES {
            let mut endpoint = self.find(client_code, id).await?;
            let read_version = endpoint.version;
            apply(&mut endpoint);
            if self.endpoints.save(&endpoint, read_version).await? == Save::Saved {
                return Ok(endpoint);
            }
        }
        Err(StoreError::Unavailable("the endpoint kept changing; try again".into()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::webhooks::{MemoryDeliveries, MemoryEndpoints};
    use crate::webhook::Answer;

    fn subscriptions() -> Subscriptions<MemoryEndpoints, MemoryDeliveries> {
        Subscriptions::new(
            MemoryEndpoints::default(),
            MemoryDeliveries::default(),
            Reach::Internet,
        )
    }

    const BODY: &[u8] = br#"{"url": "https://erp.example.com/hooks"}"#;

    /// Endpoints where a delivery records a failed post between the ERP's
    /// read of an endpoint and its first save: the race a change meets in
    /// production, where the deliverers write the endpoint's health.
    #[derive(Clone, Default)]
    struct FailedBeforeTheFirstSave {
        inner: MemoryEndpoints,
        raced: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl EndpointStore for FailedBeforeTheFirstSave {
        async fn insert(&self, endpoint: &Endpoint) -> Result<bool, StoreError> {
            self.inner.insert(endpoint).await
        }

        async fn list(&self, client_code: &str) -> Result<Vec<Endpoint>, StoreError> {
            self.inner.list(client_code).await
        }

        async fn get(
            &self,
            client_code: &str,
            id: &EndpointId,
        ) -> Result<Option<Endpoint>, StoreError> {
            self.inner.get(client_code, id).await
        }

        async fn save(&self, endpoint: &Endpoint, read_version: u64) -> Result<Save, StoreError> {
            if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let mut delivered = self
                    .inner
                    .get(&endpoint.client_code, &endpoint.id)
                    .await?
                    .unwrap();
                let version = delivered.version;
                delivered.record(Answer::Failed, Utc::now(), Utc::now());
                assert_eq!(self.inner.save(&delivered, version).await?, Save::Saved);
            }
            self.inner.save(endpoint, read_version).await
        }

        async fn delete(&self, client_code: &str, id: &EndpointId) -> Result<bool, StoreError> {
            self.inner.delete(client_code, id).await
        }
    }

    #[tokio::test]
    async fn a_change_racing_a_failed_delivery_keeps_the_change_and_the_endpoints_block() {
        let hooks = Subscriptions::new(
            FailedBeforeTheFirstSave::default(),
            MemoryDeliveries::default(),
            Reach::Internet,
        );
        let id = hooks
            .create("20", BODY, Utc::now())
            .await
            .unwrap()
            .endpoint
            .id;
        let changed = hooks
            .change(
                "20",
                id.as_str(),
                br#"{"description": "orders for the Berlin shop"}"#,
                Utc::now(),
            )
            .await
            .unwrap();
        let (stored, _) = hooks.get("20", id.as_str()).await.unwrap();
        assert_eq!(stored, changed);
        assert_eq!(
            stored.description.as_deref(),
            Some("orders for the Berlin shop")
        );
        assert!(
            stored.health.blocked_until.is_some() && stored.health.consecutive_failures == 1,
            "the failure recorded meanwhile was lost: {:?}",
            stored.health
        );
    }

    #[tokio::test]
    async fn a_created_endpoint_shows_its_secret_once_and_lists_without_it() {
        let hooks = subscriptions();
        let issued = hooks.create("20", BODY, Utc::now()).await.unwrap();
        assert!(issued.secret.starts_with("whsec_"));
        assert!(!format!("{issued:?}").contains(&issued.secret));
        let listed = hooks.list("20").await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&issued.endpoint));
        assert!(!format!("{listed:?}").contains(&issued.secret));
    }

    #[tokio::test]
    async fn another_clients_endpoint_is_missing_to_every_route() {
        let hooks = subscriptions();
        let theirs = hooks
            .create("21", BODY, Utc::now())
            .await
            .unwrap()
            .endpoint
            .id;
        let id = theirs.as_str();
        assert!(matches!(
            hooks.get("20", id).await,
            Err(WebhookError::NotFound(_))
        ));
        assert!(matches!(
            hooks
                .change("20", id, br#"{"enabled": false}"#, Utc::now())
                .await,
            Err(WebhookError::NotFound(_))
        ));
        assert!(matches!(
            hooks.rotate("20", id, Utc::now()).await,
            Err(WebhookError::NotFound(_))
        ));
        assert!(matches!(
            hooks.delete("20", id).await,
            Err(WebhookError::NotFound(_))
        ));
        assert!(hooks.list("20").await.unwrap().is_empty());
        assert!(hooks.get("21", id).await.unwrap().0.enabled);
    }

    #[tokio::test]
    async fn a_change_and_a_rotation_are_stored() {
        let hooks = subscriptions();
        let id = hooks
            .create("20", BODY, Utc::now())
            .await
            .unwrap()
            .endpoint
            .id;
        let changed = hooks
            .change(
                "20",
                id.as_str(),
                br#"{"enabled": false, "event_types": ["order.shipped"]}"#,
                Utc::now(),
            )
            .await
            .unwrap();
        assert!(!changed.enabled);
        let rotated = hooks.rotate("20", id.as_str(), Utc::now()).await.unwrap();
        let (stored, _) = hooks.get("20", id.as_str()).await.unwrap();
        assert_eq!(stored.secret.expose(), rotated.secret);
        assert_eq!(stored.signing_secrets(Utc::now()).len(), 2);
        hooks.delete("20", id.as_str()).await.unwrap();
        assert!(matches!(
            hooks.get("20", id.as_str()).await,
            Err(WebhookError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_client_has_at_most_ten_endpoints_and_a_bad_body_lists_its_problems() {
        let hooks = subscriptions();
        for _ in 0..MAX_ENDPOINTS {
            hooks.create("20", BODY, Utc::now()).await.unwrap();
        }
        assert!(matches!(
            hooks.create("20", BODY, Utc::now()).await,
            Err(WebhookError::TooMany)
        ));
        let refused = hooks
            .create("21", br#"{"url": "https://10.0.0.1/"}"#, Utc::now())
            .await;
        let Err(WebhookError::Invalid(problems)) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(problems[0].field, "url");
        assert!(matches!(
            hooks.get("20", "ep_nonsense").await,
            Err(WebhookError::NotFound(_))
        ));
    }
}
