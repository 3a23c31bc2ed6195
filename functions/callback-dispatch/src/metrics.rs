//! The dispatcher's counts, written by `adapters::emf` (the one EMF writer).
//! Still stamped with the system clock: the dispatcher's steps (being split
//! apart) do not report them as data yet.

use std::time::Duration;

use adapters::emf::Measure;
use shared::ports::{Clock, SystemClock};

const NAMESPACE: &str = "WarehouseCallbacks";

/// One EMF line for a delivery: a count for `outcome` (`Delivered`, `Failed`,
/// `Retried`, `Skipped`) and the partner latency when a request was made.
#[must_use]
pub fn line(outcome: &'static str, latency: Option<Duration>) -> String {
    let mut values = vec![Measure::count(outcome)];
    if let Some(latency) = latency {
        values.push(Measure {
            name: "PartnerLatency",
            unit: "Milliseconds",
            value: u64::try_from(latency.as_millis())
                .unwrap_or(u64::MAX)
                .into(),
        });
    }
    adapters::emf::line(SystemClock.now(), NAMESPACE, &[], &values)
}

/// Prints the EMF line of a circuit-breaker change: `BreakerOpened` (also
/// when a probe failed) or `BreakerClosed`.
pub fn breaker(transition: shared::callback::breaker::Transition) {
    use shared::callback::breaker::Transition;
    let name = match transition {
        Transition::Opened(_) | Transition::Reopened(_) => "BreakerOpened",
        Transition::Closed => "BreakerClosed",
    };
    adapters::emf::print(&line(name, None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_every_metric_it_carries() {
        let line: serde_json::Value =
            serde_json::from_str(&line("Delivered", Some(Duration::from_millis(42)))).unwrap();
        assert_eq!(line["Delivered"], 1);
        assert_eq!(line["PartnerLatency"], 42);
        assert_eq!(
            line["level"], "FATAL",
            "a level no ApplicationLogLevel drops"
        );
        let names: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Delivered", "PartnerLatency"]);
    }
}
