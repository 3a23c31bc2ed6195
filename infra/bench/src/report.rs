//! The results of one `make bench` run, and their rendering into
//! `docs/benchmarks.md`: only the regions between `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->` are rewritten, so the prose around them (targets,
//! analysis) survives every run.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cold::ColdStart;
use crate::throughput::{Dispatch, IntakeLevel};

/// Targets of issue 5. Sizes in MB are decimal (10^6 bytes), the stricter reading.
pub const COLD_START_MS: f64 = 15.0;
pub const SAMPLE_ORDER_CPU_US: f64 = 20.0;
pub const MIN_RATIO: f64 = 0.90;
/// Issue 26's dispatch targets: against raw reqwest, and against the same
/// DynamoDB calls made raw.
pub const DISPATCH_VS_RAW: f64 = 0.60;
pub const DISPATCH_VS_SAME_CALLS: f64 = 0.95;
pub const MAX_BOOTSTRAP_MB: f64 = 8.0;
pub const MAX_PEAK_RSS_MB: f64 = 32.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub rustc: String,
    pub commit: String,
    pub date: String,
}

impl Machine {
    #[must_use]
    pub fn this() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: std::env::var("BENCH_RUSTC").unwrap_or_else(|_| "unknown".into()),
            commit: std::env::var("BENCH_COMMIT").unwrap_or_else(|_| "unknown".into()),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// One criterion benchmark: median and mean time per iteration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cpu {
    pub name: String,
    pub median_us: f64,
    pub mean_us: f64,
}

/// Reads `<criterion>/<name>/new/estimates.json` for each name.
pub fn read_criterion(dir: &Path, names: &[&str]) -> Result<Vec<Cpu>, String> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name).join("new/estimates.json");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: {e} (did `cargo bench` run?)", path.display()))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let estimate = |key: &str| {
                json[key]["point_estimate"]
                    .as_f64()
                    .map(|ns| ns / 1000.0)
                    .ok_or_else(|| format!("{}: no {key}", path.display()))
            };
            Ok(Cpu {
                name: (*name).to_owned(),
                median_us: estimate("median")?,
                mean_us: estimate("mean")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Size {
    pub function: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub cold: Vec<ColdStart>,
    pub cpu: Vec<Cpu>,
    pub intake: Vec<IntakeLevel>,
    pub dispatch: Dispatch,
    pub sizes: Vec<Size>,
    pub capacity: Vec<crate::capacity::Lifecycle>,
    pub webhooks: crate::webhooks::WebhookCost,
    pub tenant: Vec<crate::tenant::Pair>,
    pub logs: crate::log_bytes::LogBytes,
}

fn mb(bytes: f64) -> f64 {
    bytes / 1_000_000.0
}

/// A CPU time in µs, or a dash where it could not be measured.
fn micros(us: Option<f64>) -> String {
    us.map_or_else(|| "—".to_owned(), |us| format!("{us:.0} µs"))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// A row of the verdict table for a rate relative to the raw calls' (at
/// least `goal`); `at` follows the ratio (where it was measured).
fn ratio_row(what: &str, goal: f64, ratio: f64, at: &str) -> String {
    format!(
        "| {what} | ≥ {:.0} % | {:.0} %{at} | {} |\n",
        goal * 100.0,
        ratio * 100.0,
        verdict(ratio >= goal)
    )
}

/// A row of the verdict table for the largest of `values` (value, whose),
/// which must be at most `limit`: (the limit, its unit, the decimals shown).
fn largest_row<'a>(
    what: &str,
    (limit, unit, decimals): (f64, &str, usize),
    values: impl Iterator<Item = (f64, &'a str)>,
) -> String {
    let (value, whose) = values.fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    format!(
        "| {what} | ≤ {limit} {unit} | {value:.decimals$} {unit} ({whose}) | {} |\n",
        verdict(value <= limit)
    )
}

impl Results {
    /// The intake handler's lowest rate relative to `raw`'s over the
    /// concurrencies measured, and that concurrency.
    fn lowest_intake_ratio(&self, raw: impl Fn(&IntakeLevel) -> f64) -> (f64, usize) {
        self.intake
            .iter()
            .map(|l| (l.handler.per_second / raw(l), l.concurrency))
            .fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a })
    }

    fn targets(&self) -> String {
        let mut out = String::from("| Target | Goal | Measured | |\n| --- | --- | --- | --- |\n");
        out += &largest_row(
            "Cold start, exec → first `/next` (median, slowest function)",
            (COLD_START_MS, "ms", 1),
            self.cold
                .iter()
                .map(|c| (c.init_p50_ms, c.function.as_str())),
        );
        if let Some(sample) = self.cpu.iter().find(|c| c.name == "intake/sample") {
            out += &format!(
                "| CPU per order, sample order (median) | ≤ {SAMPLE_ORDER_CPU_US} µs | {:.1} µs | {} |\n",
                sample.median_us,
                verdict(sample.median_us <= SAMPLE_ORDER_CPU_US)
            );
        }
        let (ratio, at) = self.lowest_intake_ratio(|l| l.put.per_second);
        out += &ratio_row(
            "Intake vs raw conditional `PutItem` (lowest over c = 1, 8, 32)",
            MIN_RATIO,
            ratio,
            &format!(" (c = {at})"),
        );
        let (ratio, at) = self.lowest_intake_ratio(|l| l.query_put.per_second);
        out += &ratio_row(
            "Intake vs the same calls raw: `Query` beside two `PutItem`s (lowest)",
            MIN_RATIO,
            ratio,
            &format!(" (c = {at})"),
        );
        let dispatch = self.dispatch.handler.per_second;
        out += &ratio_row(
            "Dispatch vs raw reqwest",
            DISPATCH_VS_RAW,
            dispatch / self.dispatch.raw.per_second,
            "",
        );
        out += &ratio_row(
            "Dispatch vs the two orders-table calls raw: claim `UpdateItem`, reqwest, `UpdateItem`",
            DISPATCH_VS_SAME_CALLS,
            dispatch / self.dispatch.two_calls.per_second,
            "",
        );
        out += &ratio_row(
            "Dispatch vs every call it makes, raw: the two above, history `Query`, ledger `PutItem`",
            DISPATCH_VS_SAME_CALLS,
            dispatch / self.dispatch.same_calls.per_second,
            "",
        );
        #[allow(clippy::cast_precision_loss)]
        let sizes = self
            .sizes
            .iter()
            .map(|s| (mb(s.bytes as f64), s.function.as_str()));
        out += &largest_row(
            "Each `bootstrap` (largest)",
            (MAX_BOOTSTRAP_MB, "MB", 2),
            sizes,
        );
        #[allow(clippy::cast_precision_loss)]
        let rss = self
            .cold
            .iter()
            .map(|c| (mb(c.peak_rss_kib as f64 * 1024.0), c.function.as_str()));
        out += &largest_row(
            "Peak RSS after the first invocation (largest)",
            (MAX_PEAK_RSS_MB, "MB", 1),
            rss,
        );
        out
    }

    fn machine(&self) -> String {
        let m = &self.machine;
        format!(
            "- CPU: {} ({} cores visible), {:.1} GiB RAM, Linux {}\n- {}\n",
            m.cpu, m.cores, m.memory_gib, m.kernel, m.rustc
        )
    }

    fn cold_start(&self) -> String {
        let mut out = String::from(
            "| Function | Starts | exec → first `/next` p50 / p90 | First invocation p50 / p90 | Peak RSS (max) | First answer |\n\
             | --- | ---: | ---: | ---: | ---: | --- |\n",
        );
        for c in &self.cold {
            #[allow(clippy::cast_precision_loss)]
            let rss = mb(c.peak_rss_kib as f64 * 1024.0);
            out += &format!(
                "| {} | {} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} MB | {} |\n",
                c.function,
                c.starts,
                c.init_p50_ms,
                c.init_p90_ms,
                c.first_invocation_p50_ms,
                c.first_invocation_p90_ms,
                rss,
                c.answer
            );
        }
        out
    }

    fn cpu(&self) -> String {
        let mut out = String::from("| Benchmark | Median | Mean |\n| --- | ---: | ---: |\n");
        for c in &self.cpu {
            out += &format!(
                "| `{}` | {:.2} µs | {:.2} µs |\n",
                c.name, c.median_us, c.mean_us
            );
        }
        out
    }

    fn intake(&self) -> String {
        let mut out = String::from(
            "| Concurrency | Orders | Handler orders/s | p50 / p99 | Raw `PutItem` orders/s | p50 / p99 | Handler / `PutItem` | Raw `Query` ∥ 2 `PutItem` orders/s | p50 / p99 | Handler / same calls |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for l in &self.intake {
            out += &format!(
                "| {} | {} | {:.0} | {:.1} / {:.1} ms | {:.0} | {:.1} / {:.1} ms | **{:.0} %** | {:.0} | {:.1} / {:.1} ms | **{:.0} %** |\n",
                l.concurrency,
                l.handler.requests,
                l.handler.per_second,
                l.handler.p50_ms,
                l.handler.p99_ms,
                l.put.per_second,
                l.put.p50_ms,
                l.put.p99_ms,
                l.handler.per_second / l.put.per_second * 100.0,
                l.query_put.per_second,
                l.query_put.p50_ms,
                l.query_put.p99_ms,
                l.handler.per_second / l.query_put.per_second * 100.0,
            );
        }
        out += "\nCPU time of the process per order (the handler with its SDK calls, or the raw \
                SDK calls alone; the emulators' CPU is not counted):\n\n\
                | Concurrency | Handler | Raw `PutItem` | Raw `Query` ∥ 2 `PutItem` | Handler − same calls |\n\
                | ---: | ---: | ---: | ---: | ---: |\n";
        for l in &self.intake {
            let difference = l
                .handler
                .cpu_us_per_request
                .zip(l.query_put.cpu_us_per_request)
                .map(|(handler, raw)| handler - raw);
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                l.concurrency,
                micros(l.handler.cpu_us_per_request),
                micros(l.put.cpu_us_per_request),
                micros(l.query_put.cpu_us_per_request),
                micros(difference),
            );
        }
        let errors: usize = self
            .intake
            .iter()
            .map(|l| l.handler.errors + l.put.errors + l.query_put.errors)
            .sum();
        out += &format!("\nFailed requests: {errors}.\n");
        out
    }

    fn dispatch(&self) -> String {
        dispatch_table(&self.dispatch)
    }

    fn sizes(&self) -> String {
        let mut out = String::from("| Function | `bootstrap` |\n| --- | ---: |\n");
        for s in &self.sizes {
            #[allow(clippy::cast_precision_loss)]
            let size = mb(s.bytes as f64);
            out += &format!("| {} | {:.2} MB ({} bytes) |\n", s.function, size, s.bytes);
        }
        out
    }

    /// What this run measured and when: every region it writes ends with it.
    #[must_use]
    pub fn stamp(&self) -> String {
        format!(
            "_Measured {}, commit `{}`._",
            self.machine.date, self.machine.commit
        )
    }

    /// Rewrites the numbered regions of `doc` in place, each stamped.
    pub fn render_into(&self, doc: &Path) -> Result<(), String> {
        let mut text =
            std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
        for (name, content) in [
            ("machine", self.machine()),
            ("targets", self.targets()),
            ("cold-start", self.cold_start()),
            ("cpu", self.cpu()),
            ("intake", self.intake()),
            ("dispatch", self.dispatch()),
            ("sizes", self.sizes()),
            ("capacity", crate::capacity::table(&self.capacity)),
            ("webhooks", crate::webhooks::table(&self.webhooks)),
            ("tenant", crate::tenant::table(&self.tenant)),
            ("log-bytes", crate::log_bytes::table(&self.logs)),
        ] {
            let content = format!("{content}\n{}\n", self.stamp());
            text = replace_region(&text, name, &content)
                .ok_or_else(|| format!("{}: no region <!-- bench:{name} -->", doc.display()))?;
        }
        std::fs::write(doc, text).map_err(|e| format!("{}: {e}", doc.display()))
    }
}

/// The regions of `text` that do not end with `stamp`: tables a full run
/// did not regenerate (a region added to the page that no step writes).
#[must_use]
pub fn unstamped<'a>(text: &'a str, stamp: &str) -> Vec<&'a str> {
    let mut stale = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!-- bench:") {
        let after = &rest[start + "<!-- bench:".len()..];
        let Some(name_end) = after.find(" -->") else {
            break;
        };
        let name = &after[..name_end];
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            // Prose naming the markers (`<!-- bench:… -->`), not a region.
            rest = after;
            continue;
        }
        let close = format!("<!-- /bench:{name} -->");
        let Some(end) = after.find(&close) else {
            stale.push(name);
            break;
        };
        if !after[..end].trim_end().ends_with(stamp) {
            stale.push(name);
        }
        rest = &after[end + close.len()..];
    }
    stale
}

/// The "Dispatch throughput" table: the handler against each baseline.
#[must_use]
pub fn dispatch_table(d: &Dispatch) -> String {
    let row = |what: &str, run: &crate::stats::Summary| {
        format!(
            "| {what} | {:.0} | {:.1} / {:.1} ms | {} | {} | **{:.0} %** |\n",
            run.per_second,
            run.p50_ms,
            run.p99_ms,
            micros(run.cpu_us_per_request),
            run.errors,
            d.handler.per_second / run.per_second * 100.0,
        )
    };
    let mut out = String::from(
        "| | Callbacks/s | Batch p50 / p99 | CPU per callback | Failed | Handler / this |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    out += &row("Dispatcher handler", &d.handler);
    out += &row("Raw reqwest, same requests", &d.raw);
    out += &row(
        "Raw, the two orders-table calls (claim `UpdateItem`, reqwest, `UpdateItem`)",
        &d.two_calls,
    );
    out += &row(
        "Raw, every call the handler makes (claim, history `Query`, reqwest, ledger `PutItem`, `UpdateItem`)",
        &d.same_calls,
    );
    let s = &d.steps;
    out += &format!(
        "\n{} callbacks in batches of {}; the partner answers after {} ms, so none can beat {:.0} callbacks/s. \
         Mean time of each call in the last baseline (10 at a time): claim {:.1} ms, history `Query` {:.1} ms, \
         post {:.1} ms, ledger `PutItem` {:.1} ms, record {:.1} ms.\n",
        d.callbacks,
        d.batch_size,
        d.partner_delay_ms,
        d.ceiling_per_second,
        s.claim_ms,
        s.history_query_ms,
        s.post_ms,
        s.ledger_put_ms,
        s.record_ms,
    );
    out
}

/// `text` with what lies between the markers of region `name` replaced.
pub fn replace_region(text: &str, name: &str, content: &str) -> Option<String> {
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(format!("{}\n{}{}", &text[..start], content, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_the_run_did_not_rewrite_is_named() {
        let stamp = "_Measured 2026-12-06 20:00 UTC, commit `abc1234`._";
        let doc = format!(
            "regions between `<!-- bench:… -->` markers\n\
             <!-- bench:a -->\nnew\n{stamp}\n<!-- /bench:a -->\nprose\n\
             <!-- bench:b -->\nold\n_Measured 2026-11-23 15:57 UTC, commit `5f8ea71`._\n<!-- /bench:b -->\n\
             <!-- bench:c -->\nnever stamped\n<!-- /bench:c -->\n"
        );
        assert_eq!(unstamped(&doc, stamp), ["b", "c"]);
    }

    #[test]
    fn only_the_region_is_rewritten() {
        let doc = "intro\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nanalysis\n";
        assert_eq!(
            replace_region(doc, "x", "new\n").unwrap(),
            "intro\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nanalysis\n"
        );
        assert!(replace_region(doc, "y", "new\n").is_none());
    }

    #[test]
    fn verdict_rows_show_the_target_the_value_and_where() {
        assert_eq!(
            ratio_row("Intake vs raw", MIN_RATIO, 0.875, " (c = 8)"),
            "| Intake vs raw | ≥ 90 % | 88 % (c = 8) | **missed** |\n"
        );
        assert_eq!(
            ratio_row("Dispatch vs raw", MIN_RATIO, 0.95, ""),
            "| Dispatch vs raw | ≥ 90 % | 95 % | met |\n"
        );
        let sizes = [(3.25, "order-intake"), (7.5, "callback-dispatch")];
        assert_eq!(
            largest_row("Each bootstrap", (8.0, "MB", 2), sizes.into_iter()),
            "| Each bootstrap | ≤ 8 MB | 7.50 MB (callback-dispatch) | met |\n"
        );
    }
}
