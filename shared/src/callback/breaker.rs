//! The circuit breaker in front of the partner, shared by every dispatcher.
//!
//! When posts fail for everyone (no answer, timeouts, 5xx, 429), each message
//! burning its own retry schedule would dead-letter a day's callbacks during
//! a day's outage. So after `threshold` such failures in a row across the
//! fleet the breaker opens: dispatchers hold their messages (before the claim,
//! so the schedule on the order is not touched) for a cool-down that doubles
//! on every failed probe up to `max_cool_down`. When a cool-down ends, one
//! delivery at a time claims the probe; its answer closes the breaker (the
//! partner answered) or opens it again for longer.
//!
//! The rules are here, pure; the state is one item stored by a
//! [`BreakerStore`] (DynamoDB in AWS), written with a version check.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// The breaker's tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Failures in a row that open it.
    pub threshold: u32,
    /// The first cool-down.
    pub cool_down: Duration,
    /// The longest cool-down. With CallbackQueue's `maxReceiveCount` of 100,
    /// 30 min lets a message be held for two days before SQS gives up on it.
    pub max_cool_down: Duration,
    /// How long a probe may take before another delivery may probe.
    pub probe_lease: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(30 * 60),
            probe_lease: Duration::from_secs(60),
        }
    }
}

/// How long a delivery holds while another probes: it asks again this soon,
/// so a probe that closes the breaker releases the held messages within
/// seconds rather than after the probe's whole lease.
pub const PROBE_RECHECK: Duration = Duration::from_secs(5);

/// The shared state. `open_until: None` is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerState {
    /// Failures in a row, fleet-wide.
    pub failures: u32,
    /// No post before then, except the probe.
    pub open_until: Option<DateTime<Utc>>,
    /// The cool-down that opened it last (the next one doubles it).
    pub cool_down: Duration,
    /// The delivery probing, and until when.
    pub probe: Option<(String, DateTime<Utc>)>,
    /// Incremented by every write (the store's condition).
    pub version: u64,
}

/// What a delivery may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Closed: post.
    Pass,
    /// The cool-down is over and nobody probes: try to become the probe.
    Probe,
    /// Open: hold the message this long and ask again.
    Hold(Duration),
}

/// How a post went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// The partner answered (whatever it said, other than 5xx/429).
    Answered,
    /// No answer, a timeout, a 5xx or a 429.
    Down,
}

/// A change of the breaker's state worth a log line and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened(Duration),
    Reopened(Duration),
    Closed,
}

impl BreakerState {
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    /// Whether a delivery may post at `now`.
    #[must_use]
    pub fn gate(&self, now: DateTime<Utc>) -> Gate {
        let Some(until) = self.open_until else {
            return Gate::Pass;
        };
        if until > now {
            return Gate::Hold((until - now).to_std().unwrap_or_default());
        }
        match &self.probe {
            // Not until the probe's lease ends: a probe answered at once
            // closes the breaker, and held messages should see that soon.
            Some((_, probe_until)) if *probe_until > now => Gate::Hold(
                (*probe_until - now)
                    .to_std()
                    .unwrap_or_default()
                    .min(PROBE_RECHECK),
            ),
            _ => Gate::Probe,
        }
    }

    /// Makes `owner` the probe (the write's change; its condition is the
    /// version the gate was read at).
    pub fn claim_probe(&mut self, owner: &str, now: DateTime<Utc>, policy: &BreakerPolicy) {
        self.probe = Some((owner.to_owned(), now + chrono_duration(policy.probe_lease)));
    }

    /// Records a post's outcome; the transition it caused, if any.
    pub fn record(
        &mut self,
        outcome: PostOutcome,
        owner: &str,
        now: DateTime<Utc>,
        policy: &BreakerPolicy,
    ) -> Option<Transition> {
        let probing = self.probe.as_ref().is_some_and(|(o, _)| o == owner);
        match outcome {
            PostOutcome::Answered => {
                self.failures = 0;
                if self.is_open() {
                    *self = Self {
                        version: self.version,
                        ..Self::default()
                    };
                    return Some(Transition::Closed);
                }
                None
            }
            PostOutcome::Down => {
                self.failures = self.failures.saturating_add(1);
                if probing {
                    let cool_down = (self.cool_down * 2).min(policy.max_cool_down);
                    self.open(cool_down, now);
                    return Some(Transition::Reopened(cool_down));
                }
                if !self.is_open() && self.failures >= policy.threshold {
                    self.open(policy.cool_down, now);
                    return Some(Transition::Opened(policy.cool_down));
                }
                None
            }
        }
    }

    fn open(&mut self, cool_down: Duration, now: DateTime<Utc>) {
        self.cool_down = cool_down;
        self.open_until = Some(now + chrono_duration(cool_down));
        self.probe = None;
    }

    /// Whether recording `outcome` would change anything (most successes
    /// while closed do not: no write for them).
    #[must_use]
    pub fn changes_with(&self, outcome: PostOutcome) -> bool {
        match outcome {
            PostOutcome::Answered => self.failures > 0 || self.is_open(),
            PostOutcome::Down => true,
        }
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// A boxed future (the store is used as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the breaker's state lives.
pub trait BreakerStore: Send + Sync + std::fmt::Debug {
    /// The state (the default when none is stored).
    fn load(&self) -> BoxFuture<'_, Result<BreakerState, StoreError>>;

    /// Writes `state` if the stored version is still `state.version`
    /// (then the stored one is `state.version + 1`); `false` when it changed.
    fn save<'a>(&'a self, state: &'a BreakerState) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// An in-memory store, for unit tests and the model.
#[derive(Debug, Default)]
pub struct MemoryBreakerStore(std::sync::Mutex<BreakerState>);

impl BreakerStore for MemoryBreakerStore {
    fn load(&self) -> BoxFuture<'_, Result<BreakerState, StoreError>> {
        let state = self.0.lock().map(|s| s.clone()).unwrap_or_default();
        Box::pin(async move { Ok(state) })
    }

    fn save<'a>(&'a self, state: &'a BreakerState) -> BoxFuture<'a, Result<bool, StoreError>> {
        let saved = self.0.lock().is_ok_and(|mut stored| {
            if stored.version == state.version {
                *stored = BreakerState {
                    version: state.version + 1,
                    ..state.clone()
                };
                true
            } else {
                false
            }
        });
        Box::pin(async move { Ok(saved) })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap()
    }

    fn secs(s: i64) -> chrono::Duration {
        chrono::Duration::seconds(s)
    }

    #[test]
    fn a_closed_breaker_lets_every_post_through() {
        assert_eq!(BreakerState::default().gate(t0()), Gate::Pass);
    }

    #[test]
    fn failures_below_the_threshold_keep_it_closed_and_an_answer_resets_them() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        for _ in 0..4 {
            assert_eq!(state.record(PostOutcome::Down, "a", t0(), &policy), None);
        }
        state.record(PostOutcome::Answered, "b", t0(), &policy);
        assert_eq!(state.failures, 0);
        for _ in 0..4 {
            state.record(PostOutcome::Down, "a", t0(), &policy);
        }
        assert_eq!(state.gate(t0()), Gate::Pass);
    }

    #[test]
    fn threshold_failures_in_a_row_open_it_and_hold_posts_for_the_cool_down() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        let transitions: Vec<_> = (0..5)
            .filter_map(|_| state.record(PostOutcome::Down, "a", t0(), &policy))
            .collect();
        assert_eq!(transitions, [Transition::Opened(Duration::from_secs(30))]);
        assert_eq!(
            state.gate(t0() + secs(10)),
            Gate::Hold(Duration::from_secs(20))
        );
    }

    #[test]
    fn after_the_cool_down_one_probe_at_a_time() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        for _ in 0..5 {
            state.record(PostOutcome::Down, "a", t0(), &policy);
        }
        let later = t0() + secs(30);
        assert_eq!(state.gate(later), Gate::Probe);
        state.claim_probe("p", later, &policy);
        assert_eq!(state.gate(later), Gate::Hold(PROBE_RECHECK));
        assert_eq!(
            state.gate(later + secs(58)),
            Gate::Hold(Duration::from_secs(2))
        );
        // A probe that never reported frees the gate after its lease.
        assert_eq!(state.gate(later + secs(60)), Gate::Probe);
    }

    #[test]
    fn deliveries_held_behind_a_probe_that_closed_the_breaker_post_within_seconds() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        for _ in 0..5 {
            state.record(PostOutcome::Down, "a", t0(), &policy);
        }
        let probing = t0() + secs(30);
        state.claim_probe("p", probing, &policy);
        let Gate::Hold(hold) = state.gate(probing) else {
            panic!("held while probing");
        };
        state.record(PostOutcome::Answered, "p", probing + secs(1), &policy);
        let asks_again = probing + chrono::Duration::from_std(hold).unwrap();
        assert_eq!(state.gate(asks_again), Gate::Pass);
        assert!(hold <= Duration::from_secs(5), "{hold:?}");
    }

    #[test]
    fn a_failed_probe_doubles_the_cool_down_up_to_the_cap() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        for _ in 0..5 {
            state.record(PostOutcome::Down, "a", t0(), &policy);
        }
        let mut now = t0();
        let mut cool_downs = Vec::new();
        for _ in 0..8 {
            now = state.open_until.unwrap();
            state.claim_probe("p", now, &policy);
            match state.record(PostOutcome::Down, "p", now, &policy) {
                Some(Transition::Reopened(d)) => cool_downs.push(d.as_secs()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(cool_downs, [60, 120, 240, 480, 960, 1800, 1800, 1800]);
        assert!(matches!(state.gate(now), Gate::Hold(_)));
    }

    #[test]
    fn a_failure_of_a_post_that_was_not_the_probe_does_not_reopen_it() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        for _ in 0..5 {
            state.record(PostOutcome::Down, "a", t0(), &policy);
        }
        let until = state.open_until;
        assert_eq!(state.record(PostOutcome::Down, "late", t0(), &policy), None);
        assert_eq!(state.open_until, until);
    }

    #[test]
    fn an_answered_probe_closes_it() {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        for _ in 0..5 {
            state.record(PostOutcome::Down, "a", t0(), &policy);
        }
        let later = t0() + secs(30);
        state.claim_probe("p", later, &policy);
        assert_eq!(
            state.record(PostOutcome::Answered, "p", later, &policy),
            Some(Transition::Closed)
        );
        assert_eq!(state.gate(later), Gate::Pass);
        assert!(!state.changes_with(PostOutcome::Answered));
    }

    #[tokio::test]
    async fn the_memory_store_refuses_a_stale_version() {
        let store = MemoryBreakerStore::default();
        let mut state = store.load().await.unwrap();
        state.failures = 1;
        assert!(store.save(&state).await.unwrap());
        assert!(!store.save(&state).await.unwrap(), "version 0 is stale now");
        assert_eq!(store.load().await.unwrap().version, 1);
    }
}
