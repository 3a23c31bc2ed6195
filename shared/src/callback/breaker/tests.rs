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
