//! When to try a callback again. SQS is the timer: after a transient failure
//! the dispatcher hides the message for the next delay
//! (`ChangeMessageVisibility`) and the order records when the next post may
//! happen. Posts are counted on the order, not by the queue's receive count
//! (deliveries that only wait for a lease or meet a store error do not use up
//! the schedule); after `max_posts` posts the dispatcher marks the order
//! `dead_lettered` and moves the message to the dead-letter queue itself.
//!
//! Default schedule, after post n = 1..7 (post 8 is the last):
//! 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — 8 posts over about 27 h 35 min,
//! like Svix's webhook schedule, so a partner outage of a day loses nothing.
//! A `Retry-After` longer than the scheduled delay wins. SQS caps one delay at
//! 12 h.

use std::time::Duration;

/// SQS's longest visibility timeout.
const MAX_DELAY: Duration = Duration::from_secs(12 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the n-th delivery failed (the last entry repeats).
    pub delays: Vec<Duration>,
    /// Posts in one generation's schedule; the last one that fails
    /// dead-letters the callback.
    pub max_posts: u32,
    /// How long a dispatcher holds the callback while sending. Longer than
    /// the partner timeout, shorter than the queue's visibility timeout.
    pub lease: Duration,
    /// The partner timeout: a post starts only while the lease has at least
    /// this long left, so that its answer can be recorded under the lease.
    pub post_timeout: Duration,
}

/// The deployed partner timeout (`CALLBACK_TIMEOUT_SECONDS`).
const DEFAULT_PARTNER_TIMEOUT: Duration = Duration::from_secs(10);

/// Partner timeouts one lease covers; see [`RetryPolicy::for_partner_timeout`].
const LEASE_TIMEOUTS: u32 = 5;

impl Default for RetryPolicy {
    /// The deployed schedule with the deployed partner timeout (10 s, so a
    /// 50 s lease).
    fn default() -> Self {
        Self::for_partner_timeout(DEFAULT_PARTNER_TIMEOUT)
    }
}

impl RetryPolicy {
    /// The default schedule for a partner timeout of `timeout`: the one place
    /// the lease is derived from it (the function's start-up and the local
    /// stack both build their policy here).
    ///
    /// The lease is 5 × the timeout because one attempt may take four
    /// timeouts under it: the post; on a 401, waiting for another
    /// dispatcher's token refresh, then CK1's token endpoint; and the
    /// repeated post. The fifth is the margin for the store writes around
    /// them, so the answer is recorded while the lease still holds. Deployed
    /// (10 s) that is 50 s: within the function's 60 s timeout and well
    /// below the queue's 360 s visibility timeout.
    #[must_use]
    pub fn for_partner_timeout(timeout: Duration) -> Self {
        Self {
            delays: [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_posts: 8,
            lease: timeout.saturating_mul(LEASE_TIMEOUTS),
            post_timeout: timeout,
        }
    }

    /// Parses `CALLBACK_RETRY_DELAYS`: seconds, comma-separated.
    pub fn parse_delays(text: &str) -> Result<Vec<Duration>, String> {
        let delays: Result<Vec<Duration>, String> = text
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| format!("{part:?} is not a number of seconds"))
            })
            .collect();
        delays.and_then(|delays| {
            if delays.is_empty() {
                Err("no delays".into())
            } else {
                Ok(delays)
            }
        })
    }

    /// From the first post to the last, were every post to fail at once.
    #[must_use]
    pub fn span(&self) -> Duration {
        (1..self.max_posts)
            .map(|posts| self.delay(posts, None))
            .sum()
    }

    /// How long to wait after post `posts` failed.
    #[must_use]
    pub fn delay(&self, posts: u32, retry_after: Option<Duration>) -> Duration {
        let index = usize::try_from(posts.saturating_sub(1)).unwrap_or(usize::MAX);
        let scheduled = self
            .delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or_default();
        scheduled
            .max(retry_after.unwrap_or_default())
            .min(MAX_DELAY)
    }
}

/// How long to hide a message whose delivery met a store error: doubling from
/// 5 s up to 15 min, so a long store outage spaces its deliveries out instead
/// of running into the queue's `maxReceiveCount` safety net.
#[must_use]
pub fn store_backoff(receive_count: u32) -> Duration {
    const CAP: Duration = Duration::from_secs(15 * 60);
    let doublings = receive_count.saturating_sub(1).min(16);
    Duration::from_secs(5)
        .saturating_mul(1 << doublings)
        .min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_27_and_a_half_hours() {
        assert_eq!(RetryPolicy::default().span(), Duration::from_secs(99_305));
    }

    #[test]
    fn the_default_schedule_covers_more_than_a_day() {
        let policy = RetryPolicy::default();
        let total: Duration = (1..policy.max_posts).map(|n| policy.delay(n, None)).sum();
        assert!(total > Duration::from_secs(27 * 3600), "{total:?}");
        assert!(policy.max_posts >= 5);
    }

    #[test]
    fn retry_after_wins_when_longer_but_never_beyond_twelve_hours() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            policy.delay(2, Some(Duration::from_secs(1))),
            Duration::from_secs(300)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(99_999))),
            MAX_DELAY
        );
    }

    #[test]
    fn the_lease_covers_five_partner_timeouts() {
        let policy = RetryPolicy::for_partner_timeout(Duration::from_secs(10));
        assert_eq!(policy.lease, Duration::from_secs(50));
        assert_eq!(policy.post_timeout, Duration::from_secs(10));
        assert_eq!(
            RetryPolicy::for_partner_timeout(Duration::from_secs(1)).lease,
            Duration::from_secs(5)
        );
        // The deployed timeout (template: CALLBACK_TIMEOUT_SECONDS = 10).
        assert_eq!(RetryPolicy::default(), policy);
    }

    #[test]
    fn store_errors_back_off_up_to_a_quarter_of_an_hour() {
        assert_eq!(store_backoff(1), Duration::from_secs(5));
        assert_eq!(store_backoff(2), Duration::from_secs(10));
        assert_eq!(store_backoff(100), Duration::from_secs(900));
    }

    #[test]
    fn delays_parse_from_seconds() {
        assert_eq!(
            RetryPolicy::parse_delays("1, 2,3"),
            Ok(vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(3)
            ])
        );
        assert!(RetryPolicy::parse_delays("1,x").is_err());
    }
}
