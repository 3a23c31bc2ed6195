//! The Lambda invocation's deadline, as the dispatchers use it.

use chrono::{DateTime, Utc};

/// The invocation's deadline from its context; `None` when it is not in the
/// future: a runtime emulator that sends no `Lambda-Runtime-Deadline-Ms`
/// gives the epoch, and every post would then be refused as unaffordable
/// (seen with `cargo lambda watch`: every webhook delivery held).
#[must_use]
pub fn deadline(context_deadline: std::time::SystemTime) -> Option<DateTime<Utc>> {
    let deadline = DateTime::<Utc>::from(context_deadline);
    (deadline > Utc::now()).then_some(deadline)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_deadline_ahead_is_kept_and_a_missing_one_is_none() {
        let ahead = SystemTime::now() + Duration::from_secs(30);
        assert!(super::deadline(ahead).is_some());
        assert_eq!(super::deadline(SystemTime::UNIX_EPOCH), None);
    }
}
