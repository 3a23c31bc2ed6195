//! "Foreign or missing": how long a caller waits for a 404 on another
//! client's order against one on a number nobody has. The store checks the
//! owner on its first read and reads nothing else of a foreign order, so the
//! two should be the same within noise; before that check moved first, a
//! foreign GET took twice as long (7.9 ms against 4.1 ms) and a 60-number
//! poll eight times (104 ms against 12 ms), which let any key tell which
//! numbers exist.

use std::time::{Duration, Instant};

use local_stack::Stack;
use serde::Serialize;
use serde_json::Value;
use shared::domain::Scope;

use crate::events::{SAMPLE_ORDER, api_request, client_key};
use crate::stats::{ms, percentile};

/// Numbers in one `?order_numbers=` poll.
const POLLED: usize = 60;

/// The medians of one kind of request, for a foreign and a missing target.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub request: String,
    pub samples: usize,
    pub foreign_p50_ms: f64,
    pub missing_p50_ms: f64,
}

/// Medians of single-order GETs and of 60-number polls, interleaved.
///
/// # Errors
/// When the stack refuses a request the measurement needs.
pub async fn measure(stack: &Stack, samples: usize) -> Result<Vec<Pair>, String> {
    let owner = client_key(stack).await?;
    let other = stack
        .issue_key(Scope::Client("21".into()), None, false)
        .await
        .map(|issued| issued.key)
        .map_err(|e| format!("issuing a second client key: {e}"))?;
    let api = stack.api().map_err(|e| e.to_string())?;
    let call = |method: &'static str, path: String, body: Option<String>, key: String| {
        let api = api.clone();
        async move {
            let request = api_request(method, &path, body.as_deref(), &key, 0)?;
            let started = Instant::now();
            let status = api(request).await.status().as_u16();
            Ok::<_, String>((started.elapsed(), status))
        }
    };

    let mut numbers = Vec::new();
    for index in 0..POLLED.max(samples) {
        let number = format!("tenant-{index}");
        let mut order: Value = serde_json::from_str(SAMPLE_ORDER).map_err(|e| e.to_string())?;
        order["package"]["order_number"] = Value::String(number.clone());
        let (_, status) = call(
            "POST",
            "/apicenter/api/order".into(),
            Some(order.to_string()),
            owner.clone(),
        )
        .await?;
        if status != 201 {
            return Err(format!("creating {number} answered {status}"));
        }
        numbers.push(number);
    }

    let mut gets = (Vec::new(), Vec::new());
    let mut polls = (Vec::new(), Vec::new());
    for index in 0..samples {
        let foreign = format!("/apicenter/api/order/{}", numbers[index]);
        let missing = format!("/apicenter/api/order/absent-{index}");
        gets.0.push(expect_404(
            call("GET", foreign, None, other.clone()).await?,
        )?);
        gets.1.push(expect_404(
            call("GET", missing, None, other.clone()).await?,
        )?);

        let foreign = format!(
            "/apicenter/api/orders?order_numbers={}",
            numbers[..POLLED].join(",")
        );
        let missing_numbers: Vec<String> =
            (0..POLLED).map(|n| format!("absent-{index}-{n}")).collect();
        let missing = format!(
            "/apicenter/api/orders?order_numbers={}",
            missing_numbers.join(",")
        );
        polls
            .0
            .push(call("GET", foreign, None, other.clone()).await?.0);
        polls
            .1
            .push(call("GET", missing, None, other.clone()).await?.0);
    }
    Ok(vec![
        pair("GET /apicenter/api/order/{n}", &gets),
        pair(
            &format!("GET /apicenter/api/orders?order_numbers= ({POLLED} numbers)"),
            &polls,
        ),
    ])
}

fn expect_404((elapsed, status): (Duration, u16)) -> Result<Duration, String> {
    if status == 404 {
        Ok(elapsed)
    } else {
        Err(format!("expected 404, got {status}"))
    }
}

fn pair(request: &str, (foreign, missing): &(Vec<Duration>, Vec<Duration>)) -> Pair {
    Pair {
        request: request.to_owned(),
        samples: foreign.len(),
        foreign_p50_ms: ms(percentile(foreign, 50.0)),
        missing_p50_ms: ms(percentile(missing, 50.0)),
    }
}

/// The table for docs/benchmarks.md.
#[must_use]
pub fn table(pairs: &[Pair]) -> String {
    let mut table = String::from(
        "| request, by client 21 | pairs | another client's order, p50 | a number nobody has, p50 |\n\
         | --- | ---: | ---: | ---: |\n",
    );
    for pair in pairs {
        table.push_str(&format!(
            "| {} | {} | {:.1} ms | {:.1} ms |\n",
            pair.request, pair.samples, pair.foreign_p50_ms, pair.missing_p50_ms
        ));
    }
    table
}
