//! `make soak`: N orders (default 10,000) through the local stack under the
//! faults production brings, then every order reconciled against the
//! partner's log. Run it under `infra/local/emulators.sh exec --`: the
//! emulators stay up while the soak SIGKILLs and restarts the service.
//! It lives in `infra/` beside `infra/bench` and `infra/local-stack`: both
//! harnesses drive the local stack, while `tools/` holds what an operator
//! runs against a deployed stack (`orderctl`).
//!
//! - [`partner`]: the fault-injecting partner (5xx, 429 with `Retry-After`,
//!   resets, answers after the client's timeout, `Success: false`, expiring
//!   OAuth2 tokens, down for a stretch) and its log;
//! - [`service`]: the `local-stack` process, killed and restarted, its peak
//!   RSS and CPU sampled;
//! - [`driver`]: the ERP and the warehouse over HTTP (concurrent creates,
//!   identical and conflicting replays, duplicated, reordered and concurrent
//!   events, callback replays while attempts are in flight);
//! - [`scenario`]: which order meets which of those;
//! - [`report`]: the reconciliation and its figures (stdout, and with
//!   `--write-doc` the block in docs/reliability.md).
//!
//! Phases, by the share of the orders sent: the partner is flaky from 5 %
//! to 35 % (`--flaky-pct` of posts fail at random, every kind, on top of the
//! plan's faults; the circuit breaker must *not* open), and down completely
//! from 40 % on for `--down-seconds` (the breaker must open).
//!
//! Exits non-zero when an order is lost, a shipment is posted after a
//! recorded success, an order's final state disagrees with its events, the
//! API answers a 5xx other than 503 with `Retry-After`, or the breaker opens
//! while the partner is only flaky (or not while it is down).
//!
//! `--burst` is issue 21's measurement instead: the service as `make run`
//! configures it (the deployed schedule and breaker), no SIGKILLs, no outage,
//! 16 clients, and the partner failing 30 % of first posts at random (5xx,
//! 429, resets, 12 s hangs) while every retry succeeds. `--breaker-off` runs
//! it without the breaker; `--leave-due` and `--already-sent` set up the
//! burst that meets callbacks already due (infra/local/burst.sh).

mod driver;
mod partner;
mod report;
mod rng;
mod scenario;
mod service;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::partner::{FaultPlan, Flaky, Partner};
use crate::report::{Figures, QueueProbe};
use crate::service::Service;

/// The compressed retry schedule: the production one's shape (8 posts,
/// growing delays) in two minutes instead of 27.6 hours.
const RETRY_DELAYS: &str = "1,2,4,8,15,30,60";
/// The dispatcher's partner timeout (seconds); the partner's slow answers
/// come a second after it.
const TIMEOUT_SECONDS: u64 = 2;
/// The callback messages' visibility timeout (seconds): what a SIGKILLed
/// dispatcher's batch waits before another delivery takes it.
const VISIBILITY_SECONDS: u64 = 30;
/// Callbacks in flight at once: `DispatchConcurrency` (5) batches of 10.
pub const DISPATCH_SLOTS: u64 = 50;

#[derive(Debug, Parser)]
#[command(
    about = "Soak the local stack: orders through faults, reconciled against the partner's log"
)]
struct Args {
    /// Orders to run.
    #[arg(long, default_value_t = 10_000)]
    orders: usize,
    /// Orders in progress at once (ERP and warehouse together).
    #[arg(long, default_value_t = 24)]
    concurrency: usize,
    /// Mean seconds between SIGKILLs of the service while orders come in.
    #[arg(long, default_value_t = 20)]
    kill_every: u64,
    /// How long the partner is down completely (from 40 % of the orders on).
    #[arg(long, default_value_t = 15)]
    down_seconds: u64,
    /// Seeds the fault plan and the timings.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give up waiting for the callbacks to settle after this many seconds.
    #[arg(long, default_value_t = 900)]
    drain_timeout: u64,
    /// Write the figures into this file's `<!-- soak:begin -->` block.
    #[arg(long)]
    write_doc: Option<PathBuf>,
    /// The service binary (default: `local-stack` next to this one).
    #[arg(long)]
    local_stack: Option<PathBuf>,
    /// Posts failing at random in the flaky phase (percent).
    #[arg(long, default_value_t = 30)]
    flaky_pct: u64,
    /// The flaky phase, from and to this share of the orders sent (percent;
    /// 100: to the end of the run, drain included).
    #[arg(long, default_value_t = 5)]
    flaky_from: usize,
    #[arg(long, default_value_t = 35)]
    flaky_to: usize,
    /// Issue 21's burst: see the crate doc.
    #[arg(long)]
    burst: bool,
    /// Runs the service without its circuit breaker (and its 429 throttle).
    #[arg(long)]
    breaker_off: bool,
    /// The partner is down throughout; stop once every order is sent (its
    /// callback due and failing), leaving them due for the next run on the
    /// same data (`DYNAMODB_DATA_DIR`).
    #[arg(long)]
    leave_due: bool,
    /// Orders `0..N` were sent by an earlier run (`--leave-due`) on the same
    /// data: send only the others, reconcile all.
    #[arg(long, default_value_t = 0)]
    already_sent: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // Plain HTTP only, but reqwest's rustls needs a provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exe = match &args.local_stack {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("local-stack"),
    };
    if !exe.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build -p local-stack)",
            exe.display()
        )
        .into());
    }
    let run_dir = std::env::temp_dir().join(format!("soak-{}", std::process::id()));
    std::fs::create_dir_all(&run_dir)?;

    let mut args = args;
    if args.burst {
        args.kill_every = 0;
        args.down_seconds = 0;
        args.concurrency = 16;
        args.flaky_from = 0;
        args.flaky_to = 100;
    }
    let plan = if args.burst {
        FaultPlan {
            latency_ms: (5, 40),
            server_error_pct: 0,
            throttle_pct: 0,
            reset_pct: 0,
            slow_pct: 0,
            slow_by: Duration::ZERO,
            token_lifetime: Duration::from_secs(3600),
            revoke_every: Duration::from_secs(1_000_000),
        }
    } else {
        FaultPlan {
            latency_ms: (5, 40),
            server_error_pct: 5,
            throttle_pct: 3,
            reset_pct: 3,
            slow_pct: 2,
            slow_by: Duration::from_secs(TIMEOUT_SECONDS + 1),
            token_lifetime: Duration::from_secs(20),
            revoke_every: Duration::from_secs(15),
        }
    };
    let flaky = Flaky {
        pct: args.flaky_pct,
        first_posts_only: args.burst,
        hang: Duration::from_secs(if args.burst { 12 } else { TIMEOUT_SECONDS + 1 }),
    };
    let partner = Partner::new(plan.clone(), args.seed);
    if args.leave_due {
        partner.set_down(true);
    }
    let partner_listener = TcpListener::bind("127.0.0.1:0").await?;
    let partner_address = partner_listener.local_addr()?;
    tokio::spawn(Arc::clone(&partner).serve(partner_listener));

    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let erp_key = format!("soak-erp-{}", args.seed);
    let wms_key = format!("soak-wms-{}", args.seed);
    let env: Vec<(String, String)> = [
        ("PORT", port.to_string()),
        (
            "CALLBACK_URL",
            format!("http://{partner_address}{}", partner::CALLBACK_PATH),
        ),
        (
            "CALLBACK_TOKEN_URL",
            format!("http://{partner_address}{}", partner::TOKEN_PATH),
        ),
        ("CALLBACK_CLIENT_ID", partner::CLIENT_ID.into()),
        ("CALLBACK_CLIENT_SECRET", partner::CLIENT_SECRET.into()),
        (
            "CALLBACK_REFRESH_TOKEN",
            partner::FIRST_REFRESH_TOKEN.into(),
        ),
        ("LOCAL_API_KEY", erp_key.clone()),
        ("LOCAL_WMS_KEY", wms_key.clone()),
        ("LOCAL_STATE_DIR", run_dir.display().to_string()),
        (
            "RUST_LOG",
            "warn,callback_dispatch=info,local_stack::rearm=info,shared::dispatch=info".into(),
        ),
    ]
    .into_iter()
    .chain(if args.burst {
        // As `make run` configures it: the deployed schedule and breaker.
        vec![]
    } else {
        vec![
            ("CALLBACK_RETRY_DELAYS", RETRY_DELAYS.into()),
            ("CALLBACK_TIMEOUT_SECONDS", TIMEOUT_SECONDS.to_string()),
            ("CALLBACK_BREAKER_COOL_DOWN_SECONDS", "3".into()),
            ("CALLBACK_BREAKER_MAX_COOL_DOWN_SECONDS", "15".into()),
            ("CALLBACK_BREAKER_RAMP_SECONDS", "5".into()),
            // A killed dispatcher's batch is invisible this long (the
            // template's 360 s, compressed with the schedule; still above
            // the 10 s lease).
            (
                "LOCAL_VISIBILITY_TIMEOUT_SECONDS",
                VISIBILITY_SECONDS.to_string(),
            ),
        ]
    })
    .chain(
        args.breaker_off
            .then(|| ("CALLBACK_BREAKER", "off".to_owned())),
    )
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let service = Arc::new(Mutex::new(Service::new(
        exe,
        env,
        run_dir.join("service.log"),
    )));
    let api = Arc::new(driver::Api::new(base, erp_key, wms_key)?);
    println!(
        "soak: {} orders, {} at once; service log {}",
        args.orders,
        args.concurrency,
        run_dir.join("service.log").display()
    );
    service.lock().await.start()?;
    wait_ready(&api).await?;

    let started = Instant::now();
    let load_done = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let killer = tokio::spawn(kill_at_random(
        Arc::clone(&service),
        Arc::clone(&load_done),
        args.kill_every,
        args.seed,
    ));
    let outage_phase = Arc::new(std::sync::Mutex::new(None));
    let flaky_phase = Arc::new(std::sync::Mutex::new(None));
    let outage = tokio::spawn(outage(
        Arc::clone(&partner),
        Arc::clone(&done),
        args.orders * 2 / 5,
        Duration::from_secs(args.down_seconds),
        Arc::clone(&outage_phase),
    ));
    let flaky_task = tokio::spawn(flaky_stretch(
        Arc::clone(&partner),
        Arc::clone(&done),
        (
            args.orders * args.flaky_from / 100,
            (args.flaky_to < 100).then(|| args.orders * args.flaky_to / 100),
        ),
        (args.flaky_pct > 0 && !args.leave_due).then_some(flaky),
        Arc::clone(&flaky_phase),
    ));
    let queue = Arc::new(std::sync::Mutex::new(QueueProbe::default()));
    let prober = tokio::spawn(report::probe_queue(run_dir.join("env"), Arc::clone(&queue)));
    let progress = tokio::spawn(progress(
        Arc::clone(&done),
        Arc::clone(&partner),
        Arc::clone(&service),
        args.orders,
    ));

    let seed = args.seed;
    let already_sent = args.already_sent;
    let leave_due = args.leave_due;
    let accepted: Vec<(usize, bool)> = futures::stream::iter(0..args.orders)
        .map(|index| {
            let api = Arc::clone(&api);
            let done = Arc::clone(&done);
            async move {
                let accepted = if index < already_sent {
                    true
                } else if leave_due {
                    api.ship_plainly(index).await
                } else {
                    api.run_order(index, seed).await
                };
                done.fetch_add(1, Ordering::SeqCst);
                (index, accepted)
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let load_time = started.elapsed();
    load_done.store(true, Ordering::SeqCst);
    killer.await??;
    outage.await?;
    if args.leave_due {
        // Every callback has been tried (and held or failed) by now.
        tokio::time::sleep(Duration::from_secs(15)).await;
        service.lock().await.kill().await?;
        println!(
            "soak: {} orders sent with the partner down; their callbacks are left due",
            accepted.iter().filter(|(_, ok)| *ok).count()
        );
        return Ok(());
    }
    {
        let mut service = service.lock().await;
        if !service.running() {
            service.start()?;
        }
    }
    println!(
        "soak: all {} orders sent in {:.0} s; draining",
        args.orders,
        load_time.as_secs_f64()
    );

    let accepted: Vec<bool> = {
        let mut flags = vec![false; args.orders];
        for (index, ok) in accepted {
            flags[index] = ok;
        }
        flags
    };
    let drain_started = Instant::now();
    let drain = report::drain(&api, &accepted, Duration::from_secs(args.drain_timeout)).await;
    let drain_time = drain_started.elapsed();
    // Late posts, if any, have a moment to arrive before the books close.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let views = report::read_all(&api, args.orders).await;
    flaky_task.abort();
    progress.abort();
    prober.abort();

    let mut service = service.lock().await;
    let usage = service
        .usage
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let wall = started.elapsed();
    service.kill().await?;
    let service_log = std::fs::read_to_string(service.log_path()).unwrap_or_default();
    let figures = Figures::reconcile(report::Inputs {
        orders: args.orders,
        accepted: &accepted,
        views: &views,
        posts: &partner.log(),
        kills: &service.kills[..service.kills.len().saturating_sub(1)],
        stats: &api.stats,
        usage: &usage,
        queue: &queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        service_log: &service_log,
        outage: phase(&outage_phase),
        flaky: phase(&flaky_phase),
        partner_refreshes: partner.refreshes(),
        stale_refreshes: partner.stale_refreshes(),
        dropped_while_down: partner.dropped_while_down(),
        starts: service.starts,
        load_time,
        drain_time,
        drained: drain.settled,
        backlog_at_load_end: drain.backlog,
        wall,
        plan: &plan,
        args: report::RunArgs {
            concurrency: args.concurrency,
            kill_every: args.kill_every,
            down_seconds: args.down_seconds,
            seed: args.seed,
            retry_delays: if args.burst {
                "deployed (5,300,1800,…)"
            } else {
                RETRY_DELAYS
            },
            timeout_seconds: if args.burst { 10 } else { TIMEOUT_SECONDS },
            flaky,
            flaky_from: args.flaky_from,
            flaky_to: args.flaky_to,
            burst: args.burst,
            breaker_off: args.breaker_off,
            already_sent: args.already_sent,
        },
    });
    println!("{}", figures.text());
    if let Some(path) = &args.write_doc {
        report::write_doc(path, &figures.markdown())?;
        println!("soak: figures written to {}", path.display());
    }
    if figures.passed() {
        let _ = std::fs::remove_dir_all(&run_dir);
        Ok(())
    } else {
        Err(format!(
            "soak failed its targets (service log kept in {})",
            run_dir.display()
        )
        .into())
    }
}

/// Waits until the service answers HTTP (a read of an unknown order: 404).
async fn wait_ready(api: &driver::Api) -> Result<(), Box<dyn std::error::Error>> {
    let (status, body) = api
        .send(
            &api.erp_key,
            reqwest::Method::GET,
            "/apicenter/api/order/soak-probe",
            None,
        )
        .await;
    if status == 404 {
        Ok(())
    } else {
        Err(format!("the service did not come up: {status} {body}").into())
    }
}

/// SIGKILLs the service at random moments while the orders come in, and
/// starts it again at once (the emulators keep running).
async fn kill_at_random(
    service: Arc<Mutex<Service>>,
    load_done: Arc<AtomicBool>,
    mean_seconds: u64,
    seed: u64,
) -> std::io::Result<()> {
    if mean_seconds == 0 {
        return Ok(());
    }
    let mut rng = rng::Rng::new(seed ^ 0x0c0f_fee0);
    let mean_ms = mean_seconds * 1000;
    loop {
        let wait = mean_ms / 2 + rng.below(mean_ms);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
        while tokio::time::Instant::now() < deadline {
            if load_done.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut service = service.lock().await;
        service.kill().await?;
        tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
        service.start()?;
    }
}

/// When a phase began and ended (`DateTime::MAX_UTC` while it lasts).
pub type Phase = Option<(DateTime<Utc>, DateTime<Utc>)>;

type SharedPhase = Arc<std::sync::Mutex<Phase>>;

fn phase(shared: &SharedPhase) -> Phase {
    *shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn set_phase(shared: &SharedPhase, value: Phase) {
    *shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

/// Takes the partner down completely once `after` orders are through.
async fn outage(
    partner: Arc<Partner>,
    done: Arc<AtomicUsize>,
    after: usize,
    length: Duration,
    record: SharedPhase,
) {
    if length.is_zero() {
        return;
    }
    while done.load(Ordering::SeqCst) < after {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("soak: the partner goes down for {} s", length.as_secs());
    let began = Utc::now();
    partner.set_down(true);
    tokio::time::sleep(length).await;
    partner.set_down(false);
    println!("soak: the partner is back");
    set_phase(&record, Some((began, Utc::now())));
}

/// Makes the partner flaky from `from` orders through to `to` (`None`: to
/// the end of the run).
async fn flaky_stretch(
    partner: Arc<Partner>,
    done: Arc<AtomicUsize>,
    (from, to): (usize, Option<usize>),
    flaky: Option<Flaky>,
    record: SharedPhase,
) {
    let Some(flaky) = flaky else {
        return;
    };
    while done.load(Ordering::SeqCst) < from {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("soak: the partner fails {} % of posts at random", flaky.pct);
    let began = Utc::now();
    set_phase(&record, Some((began, DateTime::<Utc>::MAX_UTC)));
    partner.set_flaky(Some(flaky));
    let Some(to) = to else {
        return;
    };
    while done.load(Ordering::SeqCst) < to {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    partner.set_flaky(None);
    set_phase(&record, Some((began, Utc::now())));
    println!("soak: the partner is no longer flaky");
}

async fn progress(
    done: Arc<AtomicUsize>,
    partner: Arc<Partner>,
    service: Arc<Mutex<Service>>,
    orders: usize,
) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let kills = service.lock().await.kills.len();
        println!(
            "soak: {:>4.0} s  orders {}/{orders}  partner posts {}  kills {kills}",
            started.elapsed().as_secs_f64(),
            done.load(Ordering::SeqCst),
            partner.log().len(),
        );
    }
}
