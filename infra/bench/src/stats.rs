//! Percentiles over samples, and a driver that runs N requests at a fixed
//! concurrency on real tasks (so the work spreads over every core, as it
//! would over concurrent Lambda instances sharing this box).

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

/// One measured run: how long it took and how long each request took.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub wall: Duration,
    pub latencies: Vec<Duration>,
    pub errors: usize,
}

impl Run {
    /// Adds another run of the same kind (runs are interleaved with the
    /// baseline's to share the box's noise; their sums are what counts).
    pub fn absorb(&mut self, other: Self) {
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    #[must_use]
    pub fn summary(&self) -> Summary {
        #[allow(clippy::cast_precision_loss)]
        let per_second = self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9);
        Summary {
            requests: self.latencies.len(),
            errors: self.errors,
            per_second,
            p50_ms: ms(percentile(&self.latencies, 50.0)),
            p99_ms: ms(percentile(&self.latencies, 99.0)),
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
}

/// Runs `call(0..count)` with `concurrency` workers, each its own task.
/// `call` answers whether the request did what it should.
pub async fn drive<F, Fut>(count: usize, concurrency: usize, call: F) -> Run
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
}
