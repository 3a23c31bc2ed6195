//! The invocation's deadline: a post is started only when the time left in
//! the Lambda invocation handling its message covers the post's timeout and
//! the writes that record its answer. A post made later could reach the
//! partner (or the ERP) and never be recorded: the next receive would post
//! it again, and a success could be posted twice.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The latest start of a post that can still be recorded: `deadline`
/// less `record` (the budget of the writes that record the answer); the
/// post's own timeout is the caller's to add. `None`: no deadline.
#[must_use]
pub fn last_record_start(
    deadline: Option<DateTime<Utc>>,
    record: Duration,
) -> Option<DateTime<Utc>> {
    deadline.map(|deadline| {
        deadline - chrono::Duration::from_std(record).unwrap_or(chrono::Duration::MAX)
    })
}

/// Whether a post of `post_timeout` started at `now` can be answered by
/// `until` (the earlier of the lease's end and [`last_record_start`]).
#[must_use]
pub fn affords(now: DateTime<Utc>, post_timeout: Duration, until: Option<DateTime<Utc>>) -> bool {
    let post_timeout = chrono::Duration::from_std(post_timeout).unwrap_or(chrono::Duration::MAX);
    until.is_none_or(|until| now + post_timeout < until)
}

/// The earlier of two optional instants (`None`: no bound).
#[must_use]
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("an instant")
    }

    #[test]
    fn a_post_is_afforded_only_when_its_timeout_and_its_record_fit_before_the_deadline() {
        let until = last_record_start(Some(at(60)), Duration::from_secs(30));
        assert_eq!(until, Some(at(30)));
        assert!(affords(at(0), Duration::from_secs(10), until));
        assert!(affords(at(19), Duration::from_secs(10), until));
        assert!(!affords(at(20), Duration::from_secs(10), until));
        assert!(affords(at(1_000), Duration::from_secs(10), None));
    }

    #[test]
    fn the_earlier_bound_counts() {
        assert_eq!(earliest(Some(at(1)), Some(at(2))), Some(at(1)));
        assert_eq!(earliest(None, Some(at(2))), Some(at(2)));
        assert_eq!(earliest(None, None), None);
    }
}
