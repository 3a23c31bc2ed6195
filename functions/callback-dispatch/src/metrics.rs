//! CloudWatch metrics as Embedded Metric Format log lines: CloudWatch Logs
//! turns them into metrics, so no metrics SDK or extra API call is needed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

const NAMESPACE: &str = "WarehouseCallbacks";

/// One EMF line for a delivery: a count for `outcome` (`Delivered`, `Failed`,
/// `Retried`, `Skipped`) and the partner latency when a request was made.
#[must_use]
pub fn line(outcome: &str, latency: Option<Duration>) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut metrics = vec![json!({"Name": outcome, "Unit": "Count"})];
    let mut line = json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [],
            }],
        },
        "level": shared::emf::LEVEL,
        outcome: 1,
    });
    if let Some(latency) = latency {
        metrics.push(json!({"Name": "PartnerLatency", "Unit": "Milliseconds"}));
        line["PartnerLatency"] = json!(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
    }
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics);
    line.to_string()
}

/// Prints the EMF line of a circuit-breaker change: `BreakerOpened` (also
/// when a probe failed) or `BreakerClosed`.
pub fn breaker(transition: shared::callback::breaker::Transition) {
    use shared::callback::breaker::Transition;
    let name = match transition {
        Transition::Opened(_) | Transition::Reopened(_) => "BreakerOpened",
        Transition::Closed => "BreakerClosed",
    };
    println!("{}", line(name, None));
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
