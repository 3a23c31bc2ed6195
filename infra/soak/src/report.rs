//! Waiting for the callbacks to settle, and the reconciliation: every order
//! as the service finally shows it against every post the partner received.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;

use crate::driver::{Api, Stats};
use crate::emulator_dynamodb::env_file_value;
use crate::partner::{Answer, FaultPlan, Post};
use crate::scenario::{self, Plan};
use crate::service::Usage;

const BEGIN: &str = "<!-- soak:begin -->";
const END: &str = "<!-- soak:end -->";

/// A callback is settled once it is delivered or failed.
/// A final state: delivered, failed, or dead-lettered (the schedule ran out;
/// only an operator's replay moves it). Without the last, one dead-lettered
/// callback kept the 10,000-order soak's drain waiting its whole 900 s.
fn settled(view: &Value) -> bool {
    matches!(
        view["callback"]["status"].as_str(),
        Some("delivered" | "failed" | "dead_lettered")
    )
}

/// The earliest the success can have been recorded: when the delivering
/// post's answer came back (`at` + `latency_ms` of the attempt), or
/// `finished_at` (whole seconds, rounded down) if later. The record is
/// written after that moment, so counting posts after it over-counts, never
/// under-counts.
fn recorded_success(callback: &Value) -> Option<DateTime<Utc>> {
    let parse = |at: &Value| {
        at.as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
    };
    let answered = callback["attempts"]
        .as_array()?
        .iter()
        .rev()
        .find(|attempt| attempt["outcome"] == "delivered")
        .and_then(|attempt| {
            let latency = attempt["latency_ms"].as_i64()?;
            Some(parse(&attempt["at"])? + chrono::Duration::milliseconds(latency))
        });
    answered.max(parse(&callback["finished_at"]))
}

/// Every order by number, read 100 at a time through the API.
pub async fn read_all(api: &Api, orders: usize) -> HashMap<String, Value> {
    let numbers: Vec<String> = (0..orders).map(scenario::order_number).collect();
    read(api, &numbers).await
}

async fn read(api: &Api, numbers: &[String]) -> HashMap<String, Value> {
    let pages: Vec<Vec<Value>> = futures::stream::iter(numbers.chunks(100))
        .map(|chunk| api.read_orders(chunk))
        .buffer_unordered(4)
        .collect()
        .await;
    pages
        .into_iter()
        .flatten()
        .filter_map(|view| Some((view["order_number"].as_str()?.to_owned(), view)))
        .collect()
}

#[derive(Debug)]
pub struct Drain {
    /// Due callbacks not yet settled when the last order was sent.
    pub backlog: usize,
    pub settled: bool,
}

/// Polls the due orders until every callback is settled or `timeout` passes.
pub async fn drain(api: &Api, accepted: &[bool], timeout: Duration) -> Drain {
    let started = Instant::now();
    let mut waiting: Vec<String> = accepted
        .iter()
        .enumerate()
        .filter(|(index, ok)| **ok && Plan::for_index(*index).due())
        .map(|(index, _)| scenario::order_number(index))
        .collect();
    let mut backlog = None;
    loop {
        let views = read(api, &waiting).await;
        waiting.retain(|number| !views.get(number).is_some_and(settled));
        backlog.get_or_insert(waiting.len());
        if waiting.is_empty() || started.elapsed() >= timeout {
            return Drain {
                backlog: backlog.unwrap_or(0),
                settled: waiting.is_empty(),
            };
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The SQS emulator under the soak: the callback queue's depth and how long
/// the emulator takes to answer.
#[derive(Debug, Default, Clone)]
pub struct QueueProbe {
    pub samples: u64,
    pub max_visible: u64,
    pub max_in_flight: u64,
    pub max_latency: Duration,
    pub total_latency: Duration,
    pub failures: u64,
}

/// Samples the callback queue every two seconds (`GetQueueAttributes`,
/// SQS's JSON protocol, as the SDK speaks it) once the service has written
/// its `env` file.
pub async fn probe_queue(env_file: PathBuf, probe: Arc<Mutex<QueueProbe>>) {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_SQS") else {
        return;
    };
    let http = reqwest::Client::new();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(queue_url) = env_file_value(&env_file, "CALLBACK_QUEUE_URL") else {
            continue;
        };
        let started = Instant::now();
        let answer = http
            .post(&endpoint)
            .header("X-Amz-Target", "AmazonSQS.GetQueueAttributes")
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
            )
            .timeout(Duration::from_secs(30))
            .body(
                serde_json::json!({
                    "QueueUrl": queue_url,
                    "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                })
                .to_string(),
            )
            .send()
            .await;
        let latency = started.elapsed();
        let attributes = match answer {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        let mut probe = probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let number = |attributes: &Value, name: &str| {
            attributes["Attributes"][name]
                .as_str()
                .and_then(|n| n.parse::<u64>().ok())
        };
        match attributes {
            Some(attributes) if attributes["Attributes"].is_object() => {
                probe.samples += 1;
                probe.total_latency += latency;
                probe.max_latency = probe.max_latency.max(latency);
                let visible = number(&attributes, "ApproximateNumberOfMessages").unwrap_or(0);
                let hidden =
                    number(&attributes, "ApproximateNumberOfMessagesNotVisible").unwrap_or(0);
                probe.max_visible = probe.max_visible.max(visible);
                probe.max_in_flight = probe.max_in_flight.max(hidden);
            }
            _ => probe.failures += 1,
        }
    }
}

/// The fixed settings of a run, for the report.
#[derive(Debug)]
pub struct RunArgs {
    pub concurrency: usize,
    pub kill_every: u64,
    pub down_seconds: u64,
    pub seed: u64,
    pub retry_delays: &'static str,
    pub timeout_seconds: u64,
    pub flaky: crate::partner::Flaky,
    pub flaky_from: usize,
    pub flaky_to: usize,
    pub burst: bool,
    pub breaker_off: bool,
    pub already_sent: usize,
}

/// Everything the reconciliation reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub orders: usize,
    pub accepted: &'a [bool],
    pub views: &'a HashMap<String, Value>,
    pub posts: &'a [Post],
    /// When the service was SIGKILLed during the run.
    pub kills: &'a [DateTime<Utc>],
    pub stats: &'a Stats,
    pub usage: &'a Usage,
    pub queue: &'a QueueProbe,
    pub service_log: &'a str,
    /// When the partner was down, and when it was flaky.
    pub outage: crate::Phase,
    pub flaky: crate::Phase,
    pub partner_refreshes: u64,
    pub stale_refreshes: u64,
    pub dropped_while_down: u64,
    pub starts: u32,
    pub load_time: Duration,
    pub drain_time: Duration,
    pub drained: bool,
    pub backlog_at_load_end: usize,
    pub wall: Duration,
    pub plan: &'a FaultPlan,
    pub args: RunArgs,
}

/// The reconciliation's figures.
#[derive(Debug, Default)]
pub struct Figures {
    pub orders: usize,
    pub accepted: usize,
    pub stored: usize,
    pub due: usize,
    pub delivered: usize,
    pub failed_refused: usize,
    /// Dead-lettered (or failed) after every post failed at the partner.
    pub exhausted_by_partner_faults: usize,
    pub lost: usize,
    pub duplicated_after_success: usize,
    pub repeated_after_timeout: usize,
    pub repeated_after_crash: usize,
    pub repeated_after_late_record: usize,
    pub repeated_unexplained: usize,
    pub inconsistent: usize,
    pub unexpected_5xx: u64,
    pub unexpected_answers: u64,
    pub retry_later: u64,
    pub connection_retries: u64,
    pub requests: u64,
    pub replays_accepted: u64,
    pub replays_refused: u64,
    pub posts: usize,
    pub posts_by_answer: Vec<(&'static str, usize)>,
    pub dropped_while_down: u64,
    pub partner_refreshes: u64,
    pub stale_refreshes: u64,
    pub duplicate_messages_dropped: usize,
    pub superseded_messages_dropped: usize,
    pub rearmed_lines: usize,
    /// `Some` when the phase ran: the times the breaker opened in it.
    pub breaker_opened_in_outage: Option<usize>,
    pub breaker_opened_in_flaky: Option<usize>,
    pub breaker_opened: usize,
    pub held_lines: usize,
    /// Posts the partner received while flaky, and how many it failed.
    pub flaky_posts: (usize, usize),
    pub kills: usize,
    pub starts: u32,
    pub load_time: Duration,
    pub drain_time: Duration,
    pub drained: bool,
    pub backlog: usize,
    pub drain_bound: Duration,
    pub mean_latency_ms: f64,
    pub wall: Duration,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
    pub queue: QueueProbe,
    pub samples: Vec<String>,
    pub settings: String,
    pub retry_delays: &'static str,
    /// The ERP's webhooks, when the run had an ERP endpoint.
    pub webhooks: Option<crate::webhook_report::WebhookFigures>,
    /// The ERP's faults, for the settings line.
    pub erp_settings: Option<String>,
    /// The orders, request items and labels as stored, reconciled.
    pub stored_state: Option<crate::aws_state::StoreFigures>,
    /// The AWS-boundary faults given, when the run had them.
    pub aws: Option<crate::aws::AwsFigures>,
}

/// Every post failed as the service saw it (the partner's faults, 8 in a
/// row at the flaky phase's ~43 % per post: about 1 in 800 callbacks
/// there): the schedule ran out as documented and the message went to the
/// dead-letter queue for an operator. A post the partner processed but
/// answered after the client's timeout is such a failure too: the service
/// cannot know, and the partner's idempotency key makes the operator's
/// replay harmless (a 10,000-order soak dead-lettered `soak-001528` after 8
/// failed posts, 2 of them processed late, and counted it lost).
fn every_post_failed_as_the_service_saw_it(posts: &[&Post]) -> bool {
    !posts.is_empty()
        && posts
            .iter()
            .all(|post| !matches!(post.answer, Answer::Accepted | Answer::Refused))
}

impl Figures {
    pub fn reconcile(input: Inputs<'_>) -> Self {
        let mut by_order: HashMap<&str, Vec<&Post>> = HashMap::new();
        for post in input.posts {
            by_order
                .entry(post.order_number.as_str())
                .or_default()
                .push(post);
        }
        let mut figures = Self {
            orders: input.orders,
            ..Self::default()
        };
        let sample = |figures: &mut Self, what: String| {
            if figures.samples.len() < 20 {
                figures.samples.push(what);
            }
        };
        for index in 0..input.orders {
            let number = scenario::order_number(index);
            let plan = Plan::for_index(index);
            let accepted = input.accepted.get(index).copied().unwrap_or(false);
            figures.accepted += usize::from(accepted);
            let Some(view) = input.views.get(&number) else {
                if accepted {
                    figures.lost += usize::from(plan.due());
                    figures.inconsistent += 1;
                    sample(&mut figures, format!("{number}: accepted but not stored"));
                }
                continue;
            };
            figures.stored += 1;
            let mut posts = by_order.remove(number.as_str()).unwrap_or_default();
            posts.sort_by_key(|post| post.received_at);
            let callback = view["callback"]["status"].as_str().unwrap_or("none");
            if !plan.due() {
                if view["status"] != "cancelled" || !posts.is_empty() {
                    figures.inconsistent += 1;
                    sample(
                        &mut figures,
                        format!(
                            "{number}: cancelled by the warehouse, shows {} with {} post(s)",
                            view["status"],
                            posts.len()
                        ),
                    );
                }
                continue;
            }
            figures.due += 1;
            let tracking = scenario::tracking_number(index);
            if view["status"] != "handed_over" || view["tracking_number"] != tracking.as_str() {
                figures.inconsistent += 1;
                sample(
                    &mut figures,
                    format!(
                        "{number}: shows {} / {}",
                        view["status"], view["tracking_number"]
                    ),
                );
            }
            if posts.iter().any(|post| post.tracking_number != tracking) {
                figures.inconsistent += 1;
                sample(
                    &mut figures,
                    format!("{number}: a post with another tracking number"),
                );
            }
            let processed: Vec<&&Post> = posts
                .iter()
                .filter(|post| post.answer.processed())
                .collect();
            match callback {
                "delivered" if !processed.is_empty() => {
                    figures.delivered += 1;
                    let recorded = recorded_success(&view["callback"]);
                    let after = match recorded {
                        Some(recorded) => posts
                            .iter()
                            .filter(|post| post.received_at > recorded)
                            .count(),
                        None => posts.len(),
                    };
                    if after > 0 {
                        sample(
                            &mut figures,
                            format!(
                                "{number}: {after} post(s) after the recorded success at {recorded:?}"
                            ),
                        );
                    }
                    figures.duplicated_after_success += after;
                    let late_records = view["callback"]["attempts"]
                        .as_array()
                        .map_or(0, |attempts| {
                            attempts
                                .iter()
                                .filter(|a| a["outcome"] == "delivered")
                                .count()
                        })
                        .saturating_sub(1);
                    for pair in processed.windows(2) {
                        let (before, repeat) = (pair[0], pair[1]);
                        if before.answer == Answer::AcceptedLate {
                            figures.repeated_after_timeout += 1;
                        } else if killed_between(
                            input.kills,
                            before.received_at,
                            repeat.received_at,
                        ) {
                            figures.repeated_after_crash += 1;
                        } else if late_records > 0 {
                            // The ledger keeps a success whose record came
                            // after the lease: a slow store, as a store
                            // failure between answer and record.
                            figures.repeated_after_late_record += 1;
                        } else {
                            figures.repeated_unexplained += 1;
                            sample(
                                &mut figures,
                                format!(
                                    "{number}: posted again at {} after a post the partner processed at {} with no timeout or crash between",
                                    repeat.received_at, before.received_at
                                ),
                            );
                        }
                    }
                }
                "failed"
                    if scenario::refused(&number)
                        && posts.iter().any(|post| post.answer == Answer::Refused) =>
                {
                    figures.failed_refused += 1;
                }
                "dead_lettered" | "failed" if every_post_failed_as_the_service_saw_it(&posts) => {
                    figures.exhausted_by_partner_faults += 1;
                    sample(
                        &mut figures,
                        format!(
                            "{number}: callback {callback} after {} post(s), every one failed at the partner (explained, not lost)",
                            posts.len()
                        ),
                    );
                }
                other => {
                    figures.lost += 1;
                    sample(
                        &mut figures,
                        format!(
                            "{number}: callback {other} ({}), {} post(s), {} processed",
                            view["callback"]["reason"],
                            posts.len(),
                            processed.len()
                        ),
                    );
                }
            }
        }
        for (number, posts) in by_order {
            figures.inconsistent += posts.len();
            sample(
                &mut figures,
                format!(
                    "{number:?}: {} post(s) for an order the soak does not know",
                    posts.len()
                ),
            );
        }
        let stats = input.stats;
        figures.unexpected_5xx = stats.unexpected_5xx.load(Ordering::Relaxed);
        figures.unexpected_answers =
            stats.unexpected_count.load(Ordering::Relaxed) - figures.unexpected_5xx;
        figures.retry_later = stats.retry_later.load(Ordering::Relaxed);
        figures.connection_retries = stats.connection_retries.load(Ordering::Relaxed);
        figures.requests = stats.requests.load(Ordering::Relaxed);
        figures.replays_accepted = stats.replays_accepted.load(Ordering::Relaxed);
        figures.replays_refused = stats.replays_refused.load(Ordering::Relaxed);
        for what in stats
            .unexpected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            sample(&mut figures, what.clone());
        }
        figures.posts = input.posts.len();
        let count = |answer: Answer| {
            input
                .posts
                .iter()
                .filter(|post| post.answer == answer)
                .count()
        };
        figures.posts_by_answer = vec![
            ("accepted", count(Answer::Accepted)),
            (
                "accepted after the client's timeout",
                count(Answer::AcceptedLate),
            ),
            ("refused (Success: false)", count(Answer::Refused)),
            ("5xx", count(Answer::ServerError)),
            ("429 with Retry-After", count(Answer::Throttled)),
            ("connection reset", count(Answer::Reset)),
            (
                "401 (token expired or revoked)",
                count(Answer::Unauthorized),
            ),
        ];
        figures.dropped_while_down = input.dropped_while_down;
        figures.partner_refreshes = input.partner_refreshes;
        figures.stale_refreshes = input.stale_refreshes;
        figures.duplicate_messages_dropped = input
            .service_log
            .matches("another message carries this callback")
            .count();
        figures.superseded_messages_dropped = input
            .service_log
            .matches("a replay superseded this message")
            .count();
        figures.rearmed_lines = input
            .service_log
            .matches("re-armed the callbacks that were due")
            .count();
        let opened = breaker_openings(input.service_log);
        let within = |phase: crate::Phase, grace: chrono::Duration| {
            phase.map(|(began, ended)| {
                opened
                    .iter()
                    .filter(|at| **at >= began && **at <= ended + grace)
                    .count()
            })
        };
        // An outage is seen by posts up to a timeout after it ended.
        figures.breaker_opened_in_outage = within(input.outage, chrono::Duration::seconds(10));
        figures.breaker_opened_in_flaky = within(input.flaky, chrono::Duration::zero());
        figures.breaker_opened = opened.len();
        if let Some((began, ended)) = input.flaky {
            let during: Vec<&Post> = input
                .posts
                .iter()
                .filter(|post| post.received_at >= began && post.received_at <= ended)
                .collect();
            let failed = during
                .iter()
                .filter(|post| {
                    matches!(
                        post.answer,
                        Answer::ServerError
                            | Answer::Throttled
                            | Answer::Reset
                            | Answer::AcceptedLate
                    )
                })
                .count();
            figures.flaky_posts = (during.len(), failed);
        }
        figures.held_lines = input.service_log.matches("callback held").count();
        figures.kills = input.kills.len();
        figures.starts = input.starts;
        figures.load_time = input.load_time;
        figures.drain_time = input.drain_time;
        figures.drained = input.drained;
        figures.backlog = input.backlog_at_load_end;
        let (low, high) = input.plan.latency_ms;
        figures.mean_latency_ms = (low + high) as f64 / 2.0;
        // What the partner's latency and the dispatcher's concurrency allow:
        // the backlog through DISPATCH_SLOTS posts at a time, each taking the
        // partner's mean latency.
        figures.drain_bound = Duration::from_secs_f64(
            figures.backlog as f64 * figures.mean_latency_ms
                / 1000.0
                / crate::DISPATCH_SLOTS as f64,
        );
        figures.wall = input.wall;
        figures.peak_rss_mib = input.usage.peak_rss_kib as f64 / 1024.0;
        figures.cpu_seconds = input.usage.cpu_seconds();
        figures.queue = input.queue.clone();
        let plan = input.plan;
        let args = &input.args;
        figures.retry_delays = args.retry_delays;
        let flaky = format!(
            "{} % of {} failing at random (5xx, 429, reset, answer after {} s) from {} % to {} % of the orders{}",
            args.flaky.pct,
            if args.flaky.first_posts_only {
                "first posts"
            } else {
                "posts"
            },
            args.flaky.hang.as_secs(),
            args.flaky_from,
            args.flaky_to,
            if args.flaky_to >= 100 {
                " and through the drain"
            } else {
                ""
            },
        );
        figures.settings = if args.burst {
            format!(
                "issue 21's burst: {} orders ({} of them sent by an earlier run with the partner down, their callbacks \
                 due), {} clients at once, each shipped and handed over with duplicated, reordered and concurrent \
                 events; partner latency {}–{} ms, {flaky}, every retry succeeding; no SIGKILLs; the deployed schedule, \
                 timeout and breaker{}; seed {}",
                input.orders,
                args.already_sent,
                args.concurrency,
                low,
                high,
                if args.breaker_off {
                    " (breaker OFF)"
                } else {
                    ""
                },
                args.seed,
            )
        } else {
            format!(
                "{} orders, {} in progress at once; partner latency {}–{} ms; per post {} % 5xx (500/502/503), \
                 {} % 429 with Retry-After 1–2 s, {} % connection reset, {} % answered {} s late (after the {} s timeout, \
                 having processed the post); every 40th order refused with Success:false; access tokens live {} s and are \
                 all revoked every {} s; the partner down completely for {} s from 40 % of the orders on; flaky: {flaky}; \
                 the service SIGKILLed every {}±{} s while orders come in; CALLBACK_RETRY_DELAYS={}; seed {}",
                input.orders,
                args.concurrency,
                low,
                high,
                plan.server_error_pct,
                plan.throttle_pct,
                plan.reset_pct,
                plan.slow_pct,
                plan.slow_by.as_secs(),
                args.timeout_seconds,
                plan.token_lifetime.as_secs(),
                plan.revoke_every.as_secs(),
                args.down_seconds,
                args.kill_every,
                args.kill_every / 2,
                args.retry_delays,
                args.seed,
            )
        };
        figures
    }

    /// The targets: nothing lost, nothing posted after a recorded success, no
    /// undocumented 5xx, every order as its events say.
    pub fn passed(&self) -> bool {
        self.drained
            && self.lost == 0
            && self.duplicated_after_success == 0
            && self.repeated_unexplained == 0
            && self.unexpected_5xx == 0
            && self.unexpected_answers == 0
            && self.inconsistent == 0
            && self.accepted == self.orders
            && self.breaker_opened_in_flaky.unwrap_or(0) == 0
            && self.breaker_opened_in_outage.is_none_or(|n| n > 0)
            && self
                .webhooks
                .as_ref()
                .is_none_or(crate::webhook_report::WebhookFigures::passed)
            && self
                .stored_state
                .as_ref()
                .is_none_or(crate::aws_state::StoreFigures::passed)
    }

    fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "orders sent / accepted / stored".into(),
                format!("{} / {} / {}", self.orders, self.accepted, self.stored),
            ),
            ("callbacks due".into(), self.due.to_string()),
            ("delivered".into(), self.delivered.to_string()),
            (
                "failed because the partner refused".into(),
                self.failed_refused.to_string(),
            ),
            (
                "dead-lettered after every post failed at the partner (its faults; an operator replays them)".into(),
                self.exhausted_by_partner_faults.to_string(),
            ),
            (
                "**lost** (due, neither delivered nor failed)".into(),
                format!("**{}**", self.lost),
            ),
            (
                "**duplicated after a recorded success**".into(),
                format!("**{}**", self.duplicated_after_success),
            ),
            (
                "posts repeated after a timeout (partner had processed)".into(),
                self.repeated_after_timeout.to_string(),
            ),
            (
                "posts repeated after a crash (SIGKILL between post and record)".into(),
                self.repeated_after_crash.to_string(),
            ),
            (
                "posts repeated after our record of a success missed its lease (slow store)".into(),
                self.repeated_after_late_record.to_string(),
            ),
            (
                "posts repeated with none of these".into(),
                self.repeated_unexplained.to_string(),
            ),
            (
                "**HTTP 5xx other than 503 with Retry-After**".into(),
                format!("**{}**", self.unexpected_5xx),
            ),
            (
                "other answers the API does not promise".into(),
                self.unexpected_answers.to_string(),
            ),
            (
                "orders whose final state disagrees with their events".into(),
                self.inconsistent.to_string(),
            ),
            (
                "503 with Retry-After (retried)".into(),
                self.retry_later.to_string(),
            ),
            (
                "API requests / re-sent after a connection failure".into(),
                format!("{} / {}", self.requests, self.connection_retries),
            ),
            (
                "ERP callback replays: 202 / 409".into(),
                format!("{} / {}", self.replays_accepted, self.replays_refused),
            ),
            (
                "service SIGKILLs / starts".into(),
                format!("{} / {}", self.kills, self.starts),
            ),
            (
                "duplicate queue messages dropped by the generation binding".into(),
                self.duplicate_messages_dropped.to_string(),
            ),
            (
                "messages dropped as superseded by a replay or re-arm".into(),
                self.superseded_messages_dropped.to_string(),
            ),
            ("partner posts".into(), self.posts.to_string()),
            (
                "**circuit breaker opened: while flaky (must be 0) / while down (must be ≥ 1) / in all**".into(),
                format!(
                    "**{} / {} / {}**",
                    self.breaker_opened_in_flaky.map_or("no phase".into(), |n| n.to_string()),
                    self.breaker_opened_in_outage.map_or("no phase".into(), |n| n.to_string()),
                    self.breaker_opened
                ),
            ),
            ("deliveries held by the breaker (log lines)".into(), self.held_lines.to_string()),
            (
                "posts while the partner was flaky / of them failed (5xx, 429, reset, late)".into(),
                format!("{} / {}", self.flaky_posts.0, self.flaky_posts.1),
            ),
        ];
        for (answer, count) in &self.posts_by_answer {
            rows.push((format!("  posts answered: {answer}"), count.to_string()));
        }
        rows.extend([
            ("connections dropped while the partner was down".into(), self.dropped_while_down.to_string()),
            (
                "OAuth2 token refreshes (with the previous, already rotated refresh token)".into(),
                format!("{} ({})", self.partner_refreshes, self.stale_refreshes),
            ),
            ("time to send all orders".into(), format!("{:.0} s", self.load_time.as_secs_f64())),
            ("callbacks still due when the last order was sent".into(), self.backlog.to_string()),
            (
                "**time to drain** (last order sent → every callback settled)".into(),
                format!(
                    "**{:.1} s**{}; floor {:.1} s (that backlog × {:.1} ms mean partner latency / {} posts at once); \
                     the rest is retry delays of callbacks whose last posts met faults ({} s, then {} s …)",
                    self.drain_time.as_secs_f64(),
                    if self.drained { "" } else { " (NOT drained: timed out)" },
                    self.drain_bound.as_secs_f64(),
                    self.mean_latency_ms,
                    crate::DISPATCH_SLOTS,
                    self.retry_delays.split(',').next().unwrap_or("?"),
                    self.retry_delays.split(',').nth(1).unwrap_or("?"),
                ),
            ),
            ("service peak RSS (largest VmHWM of any incarnation)".into(), format!("{:.0} MiB", self.peak_rss_mib)),
            (
                "service CPU (all incarnations)".into(),
                format!("{:.0} s over {:.0} s wall ({:.0} % of one core)", self.cpu_seconds, self.wall.as_secs_f64(), 100.0 * self.cpu_seconds / self.wall.as_secs_f64().max(1.0)),
            ),
            (
                "SQS emulator: deepest queue (visible / in flight)".into(),
                format!("{} / {}", self.queue.max_visible, self.queue.max_in_flight),
            ),
            (
                "SQS emulator: GetQueueAttributes latency mean / max (failed)".into(),
                format!(
                    "{:.0} ms / {:.0} ms ({})",
                    self.queue.total_latency.as_secs_f64() * 1000.0 / self.queue.samples.max(1) as f64,
                    self.queue.max_latency.as_secs_f64() * 1000.0,
                    self.queue.failures
                ),
            ),
        ]);
        if let Some(webhooks) = &self.webhooks {
            rows.extend(webhooks.rows());
        }
        if let Some(stored) = &self.stored_state {
            rows.extend(stored.rows());
        }
        if let Some(aws) = &self.aws {
            rows.extend(aws.rows());
        }
        rows
    }

    /// What the run did, the ERP's faults included.
    fn settings_line(&self) -> String {
        let mut line = match &self.erp_settings {
            Some(erp) => format!("{}; {erp}", self.settings),
            None => self.settings.clone(),
        };
        if let Some(aws) = &self.aws {
            line = format!(
                "{line}; the service's AWS calls through fault proxies (the soak's own reads not), per operation: {}",
                aws.plan
            );
        }
        line
    }

    /// The samples of what went wrong, the webhooks' after the callbacks'.
    fn all_samples(&self) -> impl Iterator<Item = &String> {
        self.samples
            .iter()
            .chain(self.webhooks.iter().flat_map(|webhooks| &webhooks.samples))
            .chain(self.stored_state.iter().flat_map(|stored| &stored.samples))
    }

    pub fn text(&self) -> String {
        let mut out = format!("\nsoak: {}\n\n", self.settings_line());
        for (name, value) in self.rows() {
            let _ = writeln!(
                out,
                "  {:<66} {}",
                name.replace("**", ""),
                value.replace("**", "")
            );
        }
        for what in self.all_samples() {
            let _ = writeln!(out, "  ! {what}");
        }
        let _ = writeln!(
            out,
            "\nsoak: {}",
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        out
    }

    pub fn markdown(&self) -> String {
        let machine = machine();
        let mut out = format!(
            "Run {} on {machine}: `make soak` (debug build).\n\nFault plan: {}.\n\n| Figure | Value |\n| --- | --- |\n",
            Utc::now().format("%Y-%m-%d %H:%M UTC"),
            self.settings_line()
        );
        for (name, value) in self.rows() {
            let _ = writeln!(out, "| {name} | {value} |");
        }
        let _ = writeln!(
            out,
            "\nResult: **{}**.",
            if self.passed() { "passed" } else { "FAILED" }
        );
        for what in self.all_samples() {
            let _ = writeln!(out, "- `{what}`");
        }
        out
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({cpu}){memory}")
}

/// Replaces the block between the soak markers in `path`.
pub fn write_doc(path: &Path, block: &str) -> Result<(), Box<dyn std::error::Error>> {
    let doc = std::fs::read_to_string(path)?;
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!("{} has no {BEGIN} … {END} block", path.display()).into());
    };
    let updated = format!("{}{BEGIN}\n{block}{}", &doc[..start], &doc[end..]);
    std::fs::write(path, updated)?;
    Ok(())
}

/// Whether the service was SIGKILLed between two posts.
pub fn killed_between(kills: &[DateTime<Utc>], from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    kills.iter().any(|kill| *kill > from && *kill < to)
}

/// When the service's log says the breaker opened (from closed).
fn breaker_openings(log: &str) -> Vec<DateTime<Utc>> {
    log.lines()
        .filter(|line| line.contains("circuit breaker opened"))
        .filter_map(|line| {
            let plain = strip_ansi(line);
            let first = plain.split_whitespace().next()?;
            DateTime::parse_from_rfc3339(first)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        })
        .collect()
}

/// The line without its terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posts(answers: &[Answer]) -> Vec<Post> {
        answers
            .iter()
            .map(|&answer| Post {
                order_number: "soak-000001".into(),
                tracking_number: "T".into(),
                received_at: Utc::now(),
                answer,
            })
            .collect()
    }

    #[test]
    fn a_dead_lettered_callback_is_settled_and_a_retrying_one_is_not() {
        let view = |status: &str| serde_json::json!({"callback": {"status": status}});
        assert!(settled(&view("dead_lettered")));
        assert!(settled(&view("delivered")) && settled(&view("failed")));
        assert!(!settled(&view("retrying")) && !settled(&view("pending")));
    }

    #[test]
    fn a_callback_dead_lettered_after_posts_processed_too_late_is_explained_not_lost() {
        let late = posts(&[
            Answer::ServerError,
            Answer::Reset,
            Answer::AcceptedLate,
            Answer::Throttled,
            Answer::AcceptedLate,
        ]);
        assert!(every_post_failed_as_the_service_saw_it(
            &late.iter().collect::<Vec<_>>()
        ));
        for answer in [Answer::Accepted, Answer::Refused] {
            let seen = posts(&[Answer::Reset, answer]);
            assert!(!every_post_failed_as_the_service_saw_it(
                &seen.iter().collect::<Vec<_>>()
            ));
        }
        assert!(!every_post_failed_as_the_service_saw_it(&[]));
    }
}
