//! The first step: may this delivery post now? The fleet-wide circuit
//! breaker ([`crate::callback::breaker`]) answers post, probe or hold; the
//! dispatcher's own 429 throttle ([`crate::callback::throttle`]) may hold it
//! too. What is let through carries a `PostPermit`: the place among the
//! posts in flight (given back when dropped) and, for a probe, the probe
//! slot, given back with the post's outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::callback::breaker::{BreakerPolicy, BreakerState, Gate, PostOutcome, Transition};
use crate::callback::breaker_window::{FailureWindow, Tally};
use crate::callback::throttle::Throttle;
use crate::error::StoreError;
use crate::ports::{BreakerStore, Clock};

/// What the breaker lets a delivery do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Post.
    Post,
    /// Post as one of the probes of a breaker that was open.
    Probe,
    /// Hold the message this long (before its claim: its schedule is untouched).
    Hold(Duration),
}

/// Why a delivery is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// The breaker is open, or just closed and ramping up.
    Breaker(Duration),
    /// After a 429: this many posts at once, and they are all out.
    Throttled(u32),
}

/// A boxed future: the store is kept behind `dyn`, so a dispatcher's type
/// does not name its breaker's.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`BreakerStore`] as a trait object.
trait AnyBreakerStore: Send + Sync {
    fn load(&self) -> BoxFuture<'_, Result<BreakerState, StoreError>>;
    fn save<'a>(&'a self, state: &'a BreakerState) -> BoxFuture<'a, Result<bool, StoreError>>;
}

impl<B: BreakerStore> AnyBreakerStore for B {
    fn load(&self) -> BoxFuture<'_, Result<BreakerState, StoreError>> {
        Box::pin(BreakerStore::load(self))
    }

    fn save<'a>(&'a self, state: &'a BreakerState) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(BreakerStore::save(self, state))
    }
}

/// The circuit breaker as one dispatcher uses it.
pub(super) struct Breaker {
    store: Arc<dyn AnyBreakerStore>,
    policy: BreakerPolicy,
    /// This dispatcher's posts lately (what opens the breaker).
    seen: Mutex<FailureWindow>,
    /// Its posts at once, fewer after a 429.
    throttle: Mutex<Throttle>,
    /// Told of every change (metrics).
    on_transition: fn(Transition),
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Breaker {
    pub(super) fn new(
        store: impl BreakerStore + 'static,
        policy: BreakerPolicy,
        on_transition: fn(Transition),
    ) -> Self {
        Self {
            store: Arc::new(store),
            policy,
            seen: Mutex::new(FailureWindow::default()),
            throttle: Mutex::new(Throttle::default()),
            on_transition,
        }
    }

    /// The breaker's gate for `owner`; a probe's slot is claimed here. A
    /// breaker that cannot be read lets the post through (it only protects;
    /// the claim still decides).
    pub(super) async fn admission(&self, owner: &str, clock: &impl Clock) -> Admission {
        for _ in 0..3 {
            let now = clock.now();
            let mut state = match self.store.load().await {
                Ok(state) => state,
                Err(err) => {
                    tracing::warn!(error = %err, "circuit breaker unreadable; posting");
                    return Admission::Post;
                }
            };
            match state.gate(owner, now, &self.policy) {
                Gate::Pass => return Admission::Post,
                Gate::Hold(hold) => return Admission::Hold(hold.max(Duration::from_secs(1))),
                Gate::Probe => {
                    state.claim_probe(owner, now, &self.policy);
                    match self.store.save(&state).await {
                        Ok(true) => {
                            tracing::info!(
                                breaker = "probing",
                                "the partner was down; this delivery probes it"
                            );
                            return Admission::Probe;
                        }
                        Ok(false) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "circuit breaker unwritable; holding");
                            return Admission::Hold(Duration::from_secs(5));
                        }
                    }
                }
            }
        }
        Admission::Hold(Duration::from_secs(1))
    }

    /// The permit for what `admission` allows, or why the delivery is held.
    /// After a 429 fewer posts go at once; a probe is never held back.
    pub(super) fn permit(&self, admission: Admission, owner: &str) -> Result<PostPermit<'_>, Held> {
        let probing = match admission {
            Admission::Hold(hold) => return Err(Held::Breaker(hold)),
            Admission::Probe => true,
            Admission::Post => false,
        };
        let slot = if probing {
            None
        } else {
            let Ok(mut throttle) = self.throttle.lock() else {
                return Ok(PostPermit::new(Some(self), owner, false, None));
            };
            if !throttle.try_start() {
                return Err(Held::Throttled(throttle.limit().unwrap_or_default()));
            }
            Some(Slot(&self.throttle))
        };
        Ok(PostPermit::new(Some(self), owner, probing, slot))
    }

    /// Records a post's outcome in this dispatcher's window and throttle
    /// and, when that changes the breaker, on the breaker (a version-checked
    /// write, redone on a fresh read; none for most posts).
    async fn record_outcome(&self, outcome: PostOutcome, owner: &str, clock: &impl Clock) {
        let seen = {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            seen.record(
                clock.now(),
                outcome == PostOutcome::Down,
                self.policy.window,
            );
            seen.clone()
        };
        if let Ok(mut throttle) = self.throttle.lock() {
            throttle.observe(outcome, clock.now());
        }
        for _ in 0..5 {
            let now = clock.now();
            let mut state = match self.store.load().await {
                Ok(state) => state,
                Err(err) => {
                    tracing::warn!(error = %err, "circuit breaker unreadable; outcome not recorded");
                    return;
                }
            };
            if !state.changes_with(outcome, owner, &seen, now, &self.policy) {
                return;
            }
            let transition = state.record(outcome, owner, &seen, now, &self.policy);
            match self.store.save(&state).await {
                Ok(true) => {
                    if let Some(transition) = transition {
                        self.announce(transition, seen.tally(now, self.policy.window, None));
                    }
                    return;
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "circuit breaker unwritable; outcome not recorded");
                    return;
                }
            }
        }
    }

    /// A change this dispatcher wrote: logged, told to the metrics hook; an
    /// opening starts this dispatcher's window afresh.
    fn announce(&self, transition: Transition, seen: Tally) {
        log_transition(transition, seen);
        (self.on_transition)(transition);
        if let (Transition::Opened(_), Ok(mut window)) = (transition, self.seen.lock()) {
            window.clear();
        }
    }

    /// The probe found nothing to post: let another delivery probe now.
    async fn release_probe(&self, owner: &str) {
        if let Ok(mut state) = self.store.load().await
            && state.release_probe(owner)
        {
            let _saved = self.store.save(&state).await;
        }
    }
}

/// A delivery's leave to post: its place among the posts in flight, held
/// until the delivery is done and given back when dropped, and, for a
/// probe, its probe slot, given back by [`PostPermit::finish`] or
/// [`PostPermit::release`] (a probe that ends otherwise, on a store error,
/// leaves its slot to its lease: giving it back needs a write, and a drop
/// cannot wait for one).
#[derive(Debug)]
pub(super) struct PostPermit<'a> {
    breaker: Option<&'a Breaker>,
    owner: String,
    probing: bool,
    _slot: Option<Slot<'a>>,
}

impl<'a> PostPermit<'a> {
    fn new(
        breaker: Option<&'a Breaker>,
        owner: &str,
        probing: bool,
        slot: Option<Slot<'a>>,
    ) -> Self {
        Self {
            breaker,
            owner: owner.to_owned(),
            probing,
            _slot: slot,
        }
    }

    /// The permit of a dispatcher without a breaker (and its throttle).
    pub(super) fn unguarded(owner: &str) -> Self {
        Self::new(None, owner, false, None)
    }

    /// The post ended: tells the breaker what it learnt of the partner
    /// (`None`: nothing, no post was made). `true` when a probe failed: the
    /// post is the breaker's, not the callback's.
    pub(super) async fn finish(&self, outcome: Option<PostOutcome>, clock: &impl Clock) -> bool {
        let Some(breaker) = self.breaker else {
            return false;
        };
        if let Some(outcome) = outcome {
            breaker.record_outcome(outcome, &self.owner, clock).await;
        }
        // A probe that learnt nothing of the partner (no token, no post)
        // gives its slot back at once rather than after its lease.
        if self.probing && outcome.is_none() {
            breaker.release_probe(&self.owner).await;
        }
        self.probing && outcome == Some(PostOutcome::Down)
    }

    /// Nothing is posted (the claim was refused): a probe's slot goes back.
    pub(super) async fn release(&self) {
        if let Some(breaker) = self.breaker.filter(|_| self.probing) {
            breaker.release_probe(&self.owner).await;
        }
    }
}

/// A post in flight, counted by the throttle until dropped.
#[derive(Debug)]
struct Slot<'a>(&'a Mutex<Throttle>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut throttle) = self.0.lock() {
            throttle.finish();
        }
    }
}

/// `seen`: this dispatcher's window when it opened the breaker.
fn log_transition(transition: Transition, seen: Tally) {
    match transition {
        Transition::Opened(cool_down) => tracing::error!(
            breaker = "open",
            posts = seen.posts,
            failures = seen.failures,
            cool_down_s = cool_down.as_secs(),
            "the partner is down: circuit breaker opened; deliveries are held"
        ),
        Transition::Reopened(cool_down) => tracing::warn!(
            breaker = "open",
            cool_down_s = cool_down.as_secs(),
            "every probe failed: circuit breaker open again, for longer"
        ),
        Transition::Closed => tracing::info!(
            breaker = "closed",
            "the partner answered: circuit breaker closed; traffic comes back over the ramp"
        ),
    }
}
