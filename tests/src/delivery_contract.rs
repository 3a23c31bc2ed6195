//! The webhook delivery store's contract: one table of cases (a stored
//! delivery, then a claim, a settle or a replay's re-opening, and what must
//! come of it), run on the in-memory store and on the DynamoDB adapter. The
//! claim's and the re-opening's rules live twice, in `Delivery::check_claim`
//! / `check_reopen` and in the adapter's condition expressions; these cases
//! pin both, clause by clause, at their boundaries.

use chrono::{DateTime, Duration, Utc};
use shared::ports::{DeliveryClaim, DeliveryStore, Reopen, Save};
use shared::webhook::{
    Delivery, DeliveryStatus, DeliveryTicket, EventType, Lease, NotClaimed, NotReopened,
    POST_TIMEOUT, schedule,
};

const OWNER: &str = "m-1#1";
const OTHER: &str = "m-2#1";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .expect("a time")
        .with_timezone(&Utc)
}

fn pending() -> Delivery {
    Delivery {
        event_id: "evt_contract".into(),
        kind: EventType::OrderShipped,
        order_number: "contract-1".into(),
        sequence: 3,
        body: r#"{"type":"order.shipped"}"#.into(),
        status: DeliveryStatus::Pending,
        posts: 0,
        next_attempt_at: None,
        lease: None,
        last_attempt: None,
    }
}

fn leased_by(owner: &str, until: DateTime<Utc>) -> Delivery {
    Delivery {
        lease: Some(Lease {
            owner: owner.into(),
            until,
        }),
        posts: 1,
        ..pending()
    }
}

fn settled(status: DeliveryStatus) -> Delivery {
    Delivery {
        status,
        posts: 1,
        ..pending()
    }
}

/// What a claim at [`now`] must answer.
enum Claimed {
    Yes,
    /// Claimed as it stands: nothing written, no post counted again.
    Again,
    Refused(NotClaimed),
}

struct ClaimCase {
    name: &'static str,
    stored: Delivery,
    expect: Claimed,
}

fn claim_cases() -> Vec<ClaimCase> {
    let later = now() + Duration::seconds(30);
    vec![
        ClaimCase {
            name: "a_pending_delivery_is_claimed",
            stored: pending(),
            expect: Claimed::Yes,
        },
        ClaimCase {
            name: "a_live_lease_keeps_another_holder_out",
            stored: leased_by(OTHER, later),
            expect: Claimed::Refused(NotClaimed::Leased(later)),
        },
        ClaimCase {
            // The SDK's retry of a claim that applied, its answer lost.
            name: "the_holder_retrying_its_applied_claim_holds_it_without_a_second_post",
            stored: leased_by(
                OWNER,
                now() + Duration::from_std(schedule(POST_TIMEOUT).lease).expect("a lease"),
            ),
            expect: Claimed::Again,
        },
        ClaimCase {
            name: "a_lease_that_ends_at_the_claim_has_ended",
            stored: leased_by(OTHER, now()),
            expect: Claimed::Yes,
        },
        ClaimCase {
            name: "no_claim_before_the_next_attempt",
            stored: Delivery {
                next_attempt_at: Some(later),
                posts: 1,
                ..pending()
            },
            expect: Claimed::Refused(NotClaimed::NotYet(later)),
        },
        ClaimCase {
            name: "a_next_attempt_at_the_claim_is_due",
            stored: Delivery {
                next_attempt_at: Some(now()),
                posts: 1,
                ..pending()
            },
            expect: Claimed::Yes,
        },
        ClaimCase {
            name: "a_delivered_delivery_is_never_claimed_again",
            stored: settled(DeliveryStatus::Delivered),
            expect: Claimed::Refused(NotClaimed::Settled(DeliveryStatus::Delivered)),
        },
        ClaimCase {
            name: "a_failed_delivery_is_not_claimed",
            stored: settled(DeliveryStatus::Failed),
            expect: Claimed::Refused(NotClaimed::Settled(DeliveryStatus::Failed)),
        },
    ]
}

/// What a re-opening at [`now`] must answer.
enum Reopened {
    Yes,
    Refused(NotReopened),
}

struct ReopenCase {
    name: &'static str,
    stored: Delivery,
    expect: Reopened,
}

fn reopen_cases() -> Vec<ReopenCase> {
    let later = now() + Duration::seconds(30);
    let failed_and = |lease_until: DateTime<Utc>| Delivery {
        status: DeliveryStatus::Failed,
        next_attempt_at: Some(later),
        ..leased_by(OTHER, lease_until)
    };
    vec![
        ReopenCase {
            name: "a_failed_delivery_reopens_with_a_fresh_schedule",
            stored: Delivery {
                posts: 9,
                ..settled(DeliveryStatus::Failed)
            },
            expect: Reopened::Yes,
        },
        ReopenCase {
            name: "a_delivered_delivery_never_reopens",
            stored: settled(DeliveryStatus::Delivered),
            expect: Reopened::Refused(NotReopened::NotFailed(DeliveryStatus::Delivered)),
        },
        ReopenCase {
            name: "a_pending_delivery_is_not_reopened",
            stored: pending(),
            expect: Reopened::Refused(NotReopened::NotFailed(DeliveryStatus::Pending)),
        },
        ReopenCase {
            name: "a_failed_delivery_under_a_live_lease_is_not_reopened",
            stored: failed_and(later),
            expect: Reopened::Refused(NotReopened::Leased(later)),
        },
        ReopenCase {
            name: "a_failed_delivery_whose_lease_ends_at_the_replay_reopens",
            stored: failed_and(now()),
            expect: Reopened::Yes,
        },
    ]
}

fn ticket(prefix: &str, case: &str) -> DeliveryTicket {
    DeliveryTicket {
        client_code: "20".into(),
        endpoint_id: "ep_00000000000000000002".into(),
        entry: format!("{prefix}#{case}"),
        event_type: EventType::OrderShipped.as_str().into(),
    }
}

/// `delivery` stored as case `case`'s; its ticket.
async fn added<S: DeliveryStore>(
    store: &S,
    prefix: &str,
    case: &str,
    delivery: &Delivery,
) -> Result<DeliveryTicket, String> {
    let ticket = ticket(prefix, case);
    store
        .add(&ticket, delivery)
        .await
        .map_err(|err| err.to_string())?;
    Ok(ticket)
}

/// A pending delivery stored as case `case`'s and claimed by `OWNER`; its
/// ticket, and the delivery as claimed.
async fn claimed<S: DeliveryStore>(
    store: &S,
    prefix: &str,
    case: &str,
) -> Result<(DeliveryTicket, Delivery), String> {
    let ticket = added(store, prefix, case, &pending()).await?;
    match store
        .claim(&ticket, OWNER, now(), &schedule(POST_TIMEOUT))
        .await
        .map_err(|err| err.to_string())?
    {
        Some(DeliveryClaim::Claimed(delivery)) => Ok((ticket, delivery)),
        other => Err(format!("not claimed: {other:?}")),
    }
}

/// Runs every case on `store`; panics listing each broken one.
pub async fn assert_contract<S: DeliveryStore>(store: &S, prefix: &str) {
    let mut broken = Vec::new();
    for case in claim_cases() {
        if let Err(why) = check_claim(store, prefix, &case).await {
            broken.push(format!("{}: {why}", case.name));
        }
    }
    for case in reopen_cases() {
        if let Err(why) = check_reopen(store, prefix, &case).await {
            broken.push(format!("{}: {why}", case.name));
        }
    }
    if let Err(why) = check_settle(store, prefix).await {
        broken.push(format!("settle: {why}"));
    }
    if let Err(why) = check_settle_sent_again(store, prefix).await {
        broken.push(format!("settle sent again: {why}"));
    }
    if let Err(why) = check_release(store, prefix).await {
        broken.push(format!("release: {why}"));
    }
    if let Err(why) = check_add_and_missing(store, prefix).await {
        broken.push(format!("add: {why}"));
    }
    assert!(
        broken.is_empty(),
        "broken cases:\n  {}",
        broken.join("\n  ")
    );
}

async fn check_claim<S: DeliveryStore>(
    store: &S,
    prefix: &str,
    case: &ClaimCase,
) -> Result<(), String> {
    let ticket = added(store, prefix, case.name, &case.stored).await?;
    let policy = schedule(POST_TIMEOUT);
    let answer = store
        .claim(&ticket, OWNER, now(), &policy)
        .await
        .map_err(|err| err.to_string())?;
    match (&case.expect, answer) {
        (Claimed::Yes, Some(DeliveryClaim::Claimed(delivery))) => {
            let lease = delivery.lease.ok_or("claimed without a lease")?;
            let expected_until =
                now() + Duration::from_std(policy.lease).map_err(|e| e.to_string())?;
            if lease.owner != OWNER || lease.until != expected_until {
                return Err(format!("lease {lease:?}"));
            }
            if delivery.posts != case.stored.posts + 1 {
                return Err(format!(
                    "posts {} after {}",
                    delivery.posts, case.stored.posts
                ));
            }
            Ok(())
        }
        (Claimed::Again, Some(DeliveryClaim::Claimed(delivery))) => {
            if delivery != case.stored {
                return Err(format!("claimed as {delivery:?}"));
            }
            let stored = store
                .claim(&ticket, OTHER, now(), &policy)
                .await
                .map_err(|err| err.to_string())?;
            match stored {
                Some(DeliveryClaim::Refused(NotClaimed::Leased(until)))
                    if case.stored.lease.as_ref().is_some_and(|l| l.until == until) =>
                {
                    Ok(())
                }
                other => Err(format!("then another holder's claim answered {other:?}")),
            }
        }
        (Claimed::Refused(expected), Some(DeliveryClaim::Refused(refused)))
            if *expected == refused =>
        {
            Ok(())
        }
        (_, other) => Err(format!("answered {other:?}")),
    }
}

async fn check_reopen<S: DeliveryStore>(
    store: &S,
    prefix: &str,
    case: &ReopenCase,
) -> Result<(), String> {
    let ticket = added(store, prefix, case.name, &case.stored).await?;
    let policy = schedule(POST_TIMEOUT);
    let answer = store
        .reopen(&ticket, now())
        .await
        .map_err(|err| err.to_string())?;
    match (&case.expect, answer) {
        (Reopened::Yes, Some(Reopen::Reopened(delivery))) => {
            let fresh = (delivery.status, delivery.posts, delivery.next_attempt_at);
            if fresh != (DeliveryStatus::Pending, 0, None) || delivery.lease.is_some() {
                return Err(format!("reopened as {delivery:?}"));
            }
            // The fresh schedule is claimable at once, by anyone.
            match store
                .claim(&ticket, OWNER, now(), &policy)
                .await
                .map_err(|err| err.to_string())?
            {
                Some(DeliveryClaim::Claimed(claimed)) if claimed.posts == 1 => Ok(()),
                other => Err(format!("after reopening a claim answered {other:?}")),
            }
        }
        (Reopened::Refused(expected), Some(Reopen::Refused(refused))) if *expected == refused => {
            // Refused means unchanged: a delivered one stays delivered.
            let again = store
                .reopen(&ticket, now())
                .await
                .map_err(|err| err.to_string())?;
            match again {
                Some(Reopen::Refused(second)) if second == refused => Ok(()),
                other => Err(format!("a refused reopening changed it: {other:?}")),
            }
        }
        (_, other) => Err(format!("answered {other:?}")),
    }
}

async fn check_settle<S: DeliveryStore>(store: &S, prefix: &str) -> Result<(), String> {
    let (ticket, mut delivery) = claimed(store, prefix, "settle").await?;
    let policy = schedule(POST_TIMEOUT);
    delivery.status = DeliveryStatus::Delivered;
    if store
        .settle(&ticket, OTHER, &delivery)
        .await
        .map_err(|e| e.to_string())?
        != Save::Stale
    {
        return Err("a holder without the lease settled it".into());
    }
    if store
        .settle(&ticket, OWNER, &delivery)
        .await
        .map_err(|e| e.to_string())?
        != Save::Saved
    {
        return Err("the lease holder could not settle it".into());
    }
    let again = store
        .claim(&ticket, OTHER, now() + Duration::hours(1), &policy)
        .await
        .map_err(|e| e.to_string())?;
    match again {
        Some(DeliveryClaim::Refused(NotClaimed::Settled(DeliveryStatus::Delivered))) => Ok(()),
        other => Err(format!("after the settle a claim answered {other:?}")),
    }
}

/// The SDK sends a settle again when its answer was lost after the store
/// did it: the retry meets the first try's write (the lease gone) and is
/// saved, not stale; the deliverer deletes the queue message of a stale
/// settle, and a failed delivery was then never tried again. Another
/// holder's settle stays stale.
async fn check_settle_sent_again<S: DeliveryStore>(store: &S, prefix: &str) -> Result<(), String> {
    let (ticket, mut delivery) = claimed(store, prefix, "settle-again").await?;
    delivery.lease = None;
    delivery.next_attempt_at = Some(now() + Duration::seconds(5));
    for (try_, owner) in [("first", OWNER), ("retried", OWNER)] {
        if store
            .settle(&ticket, owner, &delivery)
            .await
            .map_err(|e| e.to_string())?
            != Save::Saved
        {
            return Err(format!(
                "the {try_} settle of the lease holder was not saved"
            ));
        }
    }
    let mut theirs = delivery.clone();
    theirs.status = DeliveryStatus::Delivered;
    match store.settle(&ticket, OTHER, &theirs).await {
        Ok(Save::Stale) => Ok(()),
        other => Err(format!("another holder's settle answered {other:?}")),
    }
}

/// A claim given back unposted (`Delivery::release`, saved as a settle):
/// the next holder claims it at once, its count as if the first had not.
async fn check_release<S: DeliveryStore>(store: &S, prefix: &str) -> Result<(), String> {
    let (ticket, mut delivery) = claimed(store, prefix, "release").await?;
    let policy = schedule(POST_TIMEOUT);
    delivery.release(OWNER).map_err(|err| err.to_string())?;
    if store
        .settle(&ticket, OWNER, &delivery)
        .await
        .map_err(|e| e.to_string())?
        != Save::Saved
    {
        return Err("the lease holder could not give it back".into());
    }
    match store
        .claim(&ticket, OTHER, now(), &policy)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(DeliveryClaim::Claimed(claimed)) if claimed.posts == 1 => Ok(()),
        other => Err(format!("after the release a claim answered {other:?}")),
    }
}

async fn check_add_and_missing<S: DeliveryStore>(store: &S, prefix: &str) -> Result<(), String> {
    let added = ticket(prefix, "add");
    if !store
        .add(&added, &pending())
        .await
        .map_err(|e| e.to_string())?
    {
        return Err("the first add was refused".into());
    }
    if store
        .add(&added, &settled(DeliveryStatus::Delivered))
        .await
        .map_err(|e| e.to_string())?
    {
        return Err("a second add overwrote the delivery".into());
    }
    let missing = ticket(prefix, "never-added");
    if let Some(other) = store
        .reopen(&missing, now())
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!("a missing delivery was reopened: {other:?}"));
    }
    match store
        .claim(&missing, OWNER, now(), &schedule(POST_TIMEOUT))
        .await
        .map_err(|e| e.to_string())?
    {
        None => Ok(()),
        other => Err(format!("a missing delivery was claimed: {other:?}")),
    }
}
