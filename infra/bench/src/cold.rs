//! Cold starts: each release `bootstrap` is started, many times, against a
//! [`RuntimeStub`] as Lambda would start it, with its real configuration and
//! the emulators behind it. Measured per start: exec → first
//! `GET …/invocation/next` (init), the first invocation (event handed out →
//! response posted), and the peak RSS (`VmHWM`) after that invocation.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use local_stack::Stack;
use serde::Serialize;

use crate::events::{api_event, api_request, client_key, order_body, sqs_event, warehouse_key};
use crate::runtime_stub::{Outcome, RuntimeStub};
use crate::stats::{ms, percentile};

/// A function's first invocation may take this long at most.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One function as the cold-start benchmark starts it.
pub struct Function {
    pub name: &'static str,
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

/// The environment every function gets from Lambda itself (plus the
/// emulators' endpoints, which stand in for AWS).
fn lambda_env(name: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/20/[$LATEST]bench"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("LANG", "en_US.UTF-8"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_SESSION_TOKEN", "local"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for name in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"] {
        if let Ok(value) = std::env::var(name) {
            env.push((name.to_owned(), value));
        }
    }
    env
}

/// The three functions, configured against `stack`, their first events
/// pointing at orders made for the purpose.
pub async fn functions(
    stack: &Stack,
    bin_dir: &Path,
    partner_url: &str,
    starts: usize,
) -> Result<Vec<Function>, String> {
    let table = stack.orders_table().map_err(|e| e.to_string())?.to_owned();
    let history = stack
        .order_history_table()
        .map_err(|e| e.to_string())?
        .to_owned();
    let queue = stack
        .callback_queue_url()
        .map_err(|e| e.to_string())?
        .to_owned();
    let queue_arn = stack
        .resources
        .queue_arn("CallbackQueue")
        .map_err(|e| e.to_string())?
        .to_owned();
    let dead_letter_queue = stack
        .dead_letter_queue_url()
        .map_err(|e| e.to_string())?
        .to_owned();
    let warehouses = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../local/warehouses.json"),
    )
    .map_err(|e| format!("infra/local/warehouses.json: {e}"))?;

    // What the first invocations work on: an order to read and to report
    // on, and one due callback per dispatcher start (each posts once).
    let keys_table = stack
        .resources
        .table("ApiKeysTable")
        .map_err(|e| e.to_string())?
        .to_owned();
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

    let common = |name: &str| {
        let mut env = lambda_env(name);
        env.push(("ORDERS_TABLE".into(), table.clone()));
        env.push(("ORDER_HISTORY_TABLE".into(), history.clone()));
        env
    };
    let mut intake_env = common("order-intake");
    intake_env.push(("WAREHOUSES".into(), warehouses.clone()));
    intake_env.push(("API_KEYS_TABLE".into(), keys_table.clone()));
    let mut events_env = common("warehouse-events");
    events_env.push(("API_KEYS_TABLE".into(), keys_table));
    let mut dispatch_env = common("callback-dispatch");
    dispatch_env.extend([
        ("WAREHOUSES".into(), warehouses),
        ("CALLBACK_URL".into(), partner_url.to_owned()),
        ("CALLBACK_TOKEN".into(), "bench-partner-token".into()),
        ("CALLBACK_QUEUE_URL".into(), queue.clone()),
        ("CALLBACK_MAX_POSTS".into(), "8".into()),
        ("CALLBACK_DEAD_LETTER_QUEUE_URL".into(), dead_letter_queue),
    ]);

    Ok(vec![
        Function {
            name: "order-intake",
            binary: bin_dir.join("order-intake"),
            env: intake_env,
            event: Box::new(move |i| {
                api_event(
                    "GET",
                    "/apicenter/api/order/cold-read",
                    None,
                    &client,
                    i as u64,
                )
                .to_string()
            }),
        },
        Function {
            name: "warehouse-events",
            binary: bin_dir.join("warehouse-events"),
            env: events_env,
            event: Box::new(move |i| {
                let event = serde_json::json!({
                    "event_id": format!("cold-{i}"),
                    "type": "allocated",
                    // Within the order's life, which began with this run.
                    "occurred_at": shared::record::format_time(chrono::Utc::now()),
                })
                .to_string();
                api_event(
                    "POST",
                    "/apicenter/api/order/cold-events/events",
                    Some(&event),
                    &warehouse,
                    i as u64,
                )
                .to_string()
            }),
        },
        Function {
            name: "callback-dispatch",
            binary: bin_dir.join("callback-dispatch"),
            env: dispatch_env,
            event: Box::new(move |i| {
                sqs_event(&queue_arn, &[format!("cold-callback-{i}")]).to_string()
            }),
        },
    ])
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
        function: function.name.to_owned(),
        starts,
        init_p50_ms: ms(percentile(&init, 50.0)),
        init_p90_ms: ms(percentile(&init, 90.0)),
        first_invocation_p50_ms: ms(percentile(&first, 50.0)),
        first_invocation_p90_ms: ms(percentile(&first, 90.0)),
        peak_rss_kib: rss,
        answer,
    })
}
