//! What the cost model measures itself, beside what the other steps give it
//! (capacity units, webhook events, CPU per request, and the log bytes and
//! metric series of `log_bytes`): the units of one ERP poll and the
//! template's alarms.

use std::path::Path;

use adapters::capacity;
use local_stack::Stack;

use crate::events::{api_request, client_key};

/// Units one poll of a client's changed orders consumes (its four index
/// shards), in the steady state of a poll a minute: nothing changed since
/// the last one. A poll that finds changes also reads them (eventually
/// consistent, ≤ 4 KB each), which the lifecycle's own reads bound.
pub async fn poll_units(stack: &Stack) -> Result<f64, String> {
    let key = client_key(stack).await?;
    let api = stack.api().map_err(|e| e.to_string())?;
    capacity::take();
    let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let request = api_request(
        "GET",
        &format!("/apicenter/api/orders?updated_since={since}"),
        None,
        &key,
        0,
    )?;
    let response = api(request).await;
    if !response.status().is_success() {
        return Err(format!("a poll answered {}", response.status()));
    }
    let measured: f64 = capacity::take()
        .operations
        .iter()
        .filter(|(op, _)| **op != "key_lookup")
        .map(|(_, units)| units)
        .sum();
    // DynamoDB Local reports 0 for a query that finds nothing; DynamoDB
    // bills each at least half a unit (eventually consistent).
    Ok(measured.max(0.5 * f64::from(shared::polling::SHARDS)))
}

/// Standard alarms the template defines.
pub fn alarms() -> Result<usize, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.matches("Type: AWS::CloudWatch::Alarm").count())
}
