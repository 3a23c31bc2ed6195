//! Intake metrics as CloudWatch Embedded Metric Format lines (as the
//! dispatcher writes its own): printed to stdout, turned into metrics by
//! CloudWatch Logs.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// The namespace of the order API's metrics.
pub const NAMESPACE: &str = "WarehouseOrders";
/// Counts creates refused because another client holds the order number.
pub const COLLISION: &str = "OrderNumberCollision";

/// One EMF line counting an order-number collision between clients.
#[must_use]
pub fn collision_line() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [{"Name": COLLISION, "Unit": "Count"}],
            }],
        },
        "level": crate::emf::LEVEL,
        COLLISION: 1,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collision_line_declares_its_count() {
        let line: serde_json::Value = serde_json::from_str(&collision_line()).unwrap();
        assert_eq!(line[COLLISION], 1);
        assert_eq!(
            line["level"], "FATAL",
            "a level no ApplicationLogLevel drops"
        );
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            COLLISION
        );
    }
}
