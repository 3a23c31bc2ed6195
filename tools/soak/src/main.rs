//! `make soak`: N orders (default 10,000) through the local stack under the
//! faults production brings, then every order reconciled against the
//! partner's log. Run it under `infra/local/emulators.sh exec --`: the
//! emulators stay up while the soak SIGKILLs and restarts the service.
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
//! Exits non-zero when an order is lost, a shipment is posted after a
//! recorded success, an order's final state disagrees with its events, or the
//! API answers a 5xx other than 503 with `Retry-After`.

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

use crate::partner::{FaultPlan, Partner};
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

    let plan = FaultPlan {
        latency_ms: (5, 40),
        server_error_pct: 5,
        throttle_pct: 3,
        reset_pct: 3,
        slow_pct: 2,
        slow_by: Duration::from_secs(TIMEOUT_SECONDS + 1),
        token_lifetime: Duration::from_secs(20),
        revoke_every: Duration::from_secs(15),
    };
    let partner = Partner::new(plan.clone(), args.seed);
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
        ("CALLBACK_RETRY_DELAYS", RETRY_DELAYS.into()),
        ("CALLBACK_TIMEOUT_SECONDS", TIMEOUT_SECONDS.to_string()),
        ("CALLBACK_BREAKER_COOL_DOWN_SECONDS", "3".into()),
        ("CALLBACK_BREAKER_MAX_COOL_DOWN_SECONDS", "15".into()),
        // A killed dispatcher's batch is invisible this long (the template's
        // 360 s, compressed with the schedule; still above the 10 s lease).
        (
            "LOCAL_VISIBILITY_TIMEOUT_SECONDS",
            VISIBILITY_SECONDS.to_string(),
        ),
        ("LOCAL_API_KEY", erp_key.clone()),
        ("LOCAL_WMS_KEY", wms_key.clone()),
        ("LOCAL_STATE_DIR", run_dir.display().to_string()),
        (
            "RUST_LOG",
            "warn,callback_dispatch=info,local_stack::rearm=info".into(),
        ),
    ]
    .into_iter()
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
    let outage = tokio::spawn(outage(
        Arc::clone(&partner),
        Arc::clone(&done),
        args.orders * 2 / 5,
        Duration::from_secs(args.down_seconds),
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
    let accepted: Vec<(usize, bool)> = futures::stream::iter(0..args.orders)
        .map(|index| {
            let api = Arc::clone(&api);
            let done = Arc::clone(&done);
            async move {
                let accepted = api.run_order(index, seed).await;
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
            retry_delays: RETRY_DELAYS,
            timeout_seconds: TIMEOUT_SECONDS,
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
    let mut rng = rng::Rng::new(seed ^ 0x0c0f_fee0);
    let mean_ms = mean_seconds.max(1) * 1000;
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

/// Takes the partner down completely once `after` orders are through.
async fn outage(partner: Arc<Partner>, done: Arc<AtomicUsize>, after: usize, length: Duration) {
    while done.load(Ordering::SeqCst) < after {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("soak: the partner goes down for {} s", length.as_secs());
    partner.set_down(true);
    tokio::time::sleep(length).await;
    partner.set_down(false);
    println!("soak: the partner is back");
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
