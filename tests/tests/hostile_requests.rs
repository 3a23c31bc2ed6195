//! Requests no honest client sends: the gateway and the functions answer them
//! with a documented status and never panic or drop the connection.

use std::time::Duration;

use integration_tests::{TestApp, sample_order};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` as is and reads the answer until the server closes.
async fn exchange(base_url: &str, request: &str) -> String {
    let address = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)
        .await
        .expect("the gateway listens");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_clients_host_and_forwarding_headers_neither_panic_nor_reroute() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);

    for (name, value) in [
        ("Host", "a:b"),
        ("Host", "[::1"),
        ("Host", "127.0.0.1:99999"),
        ("Host", "a b"),
        ("Host", "x/apicenter/api/order/base-1?"),
        ("X-Forwarded-Proto", "a b"),
        (
            "X-Forwarded-Proto",
            "http://evil/apicenter/api/order/base-1?",
        ),
    ] {
        let host = if name == "Host" {
            ""
        } else {
            "Host: localhost\r\n"
        };
        let request = format!(
            "GET /apicenter/api/order/mabang-test002 HTTP/1.1\r\n{host}{name}: {value}\r\n\
             Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
            app.erp_key
        );

        let answer = exchange(&app.base_url, &request).await;

        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{name}: {value} → {answer:?}"
        );
        assert!(answer.contains("mabang-test002"), "{name}: {value}");
    }
}

/// The API on a gateway that gives clients `timeout`, and its address.
async fn gateway_with_timeout(app: &TestApp, timeout: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("bound").to_string();
    let api = app.stack.api().expect("the API");
    tokio::spawn(local_stack::gateway::serve_with(listener, api, timeout));
    address
}

/// Whether the server closed the connection within `within` (reads until EOF).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn the_gateway_cuts_off_clients_that_send_nothing_or_trickle() {
    let app = TestApp::spawn().await;
    let address = gateway_with_timeout(&app, Duration::from_millis(500)).await;
    let started = tokio::time::Instant::now();

    let mut idle = TcpStream::connect(&address).await.expect("connects");
    let mut slow_headers = TcpStream::connect(&address).await.expect("connects");
    let mut slow_body = TcpStream::connect(&address).await.expect("connects");
    slow_body
        .write_all(
            format!(
                "POST /apicenter/api/order HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
                app.erp_key
            )
            .as_bytes(),
        )
        .await
        .expect("sent");
    let trickle = tokio::spawn(async move {
        for byte in b"GET /apicenter/api/order/x HTTP/1.1\r\nHost: x\r\nX-Slow: " {
            if slow_headers.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        closed_within(&mut slow_headers, Duration::from_secs(5)).await
    });

    let idle_closed = closed_within(&mut idle, Duration::from_secs(5)).await;
    let body_closed = closed_within(&mut slow_body, Duration::from_secs(5)).await;
    let trickle_closed = trickle.await.expect("the trickling client");

    assert!(idle_closed.is_some(), "an idle connection stayed open");
    assert!(body_closed.is_some(), "a trickled body kept its connection");
    assert!(
        trickle_closed.is_some(),
        "trickled headers kept their connection"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

mod fuzz {
    use std::net::SocketAddr;

    use integration_tests::{TestApp, sample_order};
    use local_stack::gateway::lambda_request;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{Value, json};
    use shared::auth::signature::sign;
    use shared::domain::Scope;

    /// Every status the API documents (docs/openapi.yaml) but 500: input
    /// alone must never make an internal error.
    const DOCUMENTED: [u16; 13] = [
        200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 422, 503,
    ];

    /// The keys a fuzzed request may present.
    struct Keys {
        erp: String,
        wms: String,
        signing: String,
        secret: String,
    }

    #[derive(Debug, Clone)]
    enum Auth {
        None,
        Erp,
        Wms,
        /// The signing key, with a signature over the request (or not).
        Signing {
            good_signature: bool,
        },
        Raw(Vec<u8>),
    }

    #[derive(Debug, Clone)]
    struct Fuzzed {
        method: String,
        path: String,
        auth: Auth,
        /// Sends `Content-Type: application/json` (before the fuzzed headers).
        json: bool,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_-]{0,12}",
            ".{0,16}",
            Just("mabang-test002".to_owned()),
            Just("\u{202e}\u{0}\u{200b}\\ud800".to_owned()),
            Just("9999-12-31T23:59:60-12:00".to_owned()),
            Just("-9223372036854775808".to_owned()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just("mabang-test002".to_owned()),
            "[a-zA-Z0-9._~%-]{0,12}",
            Just("..".to_owned()),
            Just("%2F".to_owned()),
        ];
        let tail = prop_oneof![
            Just(String::new()),
            Just("/cancel".to_owned()),
            Just("/events".to_owned()),
            Just("/callback/retry".to_owned()),
            Just("/personal-data/erase".to_owned()),
            "(/[a-z%0-9]{0,6}){0,3}",
        ];
        let query = prop_oneof![Just(String::new()), "\\?[a-z0-9=&%+]{0,16}"];
        (
            prop_oneof![
                3 => Just("/apicenter/api/order".to_owned()),
                1 => "(/[a-zA-Z0-9%]{0,8}){0,3}",
            ],
            proptest::option::of(segment),
            tail,
            query,
        )
            .prop_map(|(base, number, tail, query)| match number {
                Some(number) => format!("{base}/{number}{tail}{query}"),
                None => format!("{base}{query}"),
            })
    }

    fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
        let name = prop_oneof![
            Just("host".to_owned()),
            Just("content-type".to_owned()),
            Just("x-forwarded-proto".to_owned()),
            Just("x-forwarded-for".to_owned()),
            Just("x-api-key".to_owned()),
            Just("x-signature".to_owned()),
            Just("x-signature-timestamp".to_owned()),
            Just("cookie".to_owned()),
            Just("content-encoding".to_owned()),
            "[a-z-]{1,12}",
        ];
        let value = prop_oneof![
            text().prop_map(String::into_bytes),
            Just(b"application/json".to_vec()),
            Just(b"a b".to_vec()),
            Just(b"[::1".to_vec()),
            Just(vec![b'v', b'1', b'=', b'0', b'0', b',']).prop_map(|v| v.repeat(60)),
            prop::collection::vec(any::<u8>(), 0..24),
        ];
        (name, value)
    }

    fn event_body() -> impl Strategy<Value = Vec<u8>> {
        (
            text(),
            prop::sample::select(vec![
                "allocated",
                "shortage",
                "picked",
                "packed",
                "shipped",
                "handed_over",
                "cancelled",
                "lost",
            ]),
            prop_oneof![Just(chrono::Utc::now().to_rfc3339()), text(),],
            text(),
        )
            .prop_map(|(id, kind, at, extra)| {
                json!({"event_id": id, "type": kind, "occurred_at": at,
                       "tracking_number": extra, "shipping_fee": extra, "weight_g": 0})
                .to_string()
                .into_bytes()
            })
    }

    fn order_body() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![
                "/package/order_number",
                "/items/0/sku",
                "/items/0/unit_price",
                "/centre_code",
                "/client_code",
                "/receiver/country_code",
                "/platform_type",
            ]),
            text(),
        )
            .prop_map(|(pointer, value)| {
                let mut order = sample_order();
                if let Some(slot) = order.pointer_mut(pointer) {
                    *slot = Value::String(value);
                }
                serde_json::to_vec(&order).expect("JSON")
            })
    }

    /// Requests that reach the deeper code: the right key on the right route,
    /// with fuzzed bodies and headers.
    fn routed() -> impl Strategy<Value = Fuzzed> {
        let route = prop_oneof![
            order_body().prop_map(|body| (
                "POST",
                "/apicenter/api/order".to_owned(),
                Auth::Erp,
                body
            )),
            event_body().prop_map(|body| (
                "POST",
                "/apicenter/api/order/mabang-test002/events".to_owned(),
                Auth::Wms,
                body
            )),
            text().prop_map(|reason| (
                "POST",
                "/apicenter/api/order/mabang-test002/cancel".to_owned(),
                Auth::Signing {
                    good_signature: true
                },
                json!({"reason": reason}).to_string().into_bytes()
            )),
            path().prop_map(|path| ("GET", path, Auth::Erp, Vec::new())),
        ];
        (route, prop::collection::vec(header(), 0..3)).prop_map(
            |((method, path, auth, body), headers)| Fuzzed {
                method: method.to_owned(),
                path,
                auth,
                json: true,
                headers,
                body,
            },
        )
    }

    fn request() -> impl Strategy<Value = Fuzzed> {
        prop_oneof![random(), routed()]
    }

    fn random() -> impl Strategy<Value = Fuzzed> {
        let auth = prop_oneof![
            1 => Just(Auth::None),
            3 => Just(Auth::Erp),
            3 => Just(Auth::Wms),
            2 => any::<bool>().prop_map(|good_signature| Auth::Signing { good_signature }),
            1 => prop::collection::vec(any::<u8>(), 0..20).prop_map(Auth::Raw),
        ];
        let body = prop_oneof![
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 0..64),
            event_body(),
            order_body(),
        ];
        (
            prop::sample::select(vec![
                "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO",
            ]),
            path(),
            auth,
            prop::bool::weighted(0.8),
            prop::collection::vec(header(), 0..5),
            body,
        )
            .prop_map(|(method, path, auth, json, headers, body)| Fuzzed {
                method: method.to_owned(),
                path,
                auth,
                json,
                headers,
                body,
            })
    }

    /// The request as the gateway receives it; `None` when it is no HTTP
    /// request at all (hyper refuses those before any gateway sees them).
    fn build(fuzzed: &Fuzzed, keys: &Keys) -> Option<http::request::Parts> {
        let mut builder = http::Request::builder()
            .method(fuzzed.method.as_str())
            .uri(fuzzed.path.as_str());
        if fuzzed.json {
            builder = builder.header("content-type", "application/json");
        }
        // A header hyper would refuse never reaches a gateway: left out.
        for (name, value) in &fuzzed.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                builder = builder.header(name, value);
            }
        }
        let timestamp = chrono::Utc::now().timestamp();
        let bearer = |key: &str| format!("Bearer {key}").into_bytes();
        let auth = match &fuzzed.auth {
            Auth::None => None,
            Auth::Erp => Some(bearer(&keys.erp)),
            Auth::Wms => Some(bearer(&keys.wms)),
            Auth::Signing { good_signature } => {
                let signature = if *good_signature {
                    sign(
                        &keys.secret,
                        timestamp,
                        &fuzzed.method,
                        &fuzzed.path,
                        &fuzzed.body,
                    )
                } else {
                    sign(&keys.secret, timestamp, "GET", "/", b"")
                };
                builder = builder
                    .header("x-signature-timestamp", timestamp)
                    .header("x-signature", signature);
                Some(bearer(&keys.signing))
            }
            Auth::Raw(bytes) => Some(bytes.clone()),
        };
        if let Some(Ok(auth)) = auth.map(|auth| http::HeaderValue::from_bytes(&auth)) {
            builder = builder.header("authorization", auth);
        }
        Some(builder.body(()).ok()?.into_parts().0)
    }

    #[test]
    fn no_request_panics_a_function_or_gets_an_undocumented_status() {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let (app, keys) = runtime.block_on(async {
            let app = TestApp::spawn().await;
            let signing = app
                .stack
                .issue_key(Scope::Client("20".into()), None, true)
                .await
                .expect("a signing key");
            let keys = Keys {
                erp: app.erp_key.clone(),
                wms: app.wms_key.clone(),
                secret: signing.record.signing_secret.clone().expect("a secret"),
                signing: signing.key,
            };
            assert_eq!(app.post_order(&sample_order()).await.status, 201);
            (app, keys)
        });
        let api = app.stack.api().expect("the API");
        let peer: SocketAddr = "203.0.113.9:50000".parse().expect("an address");
        let cases = std::env::var("FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(400);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });

        runner
            .run(&request(), |fuzzed| {
                let Some(parts) = build(&fuzzed, &keys) else {
                    return Ok(());
                };
                let request = lambda_request(&parts, &fuzzed.body, "127.0.0.1:3000", peer, 0)
                    .map_err(|err| TestCaseError::fail(format!("no event: {err}")))?;
                let response = runtime.block_on(api(request));
                let status = response.status().as_u16();
                prop_assert!(
                    DOCUMENTED.contains(&status),
                    "{status} for {fuzzed:?}: {:?}",
                    response.body()
                );
                let body: Value = serde_json::from_slice(response.body().as_ref())
                    .map_err(|err| TestCaseError::fail(format!("not JSON: {err}")))?;
                prop_assert_eq!(&body["code"], &json!(status));
                Ok(())
            })
            .expect("every request gets a documented answer");
        drop(app);
    }
}

/// Orders carry a buyer's address and a label link is a credential for five
/// minutes: no answer may be sniffed by a browser or kept by a cache, and
/// HEAD answers every read route as GET does, without the body.
#[tokio::test]
async fn answers_are_never_sniffed_or_cached_and_head_reads_like_get() {
    let app = TestApp::spawn().await;
    let mut labelled = sample_order();
    labelled["logistics_provider"]["label_base64"] = serde_json::json!("JVBERi0=");
    assert_eq!(app.post_order(&labelled).await.status, 201);
    let erp = format!("Bearer {}", app.erp_key);
    let wms = format!("Bearer {}", app.wms_key);
    let label = "/apicenter/api/order/mabang-test002/label";
    let reads = [
        ("/apicenter/api/order/mabang-test002", &erp, 200),
        ("/apicenter/api/orders?limit=1", &erp, 200),
        (label, &wms, 302),
        ("/apicenter/api/order/nobody-has-this", &erp, 404),
    ];

    for (path, key, status) in reads {
        let headers = [("authorization", key.as_str())];
        let get = app.send(reqwest::Method::GET, path, &headers, None).await;
        let head = app.send(reqwest::Method::HEAD, path, &headers, None).await;

        for (method, reply) in [("GET", &get), ("HEAD", &head)] {
            assert_eq!(reply.status, status, "{method} {path}: {:#}", reply.body);
            assert_eq!(
                reply.headers["x-content-type-options"], "nosniff",
                "{method} {path}"
            );
            assert_eq!(
                reply.headers["cache-control"], "no-store",
                "{method} {path}"
            );
        }
        assert_eq!(
            head.body,
            serde_json::Value::Null,
            "HEAD {path} has no body"
        );
    }
}
