//! Percentiles over samples, the CPU time this process spends, and a driver
//! that runs N requests at a fixed concurrency on real tasks (so the work
//! spreads over every core, as it would over concurrent Lambda instances
//! sharing this box).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The nearest-rank percentile `p` (0–100) of `samples`; zero when empty.
#[must_use]
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    // Nearest rank: the smallest value with at least p % of samples at or below it.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds as a float, for reports.
#[must_use]
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// CPU time spent so far by every live thread of this process (the
/// emulators run in their own): what a Lambda instance would spend running
/// the same handler and SDK calls. `None` where the kernel keeps no
/// per-thread scheduler statistics.
#[must_use]
pub fn process_cpu() -> Option<Duration> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        // A thread that ended since the listing has nothing left to count.
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Runs `work`, adding the CPU time this process spent on it to `run`.
pub async fn measuring_cpu<F: Future<Output = Run>>(work: F) -> Run {
    let before = process_cpu();
    let mut run = work.await;
    run.cpu = before.zip(process_cpu()).map(|(b, a)| a.saturating_sub(b));
    run
}

/// One measured run: how long it took, how long each request took, and the
/// CPU time the process spent on it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub wall: Duration,
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub cpu: Option<Duration>,
}

impl Run {
    /// Adds another run of the same kind (runs are interleaved with the
    /// baseline's to share the box's noise; their sums are what counts).
    pub fn absorb(&mut self, other: Self) {
        let first = self.latencies.is_empty();
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.cpu = match (first, self.cpu, other.cpu) {
            (true, _, cpu) => cpu,
            (false, Some(a), Some(b)) => Some(a + b),
            (false, _, _) => None,
        };
    }

    #[must_use]
    pub fn summary(&self) -> Summary {
        #[allow(clippy::cast_precision_loss)]
        let per_second = self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9);
        #[allow(clippy::cast_precision_loss)]
        let cpu_us_per_request = self
            .cpu
            .filter(|_| !self.latencies.is_empty())
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.latencies.len() as f64);
        Summary {
            requests: self.latencies.len(),
            errors: self.errors,
            per_second,
            p50_ms: ms(percentile(&self.latencies, 50.0)),
            p99_ms: ms(percentile(&self.latencies, 99.0)),
            cpu_us_per_request,
        }
    }
}

/// What the report shows of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// This process's CPU time per request, in µs.
    pub cpu_us_per_request: Option<f64>,
}

/// Runs `call(0..count)` with `concurrency` workers, each its own task.
/// `call` answers whether the request did what it should.
pub async fn drive<F, Fut>(count: usize, concurrency: usize, call: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    measuring_cpu(drive_workers(count, concurrency, call)).await
}

async fn drive_workers<F, Fut>(count: usize, concurrency: usize, call: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let call = Arc::clone(&call);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let began = Instant::now();
                    let ok = call(index).await;
                    latencies.push(began.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run::default();
    for worker in workers {
        // A panicking worker is a bug in the harness; let it show.
        let (latencies, errors) = worker.await.expect("a benchmark worker panicked");
        run.latencies.extend(latencies);
        run.errors += errors;
    }
    run.wall = started.elapsed();
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(5));
        assert_eq!(percentile(&samples, 90.0), Duration::from_millis(9));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(10));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn process_cpu_counts_work_done_on_another_thread() {
        let before = process_cpu().expect("/proc/self/task/*/schedstat is readable");
        let (done, finished) = std::sync::mpsc::channel();
        let (exit, may_exit) = std::sync::mpsc::channel::<()>();
        let spinner = std::thread::spawn(move || {
            // Spins for 50 ms of this thread's own CPU time, not wall time: on
            // a loaded box 50 ms of wall time may be far less CPU.
            let own_cpu = || {
                std::fs::read_to_string("/proc/thread-self/schedstat")
                    .ok()
                    .and_then(|line| line.split_whitespace().next()?.parse::<u64>().ok())
                    .map_or(Duration::ZERO, Duration::from_nanos)
            };
            let mut x = 0u64;
            while own_cpu() < Duration::from_millis(50) {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            done.send(()).unwrap();
            // Still alive when measured: an ended thread's time leaves the listing.
            may_exit.recv().ok();
        });
        finished.recv().unwrap();
        let spent = process_cpu().unwrap().saturating_sub(before);
        exit.send(()).unwrap();
        spinner.join().unwrap();
        assert!(spent >= Duration::from_millis(40), "{spent:?}");
    }

    #[test]
    fn absorbed_runs_add_their_cpu() {
        let run = |ms| Run {
            wall: Duration::from_millis(ms),
            latencies: vec![Duration::from_millis(ms)],
            errors: 0,
            cpu: Some(Duration::from_millis(ms)),
        };
        let mut total = Run::default();
        total.absorb(run(2));
        total.absorb(run(3));
        assert_eq!(total.cpu, Some(Duration::from_millis(5)));
        let summary = total.summary();
        assert!((summary.cpu_us_per_request.unwrap() - 2500.0).abs() < 1e-6);
    }
}
