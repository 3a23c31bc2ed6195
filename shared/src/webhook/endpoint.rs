//! A subscribed endpoint: whose it is, where and what it receives, the
//! secrets that sign for it, and its health, which decides whether a
//! delivery may post now, waits, or finds the endpoint disabled.

use chrono::{DateTime, Duration, Utc};

use super::{EndpointChange, EndpointUrl, EventType, EventTypes, NewEndpoint, WebhookSecret};

/// Most endpoints one client may register.
pub const MAX_ENDPOINTS: usize = 10;
/// How long the secret before a rotation keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// An endpoint whose deliveries have failed this long, with no success
/// between, is disabled.
pub const FAILING_LIMIT: Duration = Duration::hours(24);
/// The first wait after a failure; each further failure of a post admitted
/// after the current block was set doubles it, up to [`MAX_BACKOFF`]. While
/// it lasts no delivery to the endpoint posts, so a hanging endpoint costs
/// one timeout per step, not one per event; the posts already in flight
/// when a block is set fail in the same outage and do not double it again.
pub const FIRST_BACKOFF: Duration = Duration::seconds(5);
pub const MAX_BACKOFF: Duration = Duration::minutes(10);
/// An endpoint that accepted a post within [`ANSWERING_LATELY`] is blocked
/// only at this many failures in a row: a flaky ERP (a few per cent of
/// posts failing between successes) is not a down one, and blocking it at
/// each failure held every delivery behind a block and a probe. Five in a
/// row at 5 % independent failures: about 3 in 10⁷ posts; an ERP that goes
/// down fails the posts in flight together, five within one timeout.
pub const FAILURES_TO_BLOCK: u32 = 5;
/// See [`FAILURES_TO_BLOCK`]; one that has not (new, or down for a while,
/// or hanging) is blocked at its first failure.
pub const ANSWERING_LATELY: Duration = Duration::minutes(1);
/// A success on a healthy endpoint is written at most this often (well
/// within [`ANSWERING_LATELY`], which reads it).
pub const SUCCESS_NOTED_FOR: Duration = Duration::seconds(10);
/// While one delivery probes the endpoint after a block, the others look
/// again this often: a probe answered at once lets them follow within it,
/// and a hanging one costs each a few cheap looks, not a post.
pub const PROBE_RECHECK: Duration = Duration::seconds(1);

/// An endpoint's identifier: `ep_` and 20 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(String);

impl EndpointId {
    /// A new random id.
    pub fn generate() -> Result<Self, crate::random::RandomnessError> {
        let mut bytes = [0_u8; 10];
        crate::random::fill(&mut bytes)?;
        Ok(Self(format!("ep_{}", crate::hex::encode(&bytes))))
    }

    /// An id as a URL or the store gives it back; `None` when it cannot be one.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("ep_")?;
        (hex.len() == 20 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How deliveries to an endpoint have been going.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// The first failure since the last success.
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// No delivery posts before this.
    pub blocked_until: Option<DateTime<Utc>>,
    /// When the current block was set: its step is `blocked_until -
    /// blocked_at`, and a failure of a post admitted before it does not
    /// escalate it.
    pub blocked_at: Option<DateTime<Utc>>,
    /// Once a block is over, the one delivery that tries the endpoint holds
    /// this until its post is answered or times out; the others wait for its
    /// answer instead of all posting at once into an endpoint that may still
    /// be down (each such post would spend a try of its own schedule).
    pub probe_until: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// What a delivery to the endpoint may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Post,
    /// The endpoint's block is over and nobody is trying it: this delivery
    /// may, once it holds the probe ([`Endpoint::take_probe`]).
    Probe,
    /// Wait until then: the endpoint is backing off, or another delivery is
    /// probing it.
    Hold(DateTime<Utc>),
    /// The endpoint is disabled (or no longer wants this type): drop it.
    Skip,
}

/// How an attempt ended, as far as the endpoint's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx.
    Accepted,
    /// A 410: the receiver says this endpoint is gone for good.
    Gone,
    /// Anything else: another status, a timeout, no connection.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub client_code: String,
    pub url: EndpointUrl,
    pub event_types: EventTypes,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the service disabled it (its owner's `enabled: false` gives none).
    pub disabled_reason: Option<String>,
    pub secret: WebhookSecret,
    /// The secret before the last rotation, and until when it still signs.
    pub previous_secret: Option<(WebhookSecret, DateTime<Utc>)>,
    pub health: Health,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version: 1 when created, +1 on every change.
    pub version: u64,
}

impl Endpoint {
    #[must_use]
    pub fn create(
        id: EndpointId,
        client_code: &str,
        new: NewEndpoint,
        secret: WebhookSecret,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            client_code: client_code.to_owned(),
            url: new.url,
            event_types: new.event_types,
            description: new.description,
            enabled: true,
            disabled_reason: None,
            secret,
            previous_secret: None,
            health: Health::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Applies its owner's change. Enabling an endpoint starts its health
    /// afresh: the owner says it works again.
    pub fn change(&mut self, change: EndpointChange, now: DateTime<Utc>) {
        if let Some(url) = change.url {
            self.url = url;
        }
        if let Some(event_types) = change.event_types {
            self.event_types = event_types;
        }
        if let Some(description) = change.description {
            self.description = Some(description);
        }
        if let Some(enabled) = change.enabled {
            if enabled && !self.enabled {
                self.health = Health::default();
            }
            self.enabled = enabled;
            self.disabled_reason = None;
        }
        self.touch(now);
    }

    /// Starts signing with `new`; the current secret signs beside it for
    /// [`ROTATION_OVERLAP`].
    pub fn rotate(&mut self, new: WebhookSecret, now: DateTime<Utc>) {
        let old = std::mem::replace(&mut self.secret, new);
        self.previous_secret = Some((old, now + ROTATION_OVERLAP));
        self.touch(now);
    }

    /// The secrets that sign a delivery made at `now`, the current one first.
    #[must_use]
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<WebhookSecret> {
        let mut secrets = vec![self.secret.clone()];
        if let Some((previous, until)) = &self.previous_secret
            && now < *until
        {
            secrets.push(previous.clone());
        }
        secrets
    }

    /// Whether an event of `kind` goes to this endpoint at all.
    #[must_use]
    pub fn wants(&self, kind: EventType) -> bool {
        self.enabled && self.event_types.includes(kind)
    }

    /// What a delivery of `kind` may do at `now`.
    #[must_use]
    pub fn admission(&self, kind: EventType, now: DateTime<Utc>) -> Admission {
        match (self.health.blocked_until, self.health.probe_until) {
            _ if !self.wants(kind) => Admission::Skip,
            (Some(until), _) if now < until => Admission::Hold(until),
            (Some(_), Some(probing)) if now < probing => {
                Admission::Hold(probing.min(now + PROBE_RECHECK))
            }
            (Some(_), _) => Admission::Probe,
            (None, _) => Admission::Post,
        }
    }

    /// Holds the probe until `until` (the probing delivery's lease). It
    /// counts as a change: saved under the version read, so that of two
    /// deliveries taking it at once only one succeeds.
    pub fn take_probe(&mut self, until: DateTime<Utc>) {
        self.health.probe_until = Some(until);
        self.version += 1;
    }

    /// Whether recording `answer` at `now` would change nothing worth a
    /// write: a success on a healthy endpoint whose last success is under
    /// [`SUCCESS_NOTED_FOR`] old. Writing every success made the endpoint
    /// item the hottest one, and since a health write bumps the version,
    /// concurrent deliverers' successes collided on it: a soak-check had
    /// thousands of deliveries fail with "the endpoint kept changing".
    #[must_use]
    pub fn notes_already(&self, answer: Answer, now: DateTime<Utc>) -> bool {
        let last_success = self.health.last_success_at;
        answer == Answer::Accepted
            && last_success.is_some_and(|at| now - at < SUCCESS_NOTED_FOR)
            && self.health
                == Health {
                    last_success_at: last_success,
                    ..Health::default()
                }
    }

    /// Records how an attempt admitted to post at `admitted_at` ended at
    /// `now`. A 410, or failures lasting [`FAILING_LIMIT`], disable the
    /// endpoint; `true` when this did. A change like any other: saved
    /// under the version read, so an ERP's change read before it fails and
    /// is applied again on the recorded health rather than erasing it.
    pub fn record(
        &mut self,
        answer: Answer,
        admitted_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        self.version += 1;
        let health = &mut self.health;
        match answer {
            Answer::Accepted => {
                *health = Health {
                    last_success_at: Some(now),
                    ..Health::default()
                };
                false
            }
            Answer::Gone => self.disable("the endpoint answered 410 Gone", now),
            Answer::Failed => {
                let since = *health.failing_since.get_or_insert(now);
                health.consecutive_failures += 1;
                let answering_lately = health
                    .last_success_at
                    .is_some_and(|success| now - success < ANSWERING_LATELY);
                let step = match (health.blocked_at, health.blocked_until) {
                    // Admitted before this block, or the instant it was set
                    // (a probe is admitted a step after it): the same
                    // outage, counted. Taking the instant for a probe's
                    // answer ended the probe in flight, and let a second
                    // one through once the block was over.
                    (Some(set), Some(_)) if admitted_at <= set => None,
                    (Some(set), Some(until)) => Some((until - set) * 2),
                    // Flaky, not down (yet).
                    _ if answering_lately && health.consecutive_failures < FAILURES_TO_BLOCK => {
                        None
                    }
                    _ => Some(FIRST_BACKOFF),
                };
                if let Some(step) = step {
                    health.blocked_at = Some(now);
                    health.blocked_until = Some(now + step.clamp(FIRST_BACKOFF, MAX_BACKOFF));
                    // The probe, if this was it, is answered: the next block
                    // ends with a probe of its own.
                    health.probe_until = None;
                }
                if now - since >= FAILING_LIMIT {
                    let reason = format!(
                        "every delivery failed from {} to {}",
                        crate::record::format_time(since),
                        crate::record::format_time(now)
                    );
                    self.disable(&reason, now)
                } else {
                    false
                }
            }
        }
    }

    fn disable(&mut self, reason: &str, now: DateTime<Utc>) -> bool {
        let was_enabled = self.enabled;
        self.enabled = false;
        self.disabled_reason = Some(reason.to_owned());
        self.touch(now);
        was_enabled
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now.max(self.updated_at);
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::webhook::Reach;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn endpoint() -> Endpoint {
        let new = NewEndpoint {
            url: EndpointUrl::parse("https://erp.example.com/hooks", Reach::Internet).unwrap(),
            event_types: EventTypes::All,
            description: None,
        };
        Endpoint::create(
            EndpointId::generate().unwrap(),
            "20",
            new,
            WebhookSecret::generate().unwrap(),
            at(0),
        )
    }

    #[test]
    fn an_id_reads_back_and_nothing_else_is_one() {
        let id = EndpointId::generate().unwrap();
        assert_eq!(EndpointId::parse(id.as_str()), Some(id));
        for text in [
            "",
            "ep_",
            "ep_xyz",
            "key_0123456789abcdef0123",
            "ep_0123456789abcdef012",
        ] {
            assert_eq!(EndpointId::parse(text), None, "{text}");
        }
    }

    #[test]
    fn after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one() {
        let mut endpoint = endpoint();
        let old = endpoint.secret.clone();
        let new = WebhookSecret::generate().unwrap();
        endpoint.rotate(new.clone(), at(0));
        assert_eq!(endpoint.signing_secrets(at(60)), [new.clone(), old]);
        assert_eq!(endpoint.signing_secrets(at(86_400)), [new]);
    }

    #[test]
    fn failures_back_off_doubling_and_capped_and_a_success_clears_them() {
        let mut endpoint = endpoint();
        let mut waits = Vec::new();
        let mut now = at(0);
        for _ in 0..10 {
            // Each post admitted once the block before it is over.
            let admitted = endpoint.health.blocked_until.unwrap_or(now);
            now = admitted + Duration::seconds(1);
            endpoint.record(Answer::Failed, admitted, now);
            waits.push((endpoint.health.blocked_until.unwrap() - now).num_seconds());
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(
            endpoint.admission(EventType::OrderShipped, now),
            Admission::Hold(now + MAX_BACKOFF)
        );
        let later = now + MAX_BACKOFF;
        endpoint.record(Answer::Accepted, later, later);
        assert_eq!(
            endpoint.admission(EventType::OrderShipped, later),
            Admission::Post
        );
        assert_eq!(endpoint.health.failing_since, None);
    }

    /// A flaky ERP (a few per cent of posts failing between successes) is
    /// not down: blocking it at each failure held every delivery behind a
    /// 5 s block and a probe, and a 10,000-order soak with 2 % 5xx, 1 %
    /// resets and 1 % late answers delivered 5,776 of 62,047 webhooks in
    /// 40 minutes.
    #[test]
    fn an_erp_failing_now_and_then_between_successes_is_never_blocked() {
        let kind = EventType::OrderShipped;
        let mut endpoint = endpoint();
        for post in 0..1_000 {
            let now = at(0) + Duration::milliseconds(post * 50);
            // Failures in runs of up to four, one post in ten or more.
            let answer = if post % 25 >= 21 || post % 10 == 7 {
                Answer::Failed
            } else {
                Answer::Accepted
            };
            endpoint.record(answer, now, now);
            assert_eq!(
                endpoint.admission(kind, now),
                Admission::Post,
                "post {post}"
            );
        }
    }

    #[test]
    fn an_erp_that_was_answering_is_blocked_at_its_fifth_failure_in_a_row() {
        let kind = EventType::OrderShipped;
        let mut endpoint = endpoint();
        endpoint.record(Answer::Accepted, at(0), at(0));
        for second in 1..FAILURES_TO_BLOCK {
            endpoint.record(Answer::Failed, at(second.into()), at(second.into()));
            assert_eq!(endpoint.admission(kind, at(second.into())), Admission::Post);
        }
        let fifth = at(FAILURES_TO_BLOCK.into());
        endpoint.record(Answer::Failed, fifth, fifth);
        assert_eq!(
            endpoint.admission(kind, fifth),
            Admission::Hold(fifth + FIRST_BACKOFF)
        );
        // An ERP that has not answered well for a while is blocked at once.
        let mut quiet = endpoint_with_success_at(at(0));
        let later = at(0) + ANSWERING_LATELY;
        quiet.record(Answer::Failed, later, later);
        assert_eq!(
            quiet.admission(kind, later),
            Admission::Hold(later + FIRST_BACKOFF)
        );
    }

    #[test]
    fn a_success_on_a_healthy_endpoint_is_noted_once_per_ten_seconds() {
        let mut endpoint = endpoint();
        assert!(
            !endpoint.notes_already(Answer::Accepted, at(0)),
            "never noted"
        );
        endpoint.record(Answer::Accepted, at(0), at(0));
        assert!(endpoint.notes_already(Answer::Accepted, at(9)));
        assert!(
            !endpoint.notes_already(Answer::Accepted, at(10)),
            "noted too long ago"
        );
        assert!(!endpoint.notes_already(Answer::Failed, at(1)));
        endpoint.record(Answer::Failed, at(1), at(1));
        assert!(
            !endpoint.notes_already(Answer::Accepted, at(2)),
            "a success after a failure clears it"
        );
    }

    fn endpoint_with_success_at(time: DateTime<Utc>) -> Endpoint {
        let mut endpoint = endpoint();
        endpoint.record(Answer::Accepted, time, time);
        endpoint
    }

    #[test]
    fn failures_of_posts_in_flight_together_block_once_at_the_first_step() {
        let mut endpoint = endpoint();
        // An ERP down for a moment: 30 posts admitted at 0 fail one after
        // another within the post timeout.
        for millis in 0..30 {
            let failed_at = at(1) + Duration::milliseconds(millis * 100);
            endpoint.record(Answer::Failed, at(0), failed_at);
        }
        assert_eq!(endpoint.health.consecutive_failures, 30);
        assert_eq!(
            endpoint.health.blocked_until,
            Some(at(1) + FIRST_BACKOFF),
            "the block stays at its first step, set by the first failure"
        );
        // A post admitted after that block was set fails: the next step.
        endpoint.record(Answer::Failed, at(6), at(7));
        assert_eq!(
            endpoint.health.blocked_until,
            Some(at(7) + FIRST_BACKOFF * 2)
        );
    }

    #[test]
    fn a_post_admitted_the_instant_the_block_was_set_fails_without_ending_the_probe() {
        let kind = EventType::OrderShipped;
        let mut endpoint = endpoint();
        // Two posts admitted at 0; the first fails at once and sets the block.
        endpoint.record(Answer::Failed, at(0), at(0));
        let over = at(0) + FIRST_BACKOFF;
        endpoint.take_probe(over + Duration::seconds(15));
        // The second's failure, answered at 0, is recorded once the probe
        // is out: the same outage, not an answer to the probe.
        endpoint.record(Answer::Failed, at(0), at(0));
        assert_eq!(endpoint.health.consecutive_failures, 2);
        assert_eq!(endpoint.health.blocked_until, Some(over));
        assert_eq!(
            endpoint.admission(kind, over + Duration::seconds(1)),
            Admission::Hold(over + Duration::seconds(2)),
            "the probe in flight stays the only one"
        );
    }

    #[test]
    fn once_a_block_is_over_one_delivery_probes_and_the_others_wait_for_its_answer() {
        let kind = EventType::OrderShipped;
        let mut endpoint = endpoint();
        endpoint.record(Answer::Failed, at(0), at(1));
        let over = at(1) + FIRST_BACKOFF;
        assert_eq!(endpoint.admission(kind, over), Admission::Probe);

        let version = endpoint.version;
        endpoint.take_probe(over + Duration::seconds(5));
        assert_eq!(
            endpoint.version,
            version + 1,
            "taken under the version read"
        );
        assert_eq!(
            endpoint.admission(kind, over + Duration::seconds(1)),
            Admission::Hold(over + Duration::seconds(1) + PROBE_RECHECK),
            "the others look again shortly for the probe's answer"
        );
        assert_eq!(
            endpoint.admission(kind, over + Duration::milliseconds(4_500)),
            Admission::Hold(over + Duration::seconds(5)),
        );
        // A probe that never answered (its deliverer died) is taken again.
        assert_eq!(
            endpoint.admission(kind, over + Duration::seconds(5)),
            Admission::Probe
        );

        // The probe fails: a longer block, then a probe of its own.
        endpoint.record(Answer::Failed, over, over + Duration::seconds(2));
        let longer = over + Duration::seconds(2) + FIRST_BACKOFF * 2;
        assert_eq!(endpoint.health.blocked_until, Some(longer));
        assert_eq!(endpoint.health.probe_until, None);
        assert_eq!(endpoint.admission(kind, longer), Admission::Probe);

        // The probe succeeds: everyone posts.
        endpoint.take_probe(longer + Duration::seconds(5));
        endpoint.record(Answer::Accepted, longer, longer + Duration::seconds(1));
        assert_eq!(
            endpoint.admission(kind, longer + Duration::seconds(1)),
            Admission::Post
        );
    }

    #[test]
    fn a_410_disables_at_once_and_a_day_of_failures_disables_with_the_reason() {
        let mut gone = endpoint();
        assert!(gone.record(Answer::Gone, at(0), at(0)));
        assert_eq!(
            gone.admission(EventType::OrderShipped, at(0)),
            Admission::Skip
        );
        assert!(gone.disabled_reason.as_deref().unwrap().contains("410"));

        let mut failing = endpoint();
        assert!(!failing.record(Answer::Failed, at(0), at(0)));
        assert!(!failing.record(Answer::Failed, at(86_399), at(86_399)));
        assert!(failing.record(Answer::Failed, at(86_400), at(86_400)));
        assert!(!failing.enabled);
        assert!(
            failing
                .disabled_reason
                .as_deref()
                .unwrap()
                .contains("every delivery failed")
        );
    }

    #[test]
    fn enabling_again_starts_afresh_and_unwanted_types_are_skipped() {
        let mut endpoint = endpoint();
        endpoint.record(Answer::Gone, at(0), at(0));
        let enable = EndpointChange {
            enabled: Some(true),
            event_types: Some(EventTypes::Only([EventType::OrderShipped].into())),
            ..EndpointChange::default()
        };
        endpoint.change(enable, at(10));
        assert_eq!(endpoint.disabled_reason, None);
        assert_eq!(endpoint.health, Health::default());
        assert_eq!(
            endpoint.admission(EventType::OrderShipped, at(10)),
            Admission::Post
        );
        assert_eq!(
            endpoint.admission(EventType::OrderPacked, at(10)),
            Admission::Skip
        );
    }
}
