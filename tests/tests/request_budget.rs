//! No request costs more than its size: for every route, the largest body or
//! URL the gateway passes, in the shapes that cost a reader the most, is
//! answered with a 4xx within a CPU and memory budget, and the answer is small.
//!
//! The function is called in-process, with the very event API Gateway would
//! send (`local_stack::gateway::lambda_request`), so the counting allocator
//! below sees what the handler allocates beyond the event it was given: what a
//! 128 MB Lambda has to spare (docs/benchmarks.md, "Hostile input").

use std::net::SocketAddr;
use std::time::Duration;

use integration_tests::{TestApp, sample_order};
use peak_alloc::PeakAlloc;
use shapes::SHAPES;
use shared::limits::MAX_BODY_BYTES;

/// Counts what is allocated, and the most at once since the last reset.
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The limits every answer must keep (docs/benchmarks.md repeats them).
const MAX_CPU: Duration = Duration::from_secs(1);
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const MAX_GROWTH_BYTES: usize = 32 * 1024 * 1024;

/// The CPU time this process has used so far (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // Linux reports CPU time in USER_HZ, 100 per second on every platform it runs on.
    Duration::from_millis(ticks * 10)
}

/// Bodies of `size` bytes that cost a JSON reader the most, each a valid
/// JSON object (so it reaches the reader) unless the shape says otherwise.
mod shapes {
    /// A worst shape of body, as the client sends it.
    #[derive(Debug, Clone, Copy)]
    pub enum Shape {
        /// `"items": [0, 0, …]`
        ScalarArray,
        /// `"items": [{}, {}, …]`
        EmptyObjects,
        /// `"items": [[[[…]]]]`
        DeepArrays,
        /// `{"items": {"a": {"a": …}}}`
        DeepObjects,
        /// `{"k0": 0, "k1": 0, …}`
        ManyKeys,
        /// `{"desc": "xxxx…"}`
        LongString,
        /// `"items": [{"sku": 1, "qty": "x", …}, …]`: a problem in every field
        WrongEverywhere,
        /// `"items": [123456…789]`: one number of millions of digits
        LongNumber,
    }

    pub const SHAPES: [Shape; 8] = [
        Shape::ScalarArray,
        Shape::EmptyObjects,
        Shape::DeepArrays,
        Shape::DeepObjects,
        Shape::ManyKeys,
        Shape::LongString,
        Shape::WrongEverywhere,
        Shape::LongNumber,
    ];

    impl Shape {
        /// A body of about `size` bytes in this shape.
        pub fn body(self, size: usize) -> Vec<u8> {
            let head = r#"{"platform_type":"temu","items":"#;
            let room = size - head.len() - 2;
            let repeat = |unit: &str, last: &str| {
                let mut text = String::with_capacity(size);
                text.push_str(head);
                text.push('[');
                for _ in 0..(room - 2 - last.len()) / unit.len() {
                    text.push_str(unit);
                }
                text.push_str(last);
                text.push_str("]}");
                text
            };
            let text = match self {
                Shape::ScalarArray => repeat("0,", "0"),
                Shape::EmptyObjects => repeat("{},", "{}"),
                Shape::WrongEverywhere => repeat(
                    r#"{"sku":1,"qty":"x","unit_price":[],"currency":{}},"#,
                    "{}",
                ),
                Shape::LongNumber => repeat("1", "1"),
                Shape::DeepArrays => {
                    let depth = room / 2;
                    format!("{head}{}{}}}", "[".repeat(depth), "]".repeat(depth))
                }
                Shape::DeepObjects => {
                    let depth = room / 7;
                    format!(
                        r#"{head}{}1{}}}"#,
                        r#"{"a":"#.repeat(depth),
                        "}".repeat(depth)
                    )
                }
                Shape::ManyKeys => {
                    let mut text = String::from("{");
                    let mut index = 0;
                    while text.len() < size - 16 {
                        text.push_str(&format!(r#""k{index}":0,"#));
                        index += 1;
                    }
                    text.push_str(r#""end":0}"#);
                    text
                }
                Shape::LongString => {
                    format!(r#"{{"desc":"{}"}}"#, "x".repeat(size - 12))
                }
            };
            text.into_bytes()
        }
    }
}

/// What one answer cost.
#[derive(Debug)]
struct Budget {
    status: u16,
    answer_bytes: usize,
    cpu: Duration,
    growth_bytes: usize,
}

/// Calls the API with one request and measures it.
async fn measure(
    app: &TestApp,
    method: &str,
    path_and_query: &str,
    key: &str,
    body: Vec<u8>,
) -> Budget {
    let api = app.stack.api().expect("the API");
    let (parts, ()) = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(())
        .expect("a request")
        .into_parts();
    let peer: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let request = local_stack::gateway::lambda_request(&parts, &body, "localhost", peer, 1)
        .expect("an event lambda_http reads");
    drop(body);

    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let cpu_before = cpu_time();
    let response = api(request).await;
    let cpu = cpu_time().saturating_sub(cpu_before);
    let growth_bytes = ALLOCATOR.peak_usage().saturating_sub(before);
    Budget {
        status: response.status().as_u16(),
        answer_bytes: response.body().len(),
        cpu,
        growth_bytes,
    }
}

/// A request that reads what it was sent must refuse these with a 4xx; one
/// that ignores its body (a GET) must only stay within budget.
fn check(route: &str, shape: &str, budget: &Budget) {
    // The figures docs/benchmarks.md quotes (`--no-capture` shows them).
    eprintln!(
        "{route} | {shape} | {} | {} ms | {} KiB | {} bytes",
        budget.status,
        budget.cpu.as_millis(),
        budget.growth_bytes / 1024,
        budget.answer_bytes
    );
    let refused = (400..500).contains(&budget.status);
    let ignored = route.starts_with("GET") && budget.status < 500;
    assert!(refused || ignored, "{route} with {shape}: {budget:?}");
    assert!(budget.cpu <= MAX_CPU, "{route} with {shape}: {budget:?}");
    assert!(
        budget.answer_bytes < MAX_ANSWER_BYTES,
        "{route} with {shape}: {budget:?}"
    );
    assert!(
        budget.growth_bytes < MAX_GROWTH_BYTES,
        "{route} with {shape}: {budget:?}"
    );
}

#[tokio::test]
async fn every_route_answers_the_costliest_bodies_within_budget() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let number = sample_order()["package"]["order_number"]
        .as_str()
        .expect("a number")
        .to_owned();
    let routes = [
        ("POST", "/apicenter/api/order".to_owned(), &app.erp_key),
        (
            "POST",
            format!("/apicenter/api/order/{number}/cancel"),
            &app.erp_key,
        ),
        (
            "POST",
            format!("/apicenter/api/order/{number}/callback/retry"),
            &app.erp_key,
        ),
        (
            "POST",
            format!("/apicenter/api/order/{number}/callback/fields"),
            &app.erp_key,
        ),
        (
            "POST",
            format!("/apicenter/api/order/{number}/events"),
            &app.wms_key,
        ),
        (
            "GET",
            format!("/apicenter/api/order/{number}"),
            &app.erp_key,
        ),
        (
            "GET",
            format!("/apicenter/api/order/{number}/label"),
            &app.wms_key,
        ),
        ("GET", "/apicenter/api/orders".to_owned(), &app.erp_key),
    ];
    for (method, path, key) in &routes {
        for shape in SHAPES {
            let budget = measure(&app, method, path, key, shape.body(MAX_BODY_BYTES)).await;
            check(&format!("{method} {path}"), &format!("{shape:?}"), &budget);
        }
    }
}

/// API Gateway passes a request line and headers of up to 10,240 bytes; the
/// lists in a query are read as cheaply as the bodies are.
#[tokio::test]
async fn every_query_list_answers_within_budget_however_long() {
    let app = TestApp::spawn().await;
    let long = |unit: &str| unit.repeat(60 * 1024 / unit.len());
    let queries = [
        format!("status={}", long("x,")),
        format!("status={}", long("packed,")),
        format!("order_numbers={}", long("n,")),
        format!("order_numbers={}", long(",")),
        long("a=1&"),
        (0..6_000).map(|i| format!("p{i}=&")).collect::<String>(),
        format!("limit={}", long("9")),
        format!("cursor={}", long("zz")),
        format!("updated_since={}", long("2")),
        format!("{}=1", long("%00")),
    ];
    for query in &queries {
        let path = format!("/apicenter/api/orders?{query}");
        let budget = measure(&app, "GET", &path, &app.erp_key, Vec::new()).await;
        check(
            "GET /apicenter/api/orders",
            &query[..20.min(query.len())],
            &budget,
        );
    }
    let long_number = format!("/apicenter/api/order/{}", long("9"));
    for (route, key) in [
        (long_number.clone(), &app.erp_key),
        (format!("{long_number}/label"), &app.wms_key),
    ] {
        let budget = measure(&app, "GET", &route, key, Vec::new()).await;
        check("GET /apicenter/api/order/{long}", "a long number", &budget);
        // What a 404 says of the number it could not find is clipped.
        assert!(budget.answer_bytes < 1024, "{budget:?}");
    }
}
