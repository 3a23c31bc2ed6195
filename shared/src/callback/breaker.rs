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
//! `ports::BreakerStore` (DynamoDB in AWS), written with a version check;
//! `dispatch` applies them to one delivery.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::breaker_window::{FailureWindow, Tally};

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

#[cfg(test)]
mod tests;
