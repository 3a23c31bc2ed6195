//! The circuit breaker in front of the partner, shared by every dispatcher.
//!
//! When the partner is down (no answer, timeouts, 5xx), each message burning
//! its own retry schedule would dead-letter a day's callbacks during a day's
//! outage. A partner that fails *some* posts is not down, though: its
//! failures are retried by each message's schedule and every other post gets
//! through. So the breaker opens on a failure *rate*, not a streak: when a
//! dispatcher saw at least `min_posts` posts end within the last `window` and
//! at least `failure_pct` % of them failed that way
//! ([`FailureWindow`], kept per
//! dispatcher). A 429 is the partner asking to slow down, not to stop: it
//! counts as an answer (its `Retry-After` is honoured by the schedule).
//!
//! While open, dispatchers hold their messages (before the claim, so the
//! schedule on the order is not touched) for a cool-down. When it ends, up
//! to `probes` deliveries post as probes: the first answer closes the
//! breaker; only when all of them failed does it open again, for twice as
//! long (up to `max_cool_down`). The other deliveries hold a share of
//! `ramp` each, and after the close the traffic comes back over `ramp`
//! (slow start: a growing share of deliveries passes, the rest hold until
//! their turn), so a partner just back is not knocked over by the backlog.
//!
//! The rules are here, pure; the state is one item stored by a
//! [`BreakerStore`] (DynamoDB in AWS), written with a version check.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::breaker_window::{FailureWindow, Tally};
use crate::error::StoreError;

/// The breaker's tunables (README "When the partner is down" says why these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// How far back a dispatcher looks at its posts.
    pub window: Duration,
    /// Fewer posts than this in the window never open it: too few to tell
    /// a down partner from a run of bad luck.
    pub min_posts: u32,
    /// The share of the window's posts (percent) that must have failed.
    pub failure_pct: u32,
    /// The first cool-down.
    pub cool_down: Duration,
    /// The longest cool-down. With CallbackQueue's `maxReceiveCount` of 100,
    /// 30 min lets a message be held for two days before SQS gives up on it.
    pub max_cool_down: Duration,
    /// Probes per half-open round.
    pub probes: u32,
    /// How long a probe may take before its slot is free again.
    pub probe_lease: Duration,
    /// The slow start after a close, and the longest a delivery held while
    /// probes are out waits before asking again.
    pub ramp: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            min_posts: 20,
            failure_pct: 90,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(30 * 60),
            probes: 3,
            probe_lease: Duration::from_secs(60),
            ramp: Duration::from_secs(30),
        }
    }
}

impl BreakerPolicy {
    /// Whether a window's tally says the partner is down.
    #[must_use]
    pub fn trips(&self, tally: Tally) -> bool {
        tally.posts >= self.min_posts.max(1)
            && u64::from(tally.failures) * 100
                >= u64::from(tally.posts) * u64::from(self.failure_pct)
    }
}

/// The share of a slow start that passes at once.
const FIRST_SHARE: f64 = 0.1;

/// The shared state. `open_until: None` is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerState {
    /// No post before then, except the probes.
    pub open_until: Option<DateTime<Utc>>,
    /// The cool-down that opened it last (the next one doubles it).
    pub cool_down: Duration,
    /// The probes out in this half-open round, and until when each may take.
    pub probes: Vec<(String, DateTime<Utc>)>,
    /// Probes of this round that failed.
    pub failed_probes: u32,
    /// When it last closed: the slow start runs from here, and a
    /// dispatcher's window counts only posts after it.
    pub closed_at: Option<DateTime<Utc>>,
    /// Incremented by every write (the store's condition).
    pub version: u64,
}

/// What a delivery may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Closed: post.
    Pass,
    /// Half-open with a probe slot free: try to become a probe.
    Probe,
    /// Hold the message this long and ask again.
    Hold(Duration),
}

/// How a post went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// The partner answered (whatever it said, other than 5xx/408/429).
    Answered,
    /// 429: the partner is up and asks us to slow down.
    Throttled,
    /// No answer, a timeout, a 5xx or a 408.
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

    /// Whether the delivery `owner` may post at `now`.
    #[must_use]
    pub fn gate(&self, owner: &str, now: DateTime<Utc>, policy: &BreakerPolicy) -> Gate {
        let Some(until) = self.open_until else {
            return self.slow_start(owner, now, policy);
        };
        if until > now {
            return Gate::Hold(until_from(now, until));
        }
        if self.probe_slots_free(now, policy) {
            return Gate::Probe;
        }
        // Probes are out: come back once they have likely answered, spread
        // over the ramp, so a close meets the held messages one by one
        // rather than all at once, and each asks once per round, not every
        // few seconds.
        Gate::Hold(policy.ramp.mul_f64(0.5 + share(owner) / 2.0).max(MIN_HOLD))
    }

    /// Closed: during the slow start only a growing share passes; the
    /// others hold until their turn.
    fn slow_start(&self, owner: &str, now: DateTime<Utc>, policy: &BreakerPolicy) -> Gate {
        let Some(closed_at) = self.closed_at else {
            return Gate::Pass;
        };
        let elapsed = (now - closed_at).to_std().unwrap_or_default();
        if elapsed >= policy.ramp {
            return Gate::Pass;
        }
        let passing =
            (elapsed.as_secs_f64() / policy.ramp.as_secs_f64().max(f64::EPSILON)).max(FIRST_SHARE);
        let mine = share(owner);
        if mine < passing {
            return Gate::Pass;
        }
        Gate::Hold(
            policy
                .ramp
                .mul_f64(mine)
                .saturating_sub(elapsed)
                .max(MIN_HOLD),
        )
    }

    fn probe_slots_free(&self, now: DateTime<Utc>, policy: &BreakerPolicy) -> bool {
        let live = self.probes.iter().filter(|(_, until)| *until > now).count();
        u32::try_from(live)
            .unwrap_or(u32::MAX)
            .saturating_add(self.failed_probes)
            < policy.probes
    }

    /// Makes `owner` a probe (the write's change; its condition is the
    /// version the gate was read at). Probes whose lease ran out without a
    /// report give their slot up.
    pub fn claim_probe(&mut self, owner: &str, now: DateTime<Utc>, policy: &BreakerPolicy) {
        self.probes.retain(|(_, until)| *until > now);
        self.probes
            .push((owner.to_owned(), now + chrono_duration(policy.probe_lease)));
    }

    /// Gives `owner`'s probe slot back without an outcome (it found nothing
    /// to post); `false` when it held none.
    pub fn release_probe(&mut self, owner: &str) -> bool {
        let before = self.probes.len();
        self.probes.retain(|(o, _)| o != owner);
        self.probes.len() != before
    }

    /// Records a post's outcome given what this dispatcher saw lately; the
    /// transition it caused, if any.
    pub fn record(
        &mut self,
        outcome: PostOutcome,
        owner: &str,
        seen: &FailureWindow,
        now: DateTime<Utc>,
        policy: &BreakerPolicy,
    ) -> Option<Transition> {
        let probing = self.probes.iter().any(|(o, _)| o == owner);
        match outcome {
            PostOutcome::Answered | PostOutcome::Throttled => {
                if self.is_open() {
                    *self = Self {
                        closed_at: Some(now),
                        version: self.version,
                        ..Self::default()
                    };
                    return Some(Transition::Closed);
                }
                None
            }
            PostOutcome::Down if probing => {
                self.release_probe(owner);
                self.failed_probes = self.failed_probes.saturating_add(1);
                if self.failed_probes < policy.probes {
                    return None;
                }
                let cool_down = (self.cool_down * 2).min(policy.max_cool_down);
                self.open(cool_down, now);
                Some(Transition::Reopened(cool_down))
            }
            PostOutcome::Down => {
                if self.is_open() || !policy.trips(seen.tally(now, policy.window, self.closed_at)) {
                    return None;
                }
                self.open(policy.cool_down, now);
                Some(Transition::Opened(policy.cool_down))
            }
        }
    }

    fn open(&mut self, cool_down: Duration, now: DateTime<Utc>) {
        self.cool_down = cool_down;
        self.open_until = Some(now + chrono_duration(cool_down));
        self.probes.clear();
        self.failed_probes = 0;
    }

    /// Whether recording `outcome` would change anything: most posts change
    /// nothing (no write for them).
    #[must_use]
    pub fn changes_with(
        &self,
        outcome: PostOutcome,
        owner: &str,
        seen: &FailureWindow,
        now: DateTime<Utc>,
        policy: &BreakerPolicy,
    ) -> bool {
        let mut after = self.clone();
        after.record(outcome, owner, seen, now, policy);
        after != *self
    }
}

/// The shortest hold: a visibility change per second at most.
const MIN_HOLD: Duration = Duration::from_secs(1);

/// Where `owner` falls in [0, 1): its turn in a slow start, its share of a
/// spread-out hold. Derived from the delivery (no randomness needed; a
/// message received again is another delivery, with another share).
#[must_use]
pub fn share(owner: &str) -> f64 {
    let hash = owner.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    #[allow(clippy::cast_precision_loss)] // 1,000 steps are plenty
    let step = (hash % 1000) as f64;
    step / 1000.0
}

fn until_from(now: DateTime<Utc>, until: DateTime<Utc>) -> Duration {
    (until - now).to_std().unwrap_or_default()
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

    fn ms(ms: i64) -> chrono::Duration {
        chrono::Duration::milliseconds(ms)
    }

    /// A small deterministic generator (the model test uses proptest).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// One dispatcher posting `per_second` times a second for `seconds`,
    /// each post failing with `fail(post)`; returns when the breaker opened.
    fn run(
        per_second: i64,
        seconds: i64,
        mut fail: impl FnMut(u64) -> Option<PostOutcome>,
    ) -> Option<chrono::Duration> {
        let policy = BreakerPolicy::default();
        let mut state = BreakerState::default();
        let mut seen = FailureWindow::default();
        for (post, tick) in (0..per_second * seconds).enumerate() {
            let now = t0() + ms(tick * 1000 / per_second);
            let outcome = fail(post as u64).unwrap_or(PostOutcome::Answered);
            seen.record(now, outcome == PostOutcome::Down, policy.window);
            if let Some(Transition::Opened(_)) = state.record(outcome, "d", &seen, now, &policy) {
                return Some(now - t0());
            }
        }
        None
    }

    #[test]
    fn a_closed_breaker_lets_every_post_through() {
        let policy = BreakerPolicy::default();
        assert_eq!(BreakerState::default().gate("a", t0(), &policy), Gate::Pass);
    }

    #[test]
    fn a_partner_failing_every_post_opens_it_within_seconds() {
        // 50 posts in flight answered in about a second (connection refused,
        // 5xx), or one every half second (a dispatcher waiting out timeouts).
        for per_second in [50, 2] {
            let opened = run(per_second, 60, |_| Some(PostOutcome::Down));
            assert!(
                opened.is_some_and(|at| at < chrono::Duration::seconds(10)),
                "{per_second}/s: {opened:?}"
            );
        }
    }

    #[test]
    fn a_partner_failing_thirty_percent_of_posts_at_random_never_opens_it() {
        // Busy and quiet dispatchers, an hour each: streaks of failures
        // come every few hundred posts, and none opens it.
        for (seed, per_second) in [(1, 50), (2, 5), (3, 1)] {
            let mut random = Lcg(seed);
            let opened = run(per_second, 3600, |_| {
                (random.below(100) < 30).then_some(PostOutcome::Down)
            });
            assert_eq!(opened, None, "{per_second}/s");
        }
    }

    #[test]
    fn ten_failures_in_a_row_among_answers_do_not_open_it() {
        let opened = run(20, 60, |post| {
            (post % 100 < 10).then_some(PostOutcome::Down)
        });
        assert_eq!(opened, None);
    }

    #[test]
    fn a_partner_answering_429_to_everything_is_not_down() {
        assert_eq!(run(50, 60, |_| Some(PostOutcome::Throttled)), None);
    }

    fn opened(policy: &BreakerPolicy) -> BreakerState {
        let mut state = BreakerState::default();
        let mut seen = FailureWindow::default();
        for _ in 0..policy.min_posts {
            seen.record(t0(), true, policy.window);
        }
        let opened = state.record(PostOutcome::Down, "d", &seen, t0(), policy);
        assert_eq!(opened, Some(Transition::Opened(policy.cool_down)));
        state
    }

    #[test]
    fn an_open_breaker_holds_posts_for_the_rest_of_the_cool_down() {
        let policy = BreakerPolicy::default();
        let state = opened(&policy);
        assert_eq!(
            state.gate("a", t0() + ms(10_000), &policy),
            Gate::Hold(Duration::from_secs(20))
        );
    }

    #[test]
    fn after_the_cool_down_several_probe_and_the_others_hold_for_a_while_not_seconds() {
        let policy = BreakerPolicy::default();
        let mut state = opened(&policy);
        let later = t0() + chrono_duration(policy.cool_down);
        for probe in ["p1", "p2", "p3"] {
            assert_eq!(state.gate(probe, later, &policy), Gate::Probe);
            state.claim_probe(probe, later, &policy);
        }
        let Gate::Hold(hold) = state.gate("held", later, &policy) else {
            panic!("a fourth delivery holds");
        };
        assert!(hold >= policy.ramp / 2, "{hold:?}");
        // A probe that never reported frees its slot after its lease.
        let lease_over = later + chrono_duration(policy.probe_lease);
        assert_eq!(state.gate("next", lease_over, &policy), Gate::Probe);
    }

    #[test]
    fn one_answer_among_the_probes_closes_it() {
        let policy = BreakerPolicy::default();
        let mut state = opened(&policy);
        let later = t0() + chrono_duration(policy.cool_down);
        let seen = FailureWindow::default();
        for probe in ["p1", "p2", "p3"] {
            state.claim_probe(probe, later, &policy);
        }
        assert_eq!(
            state.record(PostOutcome::Down, "p1", &seen, later, &policy),
            None
        );
        assert_eq!(
            state.record(PostOutcome::Answered, "p2", &seen, later, &policy),
            Some(Transition::Closed)
        );
        assert!(!state.is_open());
    }

    #[test]
    fn the_cool_down_doubles_only_when_every_probe_failed() {
        let policy = BreakerPolicy::default();
        let mut state = opened(&policy);
        let seen = FailureWindow::default();
        let mut cool_downs = Vec::new();
        for _ in 0..8 {
            let now = state.open_until.unwrap();
            let mut transitions = Vec::new();
            for probe in ["p1", "p2", "p3"] {
                assert_eq!(state.gate(probe, now, &policy), Gate::Probe);
                state.claim_probe(probe, now, &policy);
                transitions.push(state.record(PostOutcome::Down, probe, &seen, now, &policy));
            }
            match transitions[..] {
                [None, None, Some(Transition::Reopened(d))] => cool_downs.push(d.as_secs()),
                _ => panic!("{transitions:?}"),
            }
        }
        assert_eq!(cool_downs, [60, 120, 240, 480, 960, 1800, 1800, 1800]);
    }

    #[test]
    fn a_failure_of_a_post_that_was_not_a_probe_changes_nothing_while_open() {
        let policy = BreakerPolicy::default();
        let state = opened(&policy);
        let mut seen = FailureWindow::default();
        seen.record(t0(), true, policy.window);
        assert!(!state.changes_with(PostOutcome::Down, "late", &seen, t0(), &policy));
    }

    #[test]
    fn after_a_close_the_traffic_comes_back_over_the_ramp() {
        let policy = BreakerPolicy::default();
        let mut state = opened(&policy);
        let closed_at = t0() + chrono_duration(policy.cool_down);
        state.claim_probe("p", closed_at, &policy);
        state.record(
            PostOutcome::Answered,
            "p",
            &FailureWindow::default(),
            closed_at,
            &policy,
        );
        let passing = |after_ms: i64| {
            (0..1000)
                .filter(|i| {
                    state.gate(&format!("m{i}"), closed_at + ms(after_ms), &policy) == Gate::Pass
                })
                .count()
        };
        let (first, half, all) = (passing(0), passing(15_000), passing(30_000));
        assert!((50..200).contains(&first), "{first}");
        assert!((400..600).contains(&half), "{half}");
        assert_eq!(all, 1000);
        // A held delivery comes back about when its turn comes.
        let Gate::Hold(hold) = (0..1000)
            .map(|i| state.gate(&format!("m{i}"), closed_at, &policy))
            .find(|gate| *gate != Gate::Pass)
            .unwrap()
        else {
            unreachable!()
        };
        assert!(hold <= policy.ramp, "{hold:?}");
    }

    #[test]
    fn failures_from_before_the_last_close_do_not_open_it_again() {
        let policy = BreakerPolicy::default();
        let mut seen = FailureWindow::default();
        for _ in 0..100 {
            seen.record(t0(), true, policy.window);
        }
        let mut state = BreakerState {
            closed_at: Some(t0() + ms(1000)),
            ..BreakerState::default()
        };
        let now = t0() + ms(2000);
        seen.record(now, true, policy.window);
        assert_eq!(
            state.record(PostOutcome::Down, "d", &seen, now, &policy),
            None
        );
    }

    #[tokio::test]
    async fn the_memory_store_refuses_a_stale_version() {
        let store = MemoryBreakerStore::default();
        let mut state = store.load().await.unwrap();
        state.failed_probes = 1;
        assert!(store.save(&state).await.unwrap());
        assert!(!store.save(&state).await.unwrap(), "version 0 is stale now");
        assert_eq!(store.load().await.unwrap().version, 1);
    }
}
