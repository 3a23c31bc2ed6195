//! A warm instance's copy of a closed breaker, so a healthy partner costs no
//! breaker read per delivery.
//!
//! The gate only needs to be roughly current: while the breaker is closed
//! every delivery would otherwise read the same unchanged item (a third
//! DynamoDB round trip and 0.5 RCU per callback). [`CachedBreakerStore`]
//! serves a *closed* state it read or wrote for up to `fresh_for`; an open or
//! probing breaker is always read again, so holds and probes behave exactly as
//! without the cache. The price, bounded by `fresh_for`: an instance may post
//! that long after another opened the breaker, and an answer it sees may not
//! reset failures another instance counted meanwhile. Writes are unchanged
//! (version-checked); a refused write drops the copy, so the caller's retry
//! reads the stored state.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::callback::breaker::BreakerState;
use crate::error::StoreError;
use crate::ports::BreakerStore;

/// How long a warm instance trusts a closed breaker it has seen.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// A [`BreakerStore`] that remembers a closed state for a while.
#[derive(Debug)]
pub struct CachedBreakerStore<B> {
    inner: B,
    fresh_for: Duration,
    seen: Mutex<Option<(Instant, BreakerState)>>,
}

impl<B: BreakerStore> CachedBreakerStore<B> {
    #[must_use]
    pub fn new(inner: B, fresh_for: Duration) -> Self {
        Self {
            inner,
            fresh_for,
            seen: Mutex::new(None),
        }
    }

    fn remember(&self, state: Option<BreakerState>) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = state
                .filter(|s| !s.is_open() && s.probes.is_empty())
                .map(|s| (Instant::now(), s));
        }
    }

    fn fresh(&self) -> Option<BreakerState> {
        let seen = self.seen.lock().ok()?;
        seen.as_ref()
            .filter(|(at, _)| at.elapsed() < self.fresh_for)
            .map(|(_, state)| state.clone())
    }
}

impl<B: BreakerStore> BreakerStore for CachedBreakerStore<B> {
    async fn load(&self) -> Result<BreakerState, StoreError> {
        if let Some(state) = self.fresh() {
            return Ok(state);
        }
        let state = self.inner.load().await?;
        self.remember(Some(state.clone()));
        Ok(state)
    }

    async fn save(&self, state: &BreakerState) -> Result<bool, StoreError> {
        let saved = self.inner.save(state).await;
        let stored = matches!(saved, Ok(true)).then(|| BreakerState {
            version: state.version + 1,
            ..state.clone()
        });
        self.remember(stored);
        saved
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{TimeZone, Utc};

    use std::sync::Arc;

    use super::*;
    use crate::memory::MemoryBreakerStore;

    /// Counts the reads that reach the store.
    #[derive(Debug, Default)]
    struct Counting {
        store: MemoryBreakerStore,
        loads: AtomicUsize,
    }

    impl BreakerStore for Counting {
        async fn load(&self) -> Result<BreakerState, StoreError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.store.load().await
        }

        async fn save(&self, state: &BreakerState) -> Result<bool, StoreError> {
            self.store.save(state).await
        }
    }

    fn cached(store: &Arc<Counting>) -> CachedBreakerStore<Arc<Counting>> {
        CachedBreakerStore::new(store.clone(), Duration::from_secs(60))
    }

    fn opened(state: &BreakerState) -> BreakerState {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
        BreakerState {
            open_until: Some(now + chrono::Duration::seconds(30)),
            ..state.clone()
        }
    }

    #[tokio::test]
    async fn a_closed_breaker_is_read_once_per_freshness_window() {
        let store = Arc::new(Counting::default());
        let cache = cached(&store);
        for _ in 0..10 {
            assert_eq!(cache.load().await.unwrap(), BreakerState::default());
        }
        assert_eq!(store.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_open_breaker_is_read_every_time() {
        let store = Arc::new(Counting::default());
        let open = opened(&BreakerState::default());
        assert!(store.save(&open).await.unwrap());
        let cache = cached(&store);
        for _ in 0..3 {
            assert!(cache.load().await.unwrap().is_open());
        }
        assert_eq!(store.loads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_write_refused_for_a_stale_copy_makes_the_next_load_read_the_store() {
        let store = Arc::new(Counting::default());
        let cache = cached(&store);
        let stale = cache.load().await.unwrap();
        // Another instance opens the breaker meanwhile.
        assert!(store.save(&opened(&stale)).await.unwrap());
        assert!(!cache.save(&opened(&stale)).await.unwrap());
        assert!(cache.load().await.unwrap().is_open());
        assert_eq!(store.loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn its_own_write_opening_the_breaker_is_seen_at_once() {
        let store = Arc::new(Counting::default());
        let cache = cached(&store);
        let closed = cache.load().await.unwrap();
        assert!(cache.save(&opened(&closed)).await.unwrap());
        assert!(cache.load().await.unwrap().is_open());
    }
}
