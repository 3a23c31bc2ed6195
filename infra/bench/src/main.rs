//! `make bench` (issue 5), the part that needs the emulators: cold starts of
//! the release bootstraps against a Runtime API stub, intake and dispatch
//! throughput against raw baselines, binary sizes; then, with criterion's
//! CPU-per-order numbers, rewrites the numbers in `docs/benchmarks.md`.
//!
//! Run by `infra/local/bench.sh` under `infra/local/emulators.sh exec --`:
//!
//! ```text
//! bench --bin-dir target/release --criterion-dir target/criterion \
//!       --doc docs/benchmarks.md --json target/bench/results.json [--quick]
//! ```
//!
//! `--quick` runs every step with tiny counts (seconds; its numbers mean
//! nothing): `make test` runs it on the debug build (`infra/local/bench.sh
//! --smoke`), so a change that breaks the bench fails there.
//! `bench functions` prints the template's function binaries, the ones
//! `bench.sh` builds and the cold-start step starts.
//!
//! `bench capacity|webhooks|tenant|logs [--doc docs/benchmarks.md]` (under the
//! emulators, a debug build will do: capacity units and requests do not
//! depend on speed, and the tenant step compares two medians measured side by
//! side) measures only the capacity units per order lifecycle, the cost per
//! webhook event, the 404 medians of "Foreign or missing", or the log bytes
//! per order lifecycle (failing over its target), prints the table and, with
//! `--doc`, rewrites that region. `bench dispatch` does the same for the
//! dispatch throughput (a release build: it measures speed).
//!
//! `bench cost [--doc PATH] [--results PATH]` (under the emulators) measures
//! what the cost model needs and rewrites "Cost per million orders", "Idle
//! cost per month" and "Scale" (the full run does too), with the CPU per
//! request of a previous run's `results.json`. `bench log-run` is the log
//! step's child (`log_bytes::measure_in_child`), whose stdout is the
//! functions' EMF lines: the metric series are counted from it.
//!
//! The full run rewrites every `<!-- bench:… -->` region of the page, each
//! ending with the run's stamp (date and commit), and fails if one is left
//! without it: a table no step writes any more.

mod capacity;
mod cold;
mod cost;
mod cost_inputs;
mod environment;
mod events;
mod life;
mod log_bytes;
mod partner;
mod prices;
mod report;
mod runtime_stub;
mod scale;
mod stats;
mod tenant;
mod throughput;
mod webhooks;

use std::path::PathBuf;
use std::time::Duration;

use local_stack::Stack;
use local_stack::stack::local_warehouses;
use local_stack::template::Template;

use crate::report::{Machine, Results, Size};

const CRITERION: [&str; 3] = ["intake/sample", "intake/50_items", "callback_body/shipped"];

#[derive(Debug)]
struct Args {
    bin_dir: PathBuf,
    criterion_dir: PathBuf,
    doc: PathBuf,
    json: PathBuf,
    quick: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        bin_dir: "target/release".into(),
        criterion_dir: "target/criterion".into(),
        doc: "docs/benchmarks.md".into(),
        json: "target/bench/results.json".into(),
        quick: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bin-dir" => args.bin_dir = value()?.into(),
            "--criterion-dir" => args.criterion_dir = value()?.into(),
            "--doc" => args.doc = value()?.into(),
            "--json" => args.json = value()?.into(),
            "--quick" => args.quick = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// `bench capacity|tenant|webhooks|logs|dispatch [--doc PATH]`: one table alone.
async fn one_table(
    step: &str,
    mut given: impl Iterator<Item = String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let doc = match (given.next().as_deref(), given.next()) {
        (None, _) => None,
        (Some("--doc"), Some(path)) => Some(PathBuf::from(path)),
        _ => return Err(format!("usage: bench {step} [--doc PATH]").into()),
    };
    let stack = Stack::provision(
        &format!("{step}{}", std::process::id()),
        local_warehouses()?,
    )
    .await?;
    let mut missed = None;
    let (region, table) = match step {
        "capacity" => (step, capacity::table(&capacity::measure(&stack).await?)),
        "dispatch" => {
            let counts = Counts::full();
            let dispatch =
                throughput::dispatch(&stack, counts.callbacks, counts.warm_up, PARTNER_DELAY)
                    .await?;
            (step, report::dispatch_table(&dispatch))
        }
        "webhooks" => (step, webhooks::table(&webhooks::measure(&stack).await?)),
        "logs" => {
            let bytes = log_bytes::measure_in_child().await?;
            missed = bytes.check().err();
            (LOG_BYTES, log_bytes::table(&bytes))
        }
        _ => (
            step,
            tenant::table(&tenant::measure(&stack, TENANT_SAMPLES).await?),
        ),
    };
    let machine = Machine::this();
    let commit = match machine.commit.as_str() {
        "unknown" => git_commit(),
        given => given.to_owned(),
    };
    let table = format!("{table}\n_Measured {}, commit `{commit}`._\n", machine.date);
    println!("{table}");
    if let Some(doc) = doc {
        let text = std::fs::read_to_string(&doc)?;
        let text = report::replace_region(&text, region, &table)
            .ok_or_else(|| format!("{}: no region <!-- bench:{region} -->", doc.display()))?;
        std::fs::write(&doc, text)?;
    }
    missed.map_or(Ok(()), |missed| Err(missed.into()))
}

/// The handlers' CPU per request from a throughput run, µs.
struct Cpu {
    intake_us: Option<f64>,
    dispatch_us: Option<f64>,
}

/// Everything the cost model needs that this run has not already measured.
async fn measure_cost(
    stack: &Stack,
    capacity: Vec<capacity::Lifecycle>,
    webhooks: webhooks::WebhookCost,
    cpu: Cpu,
    log: log_bytes::LogBytes,
) -> Result<cost::Measured, Box<dyn std::error::Error>> {
    let order = capacity
        .into_iter()
        .next()
        .ok_or("capacity measured no lifecycle")?;
    Ok(cost::Measured {
        order,
        poll_units: cost_inputs::poll_units(stack).await?,
        webhooks,
        intake_cpu_us: cpu.intake_us.ok_or("the intake run measured no CPU")?,
        dispatch_cpu_us: cpu.dispatch_us.ok_or("the dispatch run measured no CPU")?,
        log,
        alarms: cost_inputs::alarms()?,
    })
}

/// Rewrites the regions `cost`, `idle-cost` and `scale` of `doc`, each
/// ending with `stamp`.
fn write_cost(
    measured: &cost::Measured,
    doc: &std::path::Path,
    stamp: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let prices = prices::Prices::us_east_1();
    let assumptions = cost::Assumptions::default();
    let mut text = std::fs::read_to_string(doc)?;
    for (region, table) in [
        ("cost", cost::table(measured, &prices, &assumptions)),
        (
            "idle-cost",
            cost::idle_table(measured, &prices, &assumptions),
        ),
        ("scale", scale::table(measured, &assumptions)),
    ] {
        let table = format!("{table}\n{stamp}\n");
        println!("{table}");
        text = report::replace_region(&text, region, &table)
            .ok_or_else(|| format!("{}: no region <!-- bench:{region} -->", doc.display()))?;
    }
    std::fs::write(doc, text)?;
    Ok(())
}

/// `bench cost [--doc PATH] [--results PATH]`: the cost tables alone, with
/// the CPU per request of the last `make bench` (its `results.json`).
async fn cost_alone(given: impl Iterator<Item = String>) -> Result<(), Box<dyn std::error::Error>> {
    let (mut doc, mut results) = (
        None,
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("bench/results.json"),
    );
    let mut given = given;
    while let Some(flag) = given.next() {
        let value = given.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--doc" => doc = Some(PathBuf::from(value)),
            "--results" => results = value.into(),
            _ => return Err("usage: bench cost [--doc PATH] [--results PATH]".into()),
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).map_err(|e| {
            format!(
                "{}: {e} (run make bench first, or pass --results)",
                results.display()
            )
        })?)?;
    let cpu = Cpu {
        intake_us: json["intake"][0]["handler"]["cpu_us_per_request"].as_f64(),
        dispatch_us: json["dispatch"]["handler"]["cpu_us_per_request"].as_f64(),
    };
    let stack =
        Stack::provision(&format!("cost{}", std::process::id()), local_warehouses()?).await?;
    let capacity = capacity::measure(&stack).await?;
    let webhooks = webhooks::measure(&stack).await?;
    let logs = log_bytes::measure_in_child().await?;
    let measured = measure_cost(&stack, capacity, webhooks, cpu, logs).await?;
    let machine = Machine::this();
    let stamp = format!(
        "_Measured {}, commit `{}`, CPU from {}._",
        machine.date,
        git_commit(),
        results.display()
    );
    match doc {
        Some(doc) => write_cost(&measured, &doc, &stamp)?,
        None => {
            let (p, a) = (prices::Prices::us_east_1(), cost::Assumptions::default());
            println!(
                "{}\n{}\n{}",
                cost::table(&measured, &p, &a),
                cost::idle_table(&measured, &p, &a),
                scale::table(&measured, &a)
            );
        }
    }
    Ok(())
}
/// The steps that measure one table alone (`bench STEP [--doc PATH]`).
const ONE_TABLE: [&str; 5] = ["capacity", "tenant", "webhooks", "logs", "dispatch"];

/// How long the dispatch runs' partner takes to answer.
const PARTNER_DELAY: Duration = Duration::from_millis(20);

/// The region of "Log bytes per lifecycle" in docs/benchmarks.md.
const LOG_BYTES: &str = "log-bytes";

/// Foreign/missing pairs per request kind in "Foreign or missing".
const TENANT_SAMPLES: usize = 80;

/// The checked-out commit, `+changes` when the tree differs from it.
fn git_commit() -> String {
    let git = |args: &[&str]| std::process::Command::new("git").args(args).output();
    let head = git(&["rev-parse", "--short", "HEAD"])
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |out| String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        );
    let clean = git(&["diff", "--quiet", "HEAD"]).is_ok_and(|out| out.status.success());
    if clean {
        head
    } else {
        format!("{head}+changes")
    }
}

/// How much each step measures.
#[derive(Debug)]
struct Counts {
    /// Cold starts per function.
    starts: usize,
    /// Intake `(concurrency, orders)` levels.
    levels: Vec<(usize, usize)>,
    /// Unmeasured requests of each kind first (`throughput::WARM_UP`).
    warm_up: usize,
    callbacks: usize,
    tenant_samples: usize,
}

impl Counts {
    fn full() -> Self {
        Self {
            starts: 25,
            levels: vec![(1, 1000), (8, 2000), (32, 2000)],
            warm_up: throughput::WARM_UP,
            callbacks: 800,
            tenant_samples: TENANT_SAMPLES,
        }
    }

    /// Every step, with the least that still exercises it.
    fn quick() -> Self {
        Self {
            starts: 1,
            levels: vec![(1, 8), (2, 8)],
            warm_up: 10,
            callbacks: 20,
            tenant_samples: 2,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut given = std::env::args().skip(1).peekable();
    if let Some(step) = given.next_if(|step| ONE_TABLE.contains(&step.as_str())) {
        return one_table(&step, given).await;
    }
    if given.next_if(|step| step == "log-run").is_some() {
        return log_bytes::log_run().await;
    }
    if given.next_if(|step| step == "cost").is_some() {
        return cost_alone(given).await;
    }
    if given.next_if(|step| step == "functions").is_some() {
        for function in Template::project()?.functions()? {
            println!("{}", function.binary);
        }
        return Ok(());
    }
    let args = args()?;
    let counts = if args.quick {
        Counts::quick()
    } else {
        Counts::full()
    };
    let starts = counts.starts;

    let machine = Machine::this();
    let cpu = report::read_criterion(&args.criterion_dir, &CRITERION)?;
    let sizes = Template::project()?
        .functions()?
        .into_iter()
        .map(|function| {
            let path = args.bin_dir.join(&function.binary);
            std::fs::metadata(&path)
                .map(|meta| Size {
                    function: function.binary,
                    bytes: meta.len(),
                })
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let prefix = format!("bench{}", std::process::id());
    eprintln!("bench: cold starts ({starts} per function)");
    let cold_stack = Stack::provision(&format!("{prefix}-cold"), local_warehouses()?).await?;
    let cold_partner = partner::Partner::start(Duration::ZERO).await?;
    let mut cold = Vec::new();
    for function in cold::functions(&cold_stack, &args.bin_dir, &cold_partner, starts).await? {
        let result = cold::measure(&function, starts).await?;
        eprintln!(
            "bench: {}: init p50 {:.1} ms, first invocation p50 {:.1} ms, peak RSS {} KiB",
            result.function,
            result.init_p50_ms,
            result.first_invocation_p50_ms,
            result.peak_rss_kib
        );
        cold.push(result);
    }

    eprintln!("bench: intake throughput");
    let mut stack = Stack::provision(&format!("{prefix}-intake"), local_warehouses()?).await?;
    // As deployed: a warm function reads a caller's key once, then caches it.
    let mut env = adapters::settings::Env::process();
    stack.key_cache = adapters::settings::api_key_cache(&mut env);
    env.finish(())?;
    let intake = throughput::intake(&stack, &counts.levels, counts.warm_up).await?;

    eprintln!("bench: dispatch throughput");
    let stack = Stack::provision(&format!("{prefix}-dispatch"), local_warehouses()?).await?;
    let dispatch =
        throughput::dispatch(&stack, counts.callbacks, counts.warm_up, PARTNER_DELAY).await?;

    eprintln!("bench: capacity units per order lifecycle");
    let stack = Stack::provision(&format!("{prefix}-capacity"), local_warehouses()?).await?;
    let capacity = capacity::measure(&stack).await?;

    eprintln!("bench: cost per webhook event");
    let stack = Stack::provision(&format!("{prefix}-webhooks"), local_warehouses()?).await?;
    let webhooks = webhooks::measure(&stack).await?;

    eprintln!("bench: 404 for another client's order against a missing one");
    let stack = Stack::provision(&format!("{prefix}-tenant"), local_warehouses()?).await?;
    let tenant = tenant::measure(&stack, counts.tenant_samples).await?;

    // In a child process: its stdout is the functions' log (the metric
    // series), and its second lifecycle switches the capacity lines on.
    eprintln!("bench: log bytes per order lifecycle");
    let logs = log_bytes::measure_in_child().await?;
    let missed = logs.check().err();

    let results = Results {
        capacity,
        webhooks,
        tenant,
        machine,
        cold,
        cpu,
        intake,
        dispatch,
        sizes,
        logs,
    };
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&results)?)?;
    results.render_into(&args.doc)?;
    eprintln!("bench: cost per million orders");
    let stack = Stack::provision(&format!("{prefix}-cost"), local_warehouses()?).await?;
    let cpu = Cpu {
        intake_us: results
            .intake
            .first()
            .and_then(|l| l.handler.cpu_us_per_request),
        dispatch_us: results.dispatch.handler.cpu_us_per_request,
    };
    let stamp = results.stamp();
    let measured = measure_cost(
        &stack,
        results.capacity,
        results.webhooks,
        cpu,
        results.logs,
    )
    .await?;
    write_cost(&measured, &args.doc, &stamp)?;
    // Every table of the page is this run's: one left unstamped is a region
    // no step writes any more, and fails the run (and make test's smoke run).
    let written = std::fs::read_to_string(&args.doc)?;
    let stale = report::unstamped(&written, &stamp);
    if !stale.is_empty() {
        return Err(format!(
            "{}: regions not regenerated by this run: {}",
            args.doc.display(),
            stale.join(", ")
        )
        .into());
    }
    eprintln!(
        "bench: wrote {} and {}",
        args.json.display(),
        args.doc.display()
    );
    missed.map_or(Ok(()), |missed| Err(missed.into()))
}
