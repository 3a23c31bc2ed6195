//! The store contract: one table of cases — a stored callback, then a claim
//! or a save, and the outcome and stored protocol state that must follow —
//! run against the in-memory store and against the DynamoDB adapter on
//! DynamoDB Local (`tests/store_contract.rs`).
//!
//! The claim rule is written twice: as [`Callback::check_claim`] (what the
//! in-memory store runs, and how the DynamoDB adapter explains a refusal) and
//! as the DynamoDB condition expression (what production runs). The save's
//! guard likewise: [`Callback::held_by`] and `lease_owner = :owner`. These
//! cases pin both: every clause of either has a case that fails without it
//! (the boundaries included: a lease or a schedule that ends at the claim's
//! `now` has ended).

use chrono::{DateTime, Duration, TimeZone, Utc};
use shared::domain::OrderNumber;
use shared::ports::{Access, ClaimOutcome, Guard, Insert, Lookup, OrderStore, Save};
use shared::record::OrderRecord;
use shared::record::callback::{
    Attempt, AttemptOutcome, AttemptStatus, Callback, CallbackStatus, Claim, Lease, NotClaimable,
    PartnerAnswer,
};

/// The claiming delivery's message and its fencing token (receive count 1).
pub const MESSAGE: &str = "m-1";
pub const OWNER: &str = "m-1#1";
/// Another delivery's token.
const OTHER_OWNER: &str = "m-1#2";
pub const LEASE_SECONDS: i64 = 50;
pub const MAX_POSTS: u32 = 3;

/// The claim's `now`.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .expect("a valid instant")
}

fn ms(millis: i64) -> Duration {
    Duration::milliseconds(millis)
}

/// What the case does to the stored order.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// A delivery of `message` for `generation` claims at [`now`], as [`OWNER`]'s
    /// receive count, with a [`LEASE_SECONDS`] lease and [`MAX_POSTS`] posts.
    Claim {
        generation: u64,
        message: &'static str,
    },
    /// Reads the order, applies `change` and saves it, conditional on the
    /// version read and, with `lease_owner`, on that token holding the lease.
    /// With `raced`, another writer saves the order between the read and
    /// this save.
    Save {
        lease_owner: Option<&'static str>,
        raced: bool,
        change: fn(&mut Callback),
    },
}

/// What must come of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The claim is written: the lease is [`OWNER`]'s until [`now`] + the
    /// lease, the generation is bound to [`MESSAGE`], `posts` posts are
    /// counted, the version is one up; nothing else changes.
    Claimed { posts: u32 },
    /// The claim is [`OWNER`]'s already (its retried write): claimed as it
    /// stands, nothing written, no post counted again.
    ClaimedAgain,
    /// The claim is refused for this reason; nothing changes.
    Refused(NotClaimable),
    /// No such order: nothing is claimed, and nothing is created.
    NoOrder,
    /// The save is written as saved (ledger lines included), one version up.
    Saved,
    /// The save is refused; the protocol state is unchanged.
    Stale,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    /// The stored callback, from one made due (generation 1, `pending`, no
    /// post yet); `None`: no order is stored.
    pub given: Option<fn(&mut Callback)>,
    pub when: When,
    pub then: Then,
}

/// A save of `change` without a lease token, no other writer in between.
fn save(change: fn(&mut Callback)) -> When {
    When::Save {
        lease_owner: None,
        raced: false,
        change,
    }
}

/// A save of `change` by [`OWNER`], conditional on its lease.
fn settle(change: fn(&mut Callback)) -> When {
    When::Save {
        lease_owner: Some(OWNER),
        raced: false,
        change,
    }
}

/// `save` with another writer saving between its read and its write.
fn raced(save: When) -> When {
    let When::Save {
        lease_owner,
        change,
        ..
    } = save
    else {
        panic!("only a save can be raced, not {save:?}");
    };
    When::Save {
        lease_owner,
        raced: true,
        change,
    }
}

fn due(_: &mut Callback) {}

fn retrying(callback: &mut Callback) {
    callback.status = CallbackStatus::Retrying;
    callback.message_id = Some(MESSAGE.into());
    callback.posts = 1;
    callback.next_attempt_at = Some(now() - Duration::seconds(1));
}

/// Retrying, its next attempt due `next`.
fn retrying_next_at(callback: &mut Callback, next: DateTime<Utc>) {
    retrying(callback);
    callback.next_attempt_at = Some(next);
}

/// Retrying after `posts` posts of the schedule.
fn retrying_after_posts(callback: &mut Callback, posts: u32) {
    retrying(callback);
    callback.posts = posts;
}

fn held(callback: &mut Callback, owner: &str, until: DateTime<Utc>) {
    callback.message_id = Some(MESSAGE.into());
    callback.posts = 1;
    callback.lease = Some(Lease {
        owner: owner.into(),
        until,
    });
}

fn claimed_by_owner(callback: &mut Callback) {
    held(callback, OWNER, now() + Duration::seconds(LEASE_SECONDS));
}

fn attempt(at: DateTime<Utc>, status: u16) -> Attempt {
    Attempt {
        at,
        http_status: Some(status),
        outcome: if status == 200 {
            AttemptStatus::Delivered
        } else {
            AttemptStatus::Retrying
        },
        latency_ms: 20,
        ..Attempt::default()
    }
}

fn settle_delivered(callback: &mut Callback) {
    callback.settle(
        attempt(now() + Duration::seconds(2), 200),
        PartnerAnswer {
            success: Some(true),
            message: Some("ok".into()),
            ..PartnerAnswer::default()
        },
        AttemptOutcome::Delivered,
    );
}

fn settle_retry(callback: &mut Callback) {
    callback.settle(
        attempt(now() + Duration::seconds(2), 503),
        PartnerAnswer::default(),
        AttemptOutcome::Retry {
            reason: "HTTP 503".into(),
            next: Some(now() + Duration::minutes(5)),
        },
    );
}

/// A stale holder's answer: the ledger only.
fn record_only(callback: &mut Callback) {
    callback.record_attempt(attempt(now() + Duration::seconds(3), 200));
}

/// More tries than the ledger keeps, in one save.
fn many_tries(callback: &mut Callback) {
    for second in 0..25 {
        callback.record_attempt(attempt(now() + Duration::seconds(second), 503));
    }
}

const fn claim(generation: u64) -> When {
    When::Claim {
        generation,
        message: MESSAGE,
    }
}

/// Every case, claims first.
#[must_use]
pub fn cases() -> Vec<Case> {
    let settled = |status| -> fn(&mut Callback) {
        match status {
            CallbackStatus::Delivered => |c| c.status = CallbackStatus::Delivered,
            CallbackStatus::Failed => |c| c.status = CallbackStatus::Failed,
            CallbackStatus::AwaitingShipment => |c| c.status = CallbackStatus::AwaitingShipment,
            CallbackStatus::NotRequired => |c| c.status = CallbackStatus::NotRequired,
            _ => |c| c.status = CallbackStatus::DeadLettered,
        }
    };
    let mut cases = vec![
        // Claims: `attribute_exists(order_number)`.
        Case {
            name: "a_due_callback_is_claimed",
            given: Some(due),
            when: claim(1),
            then: Then::Claimed { posts: 1 },
        },
        Case {
            name: "a_claim_for_an_order_that_does_not_exist_creates_nothing",
            given: None,
            when: claim(1),
            then: Then::NoOrder,
        },
        // `callback_status IN (:pending, :retrying)`.
        Case {
            name: "a_retrying_callback_is_claimed_once_its_next_attempt_is_due",
            given: Some(retrying),
            when: claim(1),
            then: Then::Claimed { posts: 2 },
        },
        Case {
            name: "a_dead_lettered_callback_is_not_claimed",
            given: Some(settled(CallbackStatus::DeadLettered)),
            when: claim(1),
            then: Then::Refused(NotClaimable::DeadLettered),
        },
        // `callback_generation = :generation`.
        Case {
            name: "a_message_of_an_older_generation_is_superseded",
            given: Some(|c| c.make_due(now() - Duration::minutes(1))),
            when: claim(1),
            then: Then::Refused(NotClaimable::Superseded),
        },
        Case {
            name: "a_message_of_a_generation_not_yet_stored_is_superseded",
            given: Some(due),
            when: claim(2),
            then: Then::Refused(NotClaimable::Superseded),
        },
        // `attribute_not_exists(callback_message) OR callback_message = :message`.
        Case {
            name: "a_second_message_for_the_same_generation_is_a_duplicate",
            given: Some(|c| {
                retrying(c);
                c.message_id = Some("m-0".into());
            }),
            when: claim(1),
            then: Then::Refused(NotClaimable::DuplicateMessage),
        },
        Case {
            name: "the_message_bound_to_the_generation_claims_again",
            given: Some(|c| c.message_id = Some(MESSAGE.into())),
            when: claim(1),
            then: Then::Claimed { posts: 1 },
        },
        // `attribute_not_exists(lease_until) OR lease_until <= :now`.
        Case {
            name: "a_live_lease_keeps_another_delivery_out",
            given: Some(|c| held(c, OTHER_OWNER, now() + ms(1))),
            when: claim(1),
            then: Then::Refused(NotClaimable::Leased(now() + ms(1))),
        },
        Case {
            // The SDK's retry of a claim that applied, its answer lost.
            name: "the_holder_retrying_its_applied_claim_holds_it_without_a_second_post",
            given: Some(claimed_by_owner),
            when: claim(1),
            then: Then::ClaimedAgain,
        },
        Case {
            name: "a_lease_that_ends_at_the_claim_has_ended",
            given: Some(|c| held(c, OTHER_OWNER, now())),
            when: claim(1),
            then: Then::Claimed { posts: 2 },
        },
        Case {
            name: "an_expired_lease_is_taken_over",
            given: Some(|c| held(c, OTHER_OWNER, now() - Duration::seconds(30))),
            when: claim(1),
            then: Then::Claimed { posts: 2 },
        },
        // `attribute_not_exists(next_attempt_at) OR next_attempt_at <= :now`.
        Case {
            name: "no_post_before_the_next_attempt",
            given: Some(|c| retrying_next_at(c, now() + ms(1))),
            when: claim(1),
            then: Then::Refused(NotClaimable::NotYet(now() + ms(1))),
        },
        Case {
            name: "a_next_attempt_at_the_claim_is_due",
            given: Some(|c| retrying_next_at(c, now())),
            when: claim(1),
            then: Then::Claimed { posts: 2 },
        },
        // `attribute_not_exists(callback_posts) OR callback_posts < :max_posts`.
        Case {
            name: "the_last_post_of_the_schedule_is_claimed",
            given: Some(|c| retrying_after_posts(c, MAX_POSTS - 1)),
            when: claim(1),
            then: Then::Claimed { posts: MAX_POSTS },
        },
        Case {
            name: "no_claim_once_every_post_of_the_schedule_was_claimed",
            given: Some(|c| retrying_after_posts(c, MAX_POSTS)),
            when: claim(1),
            then: Then::Refused(NotClaimable::ScheduleSpent),
        },
        // Saves: `version = :expected`.
        Case {
            name: "a_save_on_the_version_read_lands_with_its_ledger_line",
            given: Some(claimed_by_owner),
            when: save(record_only),
            then: Then::Saved,
        },
        Case {
            name: "a_save_behind_another_writer_is_stale",
            given: Some(due),
            when: raced(save(record_only)),
            then: Then::Stale,
        },
        Case {
            name: "the_ledger_keeps_the_latest_tries_and_counts_them_all",
            given: Some(claimed_by_owner),
            when: save(many_tries),
            then: Then::Saved,
        },
        // `… AND lease_owner = :owner` (the fencing token).
        Case {
            name: "the_lease_holder_settles_delivered",
            given: Some(claimed_by_owner),
            when: settle(settle_delivered),
            then: Then::Saved,
        },
        Case {
            name: "the_lease_holder_settles_a_retry",
            given: Some(claimed_by_owner),
            when: settle(settle_retry),
            then: Then::Saved,
        },
        Case {
            name: "a_holder_whose_lease_was_taken_over_cannot_settle",
            given: Some(|c| held(c, OTHER_OWNER, now() + Duration::seconds(LEASE_SECONDS))),
            when: settle(settle_delivered),
            then: Then::Stale,
        },
        Case {
            name: "a_holder_whose_lease_was_released_cannot_settle",
            given: Some(retrying),
            when: settle(settle_delivered),
            then: Then::Stale,
        },
        Case {
            name: "the_lease_holder_behind_another_writer_is_stale",
            given: Some(claimed_by_owner),
            when: raced(settle(settle_delivered)),
            then: Then::Stale,
        },
    ];
    for (name, status) in [
        (
            "a_delivered_callback_is_not_claimed",
            CallbackStatus::Delivered,
        ),
        ("a_failed_callback_is_not_claimed", CallbackStatus::Failed),
        (
            "a_callback_awaiting_shipment_is_not_claimed",
            CallbackStatus::AwaitingShipment,
        ),
        (
            "a_callback_not_required_is_not_claimed",
            CallbackStatus::NotRequired,
        ),
    ] {
        cases.push(Case {
            name,
            given: Some(settled(status)),
            when: claim(1),
            then: Then::Refused(NotClaimable::Settled(status)),
        });
    }
    cases
}

/// The protocol state a case compares: what the claim's condition and the
/// settle's guard read, and the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub status: CallbackStatus,
    pub generation: u64,
    pub message_id: Option<String>,
    pub posts: u32,
    pub lease: Option<Lease>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub version: u64,
    pub attempt_count: u32,
    pub ledger: Vec<Attempt>,
}

impl Protocol {
    #[must_use]
    pub fn of(record: &OrderRecord) -> Self {
        let callback = &record.callback;
        Self {
            status: callback.status,
            generation: callback.generation,
            message_id: callback.message_id.clone(),
            posts: callback.posts,
            lease: callback.lease.clone(),
            next_attempt_at: callback.next_attempt_at,
            version: record.version,
            attempt_count: callback.attempt_count,
            ledger: callback.attempts.clone(),
        }
    }
}

/// The stored order `number`, its callback made due then set up by `given`.
fn arranged(number: &OrderNumber, given: fn(&mut Callback)) -> OrderRecord {
    let mut body: serde_json::Value =
        serde_json::from_str(crate::SAMPLE_ORDER).expect("the sample is JSON");
    body["package"]["order_number"] = serde_json::json!(number.as_str());
    let request = shared::intake::parse_order(&serde_json::to_vec(&body).expect("JSON"))
        .expect("the sample parses");
    let mut record = OrderRecord::accept(request.order, Vec::new(), now() - Duration::hours(1));
    record.callback.make_due(now() - Duration::hours(1));
    given(&mut record.callback);
    record
}

async fn stored<S: OrderStore>(
    store: &S,
    number: &OrderNumber,
) -> Result<Option<OrderRecord>, String> {
    match store.get(number, Access::Service).await {
        Ok(Lookup::Found(record)) => Ok(Some(*record)),
        Ok(Lookup::Missing) => Ok(None),
        Ok(other) => Err(format!("read back as {other:?}")),
        Err(err) => Err(format!("read back: {err}")),
    }
}

/// Runs one case on `store` under order number `number`: `Err` says how the
/// store broke the contract.
pub async fn run_case<S: OrderStore>(store: &S, number: &str, case: &Case) -> Result<(), String> {
    let number = OrderNumber::parse(number).map_err(|err| format!("{err:?}"))?;
    let before = match case.given {
        Some(given) => {
            let record = arranged(&number, given);
            match store.insert_new(&record).await {
                Ok(Insert::Inserted) => {}
                other => return Err(format!("arranging: {other:?}")),
            }
            Some(
                stored(store, &number)
                    .await?
                    .ok_or("arranged, then missing")?,
            )
        }
        None => None,
    };
    match case.when {
        When::Claim {
            generation,
            message,
        } => claim_case(store, &number, before, generation, message, &case.then).await,
        When::Save {
            lease_owner,
            raced,
            change,
        } => {
            let before = before.ok_or("a save needs a stored order")?;
            save_case(store, before, lease_owner, raced, change, &case.then).await
        }
    }
}

async fn claim_case<S: OrderStore>(
    store: &S,
    number: &OrderNumber,
    before: Option<OrderRecord>,
    generation: u64,
    message: &str,
    then: &Then,
) -> Result<(), String> {
    let claim = Claim {
        generation,
        message_id: message.into(),
        owner: OWNER.into(),
        now: now(),
        lease: Duration::seconds(LEASE_SECONDS),
        max_posts: MAX_POSTS,
    };
    let outcome = store
        .claim(number, &claim)
        .await
        .map_err(|err| format!("claim: {err}"))?;
    let after = stored(store, number).await?;
    match (then, outcome, before) {
        (Then::NoOrder, None, None) => match after {
            None => Ok(()),
            Some(_) => Err("the claim created an order".into()),
        },
        (Then::Claimed { posts }, Some(ClaimOutcome::Claimed(returned)), Some(before)) => {
            let after = after.ok_or("claimed, then missing")?;
            let mut expected = Protocol::of(&before);
            expected.lease = Some(Lease {
                owner: OWNER.into(),
                until: now() + Duration::seconds(LEASE_SECONDS),
            });
            expected.message_id = Some(MESSAGE.into());
            expected.posts = *posts;
            expected.version += 1;
            same("stored", &expected, &Protocol::of(&after))?;
            same("returned", &expected, &Protocol::of(&returned))
        }
        (Then::ClaimedAgain, Some(ClaimOutcome::Claimed(returned)), Some(before)) => {
            let after = after.ok_or("claimed, then missing")?;
            same("stored", &Protocol::of(&before), &Protocol::of(&after))?;
            same("returned", &Protocol::of(&before), &Protocol::of(&returned))
        }
        (Then::Refused(reason), Some(ClaimOutcome::Refused(why, returned)), Some(before)) => {
            if why != *reason {
                return Err(format!("refused as {why:?}, not {reason:?}"));
            }
            let after = after.ok_or("refused, then missing")?;
            same("stored", &Protocol::of(&before), &Protocol::of(&after))?;
            same("returned", &Protocol::of(&before), &Protocol::of(&returned))
        }
        (then, outcome, _) => Err(format!(
            "expected {then:?}, got {:?}",
            outcome.map(|o| match o {
                ClaimOutcome::Claimed(_) => "claimed".to_owned(),
                ClaimOutcome::Refused(why, _) => format!("refused: {why:?}"),
            })
        )),
    }
}

async fn save_case<S: OrderStore>(
    store: &S,
    before: OrderRecord,
    lease_owner: Option<&str>,
    raced: bool,
    change: fn(&mut Callback),
    then: &Then,
) -> Result<(), String> {
    let number = before.order.order_number.clone();
    let mut record = before.clone();
    let mut before = before;
    if raced {
        // Another writer (a warehouse event, say) saves first.
        let mut other = before.clone();
        match store.save(&mut other, Guard::Version).await {
            Ok(Save::Saved) => before = other,
            other => return Err(format!("the other writer's save: {other:?}")),
        }
    }
    change(&mut record.callback);
    let guard = lease_owner.map_or(Guard::Version, Guard::Lease);
    let saved = store
        .save(&mut record, guard)
        .await
        .map_err(|err| format!("save: {err}"))?;
    let after = stored(store, &number).await?.ok_or("saved, then missing")?;
    let after = Protocol::of(&after);
    match (then, saved) {
        (Then::Saved, Save::Saved) => {
            let mut expected = Protocol::of(&record);
            expected.version = before.version + 1;
            same("stored", &expected, &after)
        }
        (Then::Stale, Save::Stale) => {
            let mut expected = Protocol::of(&before);
            // A refused save may leave its try's line (DynamoDB writes the
            // line first: the try was made); it never counts it.
            expected.ledger = after.ledger.clone();
            same("stored", &expected, &after)
        }
        (then, saved) => Err(format!("expected {then:?}, got {saved:?}")),
    }
}

fn same(what: &str, expected: &Protocol, actual: &Protocol) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{what} state differs:\n expected {expected:?}\n actual   {actual:?}"
        ))
    }
}

/// Runs every case on `store` (order numbers `{prefix}-{n}`) and fails
/// naming each case the store broke.
pub async fn assert_contract<S: OrderStore>(store: &S, prefix: &str) {
    let mut broken = Vec::new();
    for (index, case) in cases().iter().enumerate() {
        if let Err(why) = run_case(store, &format!("{prefix}-{index}"), case).await {
            broken.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {} store contract cases broken:\n{}",
        broken.len(),
        cases().len(),
        broken.join("\n")
    );
}
