//! Fewer posts at once when the partner answers 429.
//!
//! A 429 is the partner asking us to slow down, not to stop: the breaker
//! does not open for it, and the message itself waits for its `Retry-After`.
//! The other posts of the same dispatcher slow down too: its posts at once
//! are halved (at most once a second: a burst of 429s from one moment is one
//! signal), and grow back by one per answered post; past [`UNLIMITED`] the
//! limit is dropped. A delivery over the limit is held before its claim, as
//! the breaker holds, so its schedule is untouched.

use chrono::{DateTime, Utc};

use super::breaker::PostOutcome;

/// A limit this high limits nothing (the local stack runs 50 posts at once,
/// a Lambda instance 10).
pub const UNLIMITED: u32 = 256;

/// One dispatcher's posts in flight and their limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttle {
    in_flight: u32,
    /// `None`: no limit.
    limit: Option<u32>,
    last_cut: Option<DateTime<Utc>>,
}

impl Throttle {
    /// Whether a post may start now; counts it when it may.
    pub fn try_start(&mut self) -> bool {
        if self.limit.is_some_and(|limit| self.in_flight >= limit) {
            return false;
        }
        self.in_flight += 1;
        true
    }

    /// A post started by [`Throttle::try_start`] ended (whatever happened).
    pub fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// What a post's answer says about the pace.
    pub fn observe(&mut self, outcome: PostOutcome, now: DateTime<Utc>) {
        match outcome {
            PostOutcome::Throttled => {
                if self
                    .last_cut
                    .is_some_and(|at| now - at < chrono::Duration::seconds(1))
                {
                    return;
                }
                let current = self.limit.unwrap_or(UNLIMITED).min(self.in_flight.max(1));
                self.limit = Some((current / 2).max(1));
                self.last_cut = Some(now);
            }
            PostOutcome::Answered => {
                self.limit = self
                    .limit
                    .map(|limit| limit + 1)
                    .filter(|limit| *limit < UNLIMITED);
            }
            PostOutcome::Down => {}
        }
    }

    /// The current limit (`None`: none).
    #[must_use]
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    fn busy(posts: u32) -> Throttle {
        let mut throttle = Throttle::default();
        for _ in 0..posts {
            assert!(throttle.try_start());
        }
        throttle
    }

    #[test]
    fn a_429_halves_the_posts_at_once_and_answers_grow_them_back() {
        let mut throttle = busy(40);
        throttle.observe(PostOutcome::Throttled, at(0));
        assert_eq!(throttle.limit(), Some(20));
        assert!(!throttle.try_start(), "40 in flight, 20 allowed");
        for _ in 0..21 {
            throttle.finish();
        }
        assert!(throttle.try_start());
        for _ in 0..10 {
            throttle.observe(PostOutcome::Answered, at(100));
        }
        assert_eq!(throttle.limit(), Some(30));
    }

    #[test]
    fn many_429s_at_one_moment_are_one_signal() {
        let mut throttle = busy(40);
        for ms in 0..50 {
            throttle.observe(PostOutcome::Throttled, at(ms * 10));
        }
        assert_eq!(throttle.limit(), Some(20));
        throttle.observe(PostOutcome::Throttled, at(1_500));
        assert_eq!(throttle.limit(), Some(10));
    }

    #[test]
    fn it_never_stops_posting_and_lets_go_once_grown_back() {
        let mut throttle = busy(1);
        for second in 0..20 {
            throttle.observe(PostOutcome::Throttled, at(second * 1000));
        }
        assert_eq!(throttle.limit(), Some(1));
        for _ in 0..UNLIMITED {
            throttle.observe(PostOutcome::Answered, at(30_000));
        }
        assert_eq!(throttle.limit(), None);
    }

    #[test]
    fn failures_change_nothing() {
        let mut throttle = busy(10);
        throttle.observe(PostOutcome::Down, at(0));
        assert_eq!(throttle.limit(), None);
    }
}
