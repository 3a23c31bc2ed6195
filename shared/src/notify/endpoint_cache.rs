//! Each client's endpoints as the fan-out last read them, kept for
//! [`ENDPOINTS_TTL`] per warm instance, so a burst of one client's orders
//! costs one `Query` of its endpoints, not one per write.
//!
//! The staleness is acceptable: a new endpoint (or one enabled again, or
//! given a new type) misses at most [`ENDPOINTS_TTL`] of events, which
//! `replay?since=` sends it; a deleted, disabled or narrowed one still gets
//! deliveries queued for that long, and the deliverer reads the endpoint
//! again before each post and gives them up unposted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

use crate::ports::{Clock, SystemClock};
use crate::webhook::Endpoint;

/// How long a client's endpoints are used as read.
pub const ENDPOINTS_TTL: Duration = Duration::seconds(30);
/// Most clients kept; past it the cache starts afresh (ERP keys are few: a
/// bound only so that nothing grows without end).
const MAX_CLIENTS: usize = 1_000;

type Entries = HashMap<String, (DateTime<Utc>, Vec<Endpoint>)>;

pub(super) struct EndpointCache {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<Entries>,
}

impl EndpointCache {
    pub(super) fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The client's endpoints if read less than the TTL ago.
    pub(super) fn fresh(&self, client_code: &str) -> Option<Vec<Endpoint>> {
        let now = self.clock.now();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(client_code)
            .filter(|(read_at, _)| now - *read_at < self.ttl)
            .map(|(_, endpoints)| endpoints.clone())
    }

    /// Keeps what was just read for the client.
    pub(super) fn keep(&self, client_code: &str, endpoints: &[Endpoint]) {
        let now = self.clock.now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_CLIENTS && !entries.contains_key(client_code) {
            entries.clear();
        }
        entries.insert(client_code.to_owned(), (now, endpoints.to_vec()));
    }
}

impl Default for EndpointCache {
    fn default() -> Self {
        Self::new(ENDPOINTS_TTL, Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for EndpointCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
