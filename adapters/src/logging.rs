//! Log set-up for the Lambda functions, read from Lambda's advanced logging
//! controls as `lambda_runtime`'s default subscriber reads them:
//! `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines; the default level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`; per-target levels
//! from `RUST_LOG` (`info,aws_smithy_runtime=warn`).
//!
//! Filtered by target list rather than `EnvFilter`, whose regex engine was
//! ≈ 0.25 MB of every bootstrap (issue 5, docs/benchmarks.md); span and field
//! filters are the only `EnvFilter` syntax lost.

use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber, writing to stdout (CloudWatch); in
/// Lambda with `DYNAMODB_CAPACITY_LINES=1`, the DynamoDB capacity metric
/// lines are printed too (see [`crate::capacity`]).
pub fn init() {
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if capacity_lines(
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        std::env::var(crate::capacity::LINES_VARIABLE)
            .ok()
            .as_deref(),
    ) {
        crate::capacity::print_lines();
    }
    let registry = tracing_subscriber::registry().with(filter(&rust_log, lambda_level.as_deref()));
    // Another subscriber may already be installed (tests): keep it.
    let _ = if json {
        registry.with(json_layer(std::io::stdout)).try_init()
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time();
        registry.with(layer).try_init()
    };
}

/// The JSON lines the functions write under `AWS_LAMBDA_LOG_FORMAT=JSON`,
/// to `writer` (stdout in Lambda; the bench's log bytes per lifecycle
/// measure the same layer). Each line is CloudWatch Logs' bill, so: no time
/// (CloudWatch stamps each line), no target, the event's fields at the top
/// (no `fields` wrapper), and our own spans once (the list, not the
/// innermost again). The runtime's `Lambda runtime invoke` span is left out:
/// its `requestId` and `xrayTraceId` were ≈ 175 bytes of every line, more
/// than the line itself (issue 26); an invocation's own records
/// (`platform.start`, `platform.report`) carry its request id where
/// `SystemLogLevel` keeps them, and every line names its order.
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .without_time()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            !(meta.is_span() && meta.name() == RUNTIME_SPAN)
        }))
}

/// The span `lambda_runtime` opens around each invocation.
const RUNTIME_SPAN: &str = "Lambda runtime invoke";

/// Whether the DynamoDB capacity lines are printed: in Lambda, and only
/// where `DYNAMODB_CAPACITY_LINES=1` asks for them (a line per DynamoDB call
/// was most of an order's log bytes: [`crate::capacity`]).
fn capacity_lines(in_lambda: bool, variable: Option<&str>) -> bool {
    in_lambda && variable == Some("1")
}

/// The SDK's connection-poisoning interceptor logs an ERROR on every
/// retried transient error (a throttle, a 500, a timeout) when the HTTP
/// client gives it no connection to mark, and ours (reqwest,
/// [`crate::https`]) never does: a line per retried attempt that says
/// nothing of the call (1,319 in a 10,000-order soak with AWS faults),
/// while the call itself succeeds or fails with its own error. Off unless
/// `RUST_LOG` names it.
pub const CONNECTION_POISONING: &str = "aws_smithy_runtime::client::http::connection_poisoning";

/// `RUST_LOG`'s per-target levels over a default level: Lambda's, else
/// `RUST_LOG`'s own, else `info`. Unreadable directives count as none.
/// The local stack filters with it too.
pub fn filter(rust_log: &str, lambda_level: Option<&str>) -> Targets {
    let rust_log = rust_log.trim();
    // An empty string would parse as "everything at TRACE".
    let targets: Targets = if rust_log.is_empty() {
        Targets::new()
    } else {
        rust_log.parse().unwrap_or_default()
    };
    let default = lambda_level
        .and_then(level)
        .or(targets.default_level())
        .unwrap_or(LevelFilter::INFO);
    let targets = if rust_log.contains(CONNECTION_POISONING) {
        targets
    } else {
        targets.with_target(CONNECTION_POISONING, LevelFilter::OFF)
    };
    targets.with_default(default)
}

/// A level by name; Lambda's FATAL is tracing's ERROR.
fn level(name: &str) -> Option<LevelFilter> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_json_line_carries_its_fields_and_our_spans_but_not_the_runtimes() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "6f1c2d3e-4b5a-4c7d-8e9f-000000000001",
                xrayTraceId = "Root=1-6750a1b2-3c4d5e6f708192a3b4c5d6e7"
            );
            let _runtime = runtime.enter();
            let erp = tracing::info_span!("erp", key_id = "key_1");
            let _erp = erp.enter();
            tracing::info!(order_number = "mabang-1", "order accepted");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "order accepted");
        assert_eq!(line["order_number"], "mabang-1");
        assert_eq!(
            line["spans"],
            serde_json::json!([{"key_id": "key_1", "name": "erp"}])
        );
        assert!(
            !text.contains("requestId") && !text.contains("Root="),
            "{text}"
        );
    }

    #[test]
    fn capacity_lines_are_printed_only_in_lambda_and_when_asked_for() {
        assert!(!capacity_lines(true, None), "off by default");
        assert!(!capacity_lines(true, Some("0")));
        assert!(capacity_lines(true, Some("1")));
        assert!(!capacity_lines(false, Some("1")), "stdout is the program's");
    }

    #[test]
    fn lambda_levels_and_rust_log_directives_are_understood() {
        assert!(filter("debug", None).would_enable("shared", &Level::DEBUG));
        assert!(!filter("", Some("WARN")).would_enable("shared", &Level::INFO));
        assert!(filter("", Some("FATAL")).would_enable("shared", &Level::ERROR));
        assert!(!filter("", Some("FATAL")).would_enable("shared", &Level::WARN));
        let mixed = filter("info,aws_smithy_runtime=warn", None);
        assert!(mixed.would_enable("shared::intake", &Level::INFO));
        assert!(!mixed.would_enable("aws_smithy_runtime::client", &Level::INFO));
    }

    #[test]
    fn a_level_for_one_target_keeps_the_others_at_the_default() {
        let sdk_debug = filter("aws_smithy_runtime=debug", None);
        assert!(sdk_debug.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(sdk_debug.would_enable("shared::intake", &Level::INFO));
        assert!(sdk_debug.would_enable("shared::intake", &Level::ERROR));
        let lambda_debug = filter("info,aws_smithy_runtime=warn", Some("DEBUG"));
        assert!(lambda_debug.would_enable("shared::intake", &Level::DEBUG));
        assert!(!lambda_debug.would_enable("aws_smithy_runtime::client", &Level::INFO));
    }

    #[test]
    fn the_sdks_connection_poisoning_complaint_is_off_unless_asked_for() {
        for (rust_log, lambda_level) in [("", None), ("debug", None), ("", Some("DEBUG"))] {
            assert!(
                !filter(rust_log, lambda_level).would_enable(CONNECTION_POISONING, &Level::ERROR),
                "{rust_log:?} {lambda_level:?}"
            );
            assert!(
                filter(rust_log, lambda_level).would_enable("aws_smithy_runtime", &Level::ERROR)
            );
        }
        let asked = format!("info,{CONNECTION_POISONING}=error");
        assert!(filter(&asked, None).would_enable(CONNECTION_POISONING, &Level::ERROR));
    }

    #[test]
    fn missing_or_unreadable_directives_mean_info() {
        for directives in ["", "  ", "=loud=", "info,,=x"] {
            let targets = filter(directives, None);
            assert!(
                targets.would_enable("shared", &Level::INFO),
                "{directives:?}"
            );
            assert!(
                !targets.would_enable("shared", &Level::DEBUG),
                "{directives:?}"
            );
        }
        assert!(filter("", Some("LOUD")).would_enable("shared", &Level::INFO));
    }
}
