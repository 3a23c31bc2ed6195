use chrono::TimeZone;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
}

fn due() -> Callback {
    let mut callback = Callback::new(true);
    callback.make_due(now());
    callback
}

fn claim(message: &str, receive: u32, at: DateTime<Utc>) -> Claim {
    Claim {
        generation: 1,
        message_id: message.into(),
        owner: format!("{message}#{receive}"),
        now: at,
        lease: Duration::seconds(60),
        max_posts: 3,
    }
}

fn attempt() -> Attempt {
    Attempt {
        at: now(),
        http_status: Some(503),
        outcome: AttemptStatus::Retrying,
        latency_ms: 20,
        ..Attempt::default()
    }
}

/// A post the partner answered with HTTP 503; `next` is the retry's time, `None` when the schedule is spent.
fn retry(next: Option<DateTime<Utc>>) -> AttemptOutcome {
    AttemptOutcome::Retry {
        reason: "HTTP 503".into(),
        next,
    }
}

/// Records a post's outcome with an empty partner answer.
fn settled(callback: &mut Callback, outcome: AttemptOutcome) {
    callback.settle(attempt(), PartnerAnswer::default(), outcome);
}

/// Whether a delivery of `message` (its `receive`th) may claim the callback at `at`.
fn check(
    callback: &Callback,
    message: &str,
    receive: u32,
    at: DateTime<Utc>,
) -> Result<(), NotClaimable> {
    callback.check_claim(&claim(message, receive, at))
}

fn claimed(callback: &mut Callback, claim: &Claim) {
    callback.check_claim(claim).unwrap();
    callback.apply_claim(claim);
}

#[test]
fn only_one_delivery_holds_the_lease() {
    let mut callback = due();
    claimed(&mut callback, &claim("m-1", 1, now()));
    assert_eq!(
        check(&callback, "m-1", 2, now()),
        Err(NotClaimable::Leased(now() + Duration::seconds(60)))
    );
    // A crashed holder's lease runs out.
    assert_eq!(
        check(&callback, "m-1", 2, now() + Duration::seconds(61)),
        Ok(())
    );
}

#[test]
fn a_second_message_for_the_same_generation_is_a_duplicate() {
    let mut callback = due();
    claimed(&mut callback, &claim("m-1", 1, now()));
    settled(&mut callback, retry(Some(now())));
    assert_eq!(
        check(&callback, "m-2", 1, now()),
        Err(NotClaimable::DuplicateMessage)
    );
}

#[test]
fn a_message_of_an_older_generation_is_superseded() {
    let mut callback = due();
    callback.make_due(now());
    assert_eq!(
        check(&callback, "m-1", 1, now()),
        Err(NotClaimable::Superseded)
    );
}

#[test]
fn a_delivered_callback_is_never_claimed_again() {
    let mut callback = due();
    claimed(&mut callback, &claim("m-1", 1, now()));
    settled(&mut callback, AttemptOutcome::Delivered);
    assert_eq!(
        check(&callback, "m-1", 2, now()),
        Err(NotClaimable::Settled(CallbackStatus::Delivered))
    );
}

#[test]
fn no_post_before_the_schedule_says_so() {
    let mut callback = due();
    claimed(&mut callback, &claim("m-1", 1, now()));
    let next = now() + Duration::minutes(5);
    settled(&mut callback, retry(Some(next)));
    assert_eq!(
        check(&callback, "m-1", 2, now()),
        Err(NotClaimable::NotYet(next))
    );
    assert_eq!(check(&callback, "m-1", 2, next), Ok(()));
}

#[test]
fn the_schedule_counts_posts_not_deliveries() {
    let mut callback = due();
    for receive in 1..=3 {
        let at = now() + Duration::minutes(i64::from(receive) * 2);
        claimed(&mut callback, &claim("m-1", receive, at));
        callback.lease = None; // the post's outcome was never recorded
    }
    assert_eq!(callback.posts, 3);
    assert_eq!(
        check(&callback, "m-1", 9, now() + Duration::hours(1)),
        Err(NotClaimable::ScheduleSpent)
    );
}

#[test]
fn the_last_failed_post_marks_it_dead_lettered_and_says_why() {
    let mut callback = due();
    settled(&mut callback, retry(None));
    assert_eq!(callback.status, CallbackStatus::DeadLettered);
    assert!(callback.reason.unwrap().contains("dead-letter"));
}

#[test]
fn a_replay_waits_for_an_attempt_in_flight() {
    let mut callback = due();
    claimed(&mut callback, &claim("m-1", 1, now()));
    assert_eq!(
        callback.check_replay(now()),
        Err(NotReplayable::InFlight(now() + Duration::seconds(60)))
    );
    assert_eq!(callback.check_replay(now() + Duration::seconds(61)), Ok(()));
    settled(&mut callback, AttemptOutcome::Delivered);
    assert_eq!(
        callback.check_replay(now()),
        Err(NotReplayable::Status(CallbackStatus::Delivered))
    );
}

#[test]
fn the_ledger_and_the_raw_response_are_bounded() {
    let mut callback = due();
    for _ in 0..25 {
        let answer = PartnerAnswer {
            raw_response: Some("é".repeat(2000)),
            ..PartnerAnswer::default()
        };
        callback.settle(
            attempt(),
            answer,
            AttemptOutcome::Retry {
                reason: "x".into(),
                next: Some(now()),
            },
        );
    }
    assert_eq!(callback.attempts.len(), MAX_LEDGER);
    assert_eq!(callback.attempt_count, 25);
    assert!(callback.raw_response.unwrap().len() <= MAX_RAW_RESPONSE);
}
