//! Cold starts: each release `bootstrap` is started, many times, against a
//! [`RuntimeStub`] as Lambda would start it, with its real configuration and
//! the emulators behind it. Measured per start: exec → first
//! `GET …/invocation/next` (init), the first invocation (event handed out →
//! response posted), and the peak RSS (`VmHWM`) after that invocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use local_stack::Stack;
use local_stack::template::Template;
use serde::Serialize;

use crate::environment;
use crate::events::{
    api_event, api_request, client_key, order_body, schedule_event, sqs_event, stream_insert_event,
    warehouse_key,
};
use crate::partner::Partner;
use crate::runtime_stub::{Outcome, RuntimeStub};
use crate::stats::{ms, percentile};

/// A function's first invocation may take this long at most.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One function as the cold-start benchmark starts it.
pub struct Function {
    pub name: String,
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
    /// The first event of start `i`.
    pub event: Box<dyn Fn(usize) -> String + Send + Sync>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("binary", &self.binary)
            .finish_non_exhaustive()
    }
}

/// The first events of an HTTP function: `method path` with the body of
/// start `i`, signed by `key`.
fn api_events(
    method: &'static str,
    path: &'static str,
    key: &str,
    body: impl Fn(usize) -> Option<String> + Send + Sync + 'static,
) -> Box<dyn Fn(usize) -> String + Send + Sync> {
    let key = key.to_owned();
    Box::new(move |i| api_event(method, path, body(i).as_deref(), &key, i as u64).to_string())
}

/// The measurements of one function.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub function: String,
    pub starts: usize,
    pub init_p50_ms: f64,
    pub init_p90_ms: f64,
    pub first_invocation_p50_ms: f64,
    pub first_invocation_p90_ms: f64,
    /// The largest `VmHWM` over the starts, in KiB.
    pub peak_rss_kib: u64,
    /// What the first invocation answered (status code or error), for the
    /// reader to see that the functions did real work.
    pub answer: String,
}

/// Every function of the template, configured against `stack` as deployed
/// (its environment from the template, `crate::environment`), its first
/// events pointing at orders made for the purpose. A function the bench has
/// no first event for is an error: the bench grows with the template.
pub async fn functions(
    stack: &Stack,
    bin_dir: &Path,
    partner: &Partner,
    starts: usize,
) -> Result<Vec<Function>, String> {
    let template = Template::project().map_err(|e| e.to_string())?;
    let queue_arn = stack
        .resources
        .queue_arn("CallbackQueue")
        .map_err(|e| e.to_string())?
        .to_owned();
    let warehouses = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../local/warehouses.json"),
    )
    .map_err(|e| format!("infra/local/warehouses.json: {e}"))?;
    // The parameters a deployment sets: the partner, its credentials'
    // secret (made on the emulator, holding a static token), the warehouses.
    let settings = partner.callback_settings();
    let secret = stack
        .partner_secret(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let parameters = BTreeMap::from([
        ("CallbackUrl", settings.url.clone()),
        ("CallbackTokenUrl", partner.token_url()),
        ("CallbackTokenSecretName", secret),
        ("WarehouseConfig", warehouses),
    ]);

    // What the first invocations work on: an order to read and to report
    // on, and one due callback per dispatcher start (each posts once).
    let client = client_key(stack).await?;
    let warehouse = warehouse_key(stack).await?;
    let api = stack.api().map_err(|e| e.to_string())?;
    let mut numbers = vec!["cold-read".to_owned(), "cold-events".to_owned()];
    numbers.extend((0..=starts).map(|i| format!("cold-callback-{i}")));
    for (index, number) in numbers.iter().enumerate() {
        let process_type = if number.starts_with("cold-callback") {
            2
        } else {
            1
        };
        let body = order_body(number, process_type);
        let request = api_request(
            "POST",
            "/apicenter/api/order",
            Some(&body),
            &client,
            index as u64,
        )?;
        let status = api(request).await.status();
        if status != 201 {
            return Err(format!("creating {number} answered {status}"));
        }
    }

    // The webhook fan-out's first record: the write that created cold-read.
    let created = adapters::sdk::read_item(
        &stack.dynamodb,
        stack.orders_table().map_err(|e| e.to_string())?,
        "order_number",
        "cold-read".to_owned(),
    )
    .send()
    .await
    .map_err(|e| e.to_string())?
    .item
    .ok_or("cold-read is not stored")?;
    let stream_event = stream_insert_event(&created).to_string();
    let delivery_queue_arn = stack
        .resources
        .queue_arn("WebhookDeliveryQueue")
        .map_err(|e| e.to_string())?
        .to_owned();

    let mut functions = Vec::new();
    for spec in template.functions().map_err(|e| e.to_string())? {
        let event: Box<dyn Fn(usize) -> String + Send + Sync> = match spec.binary.as_str() {
            "order-intake" => {
                api_events("GET", "/apicenter/api/order/cold-read", &client, |_| None)
            }
            "warehouse-events" => {
                let path = "/apicenter/api/order/cold-events/events";
                api_events("POST", path, &warehouse, |i| {
                    let event = serde_json::json!({
                        "event_id": format!("cold-{i}"),
                        "type": "allocated",
                        // Within the order's life, which began with this run.
                        "occurred_at": shared::record::format_time(chrono::Utc::now()),
                    });
                    Some(event.to_string())
                })
            }
            "callback-dispatch" => {
                let queue_arn = queue_arn.clone();
                Box::new(move |i| {
                    sqs_event(&queue_arn, &[format!("cold-callback-{i}")]).to_string()
                })
            }
            // Its hourly schedule: nothing is due on a fresh stack, so the
            // first invocation is the query that finds so.
            "personal-data-sweep" => Box::new(|_| schedule_event().to_string()),
            // The client's endpoints: a query (none on a fresh stack).
            "webhook-api" => api_events("GET", "/apicenter/api/webhooks", &client, |_| None),
            // An order created: its event logged, the client's endpoints
            // queried (none, so nothing is queued).
            "webhook-fanout" => {
                let stream_event = stream_event.clone();
                Box::new(move |_| stream_event.clone())
            }
            // A delivery whose endpoint was deleted: the endpoint's read,
            // then the message is dropped (no post: the bench has no
            // endpoint a deployed dispatcher may reach).
            "webhook-dispatch" => {
                let queue_arn = delivery_queue_arn.clone();
                Box::new(move |i| {
                    let ticket = serde_json::json!({
                        "client_code": "20", "endpoint_id": "ep_00000000000000000000",
                        "entry": format!("1795000000000#evt_cold{i}"),
                        "event_type": "order.accepted",
                    });
                    let mut event = sqs_event(&queue_arn, &[format!("cold-hook-{i}")]);
                    event["Records"][0]["body"] = serde_json::json!(ticket.to_string());
                    event.to_string()
                })
            }
            other => {
                return Err(format!(
                    "the template's function {other} has no first event in the cold-start bench \
                     (infra/bench/src/cold.rs)"
                ));
            }
        };
        functions.push(Function {
            env: environment::of(&spec, &template, stack, &parameters)?,
            binary: bin_dir.join(&spec.binary),
            name: spec.binary,
            event,
        });
    }
    Ok(functions)
}

/// One start: (init, first invocation, peak RSS in KiB, answer).
async fn start_once(
    function: &Function,
    index: usize,
) -> Result<(Duration, Duration, u64, String), String> {
    let stub = RuntimeStub::start((function.event)(index))
        .await
        .map_err(|e| format!("runtime stub: {e}"))?;
    let mut command = tokio::process::Command::new(&function.binary);
    command
        .env_clear()
        .envs(function.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", stub.address.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let exec = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", function.binary.display()))?;
    let pid = child.id().ok_or("the child has no pid")?;
    let finished = tokio::select! {
        finished = tokio::time::timeout(START_TIMEOUT, stub.finished()) => finished,
        status = child.wait() => {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use tokio::io::AsyncReadExt as _;
                let _ = pipe.read_to_string(&mut stderr).await;
            }
            return Err(format!("{} exited ({status:?}) before answering: {stderr}", function.name));
        }
    };
    let rss = peak_rss_kib(pid);
    // Our own child, by its handle.
    let _ = child.start_kill();
    let _ = child.wait().await;
    let (first_next, answered, outcome) =
        finished.map_err(|_| format!("{}: no answer within {START_TIMEOUT:?}", function.name))?;
    let first_next = first_next.ok_or("answered without asking for work")?;
    let answer = match outcome {
        Outcome::Response(body) => describe(&body),
        Outcome::Error(body) => return Err(format!("{}: invocation error {body}", function.name)),
        Outcome::InitError(body) => return Err(format!("{}: init error {body}", function.name)),
    };
    Ok((first_next - exec, answered - first_next, rss?, answer))
}

/// `statusCode 200` for an HTTP response; the body itself otherwise.
fn describe(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match json.get("statusCode") {
        Some(code) => format!("HTTP {code}"),
        None => body.chars().take(80).collect(),
    }
}

fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM".to_owned())
}

/// Starts `function` once to warm the page cache (not counted), then `starts`
/// times, one after another.
pub async fn measure(function: &Function, starts: usize) -> Result<ColdStart, String> {
    start_once(function, starts).await?;
    let mut init = Vec::with_capacity(starts);
    let mut first = Vec::with_capacity(starts);
    let mut rss = 0;
    let mut answer = String::new();
    for index in 0..starts {
        let (i, f, r, a) = start_once(function, index).await?;
        init.push(i);
        first.push(f);
        rss = rss.max(r);
        if index == 0 {
            answer = a;
        }
    }
    Ok(ColdStart {
        function: function.name.clone(),
        starts,
        init_p50_ms: ms(percentile(&init, 50.0)),
        init_p90_ms: ms(percentile(&init, 90.0)),
        first_invocation_p50_ms: ms(percentile(&first, 50.0)),
        first_invocation_p90_ms: ms(percentile(&first, 90.0)),
        peak_rss_kib: rss,
        answer,
    })
}
