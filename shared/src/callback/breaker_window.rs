//! What one dispatcher saw of the partner lately: its posts and how many of
//! them failed as if the partner were down, over a sliding window.
//!
//! Each warm dispatcher keeps its own window in memory: a down partner is
//! down for every dispatcher, so the first to see it opens the shared
//! breaker, and counting this way costs no write per post (a shared count
//! would add a conditional write, contended by every dispatcher, to each
//! callback). The rule that turns the window into "down" is
//! [`BreakerPolicy::trips`](super::breaker::BreakerPolicy::trips).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

/// Posts and failures per second, the last `window` seconds of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureWindow {
    /// (second since the epoch, posts, failures), oldest first.
    seconds: VecDeque<(i64, u32, u32)>,
}

/// What the window holds for a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub posts: u32,
    pub failures: u32,
}

impl FailureWindow {
    /// Counts a post that ended at `at`; `failed` when it failed as if the
    /// partner were down. Keeps only the last `window` seconds.
    pub fn record(&mut self, at: DateTime<Utc>, failed: bool, window: std::time::Duration) {
        let second = at.timestamp();
        match self.seconds.back_mut() {
            Some((s, posts, failures)) if *s == second => {
                *posts = posts.saturating_add(1);
                *failures = failures.saturating_add(u32::from(failed));
            }
            _ => self.seconds.push_back((second, 1, u32::from(failed))),
        }
        let oldest = second - i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        while self.seconds.front().is_some_and(|(s, _, _)| *s <= oldest) {
            self.seconds.pop_front();
        }
    }

    /// The posts that ended within `window` before `now`, and no earlier
    /// than `since` (the breaker's last close: what came before it is about
    /// an outage already dealt with).
    #[must_use]
    pub fn tally(
        &self,
        now: DateTime<Utc>,
        window: std::time::Duration,
        since: Option<DateTime<Utc>>,
    ) -> Tally {
        let oldest = now.timestamp() - i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let since = since.map_or(i64::MIN, |t| t.timestamp());
        self.seconds
            .iter()
            .filter(|(s, _, _)| *s > oldest && *s >= since)
            .fold(Tally::default(), |tally, (_, posts, failures)| Tally {
                posts: tally.posts.saturating_add(*posts),
                failures: tally.failures.saturating_add(*failures),
            })
    }

    /// Forgets everything (this dispatcher just opened the breaker).
    pub fn clear(&mut self) {
        self.seconds.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    const WINDOW: Duration = Duration::from_secs(30);

    #[test]
    fn counts_posts_and_failures_within_the_window_only() {
        let mut window = FailureWindow::default();
        window.record(at(0), true, WINDOW);
        window.record(at(500), false, WINDOW);
        window.record(at(20_000), true, WINDOW);
        assert_eq!(
            window.tally(at(20_000), WINDOW, None),
            Tally {
                posts: 3,
                failures: 2
            }
        );
        // 30 s after the first second, it has left the window.
        assert_eq!(
            window.tally(at(30_000), WINDOW, None),
            Tally {
                posts: 1,
                failures: 1
            }
        );
    }

    #[test]
    fn posts_before_the_last_close_do_not_count() {
        let mut window = FailureWindow::default();
        for ms in 0..10 {
            window.record(at(ms * 100), true, WINDOW);
        }
        window.record(at(5_000), false, WINDOW);
        assert_eq!(
            window.tally(at(5_000), WINDOW, Some(at(4_000))),
            Tally {
                posts: 1,
                failures: 0
            }
        );
    }

    #[test]
    fn memory_stays_bounded_by_the_window() {
        let mut window = FailureWindow::default();
        for second in 0..10_000 {
            window.record(at(second * 1000), second % 3 == 0, WINDOW);
        }
        assert!(window.seconds.len() <= 30, "{}", window.seconds.len());
    }
}
