//! Log set-up for the Lambda functions, read from Lambda's advanced logging
//! controls as `lambda_runtime`'s default subscriber reads them:
//! `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines; the default level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`; per-target levels
//! from `RUST_LOG` (`info,aws_smithy_runtime=warn`).
//!
//! Filtered by target list rather than `EnvFilter`, whose regex engine was
//! ≈ 0.25 MB of every bootstrap (issue 5, docs/benchmarks.md); span and field
//! filters are the only `EnvFilter` syntax lost.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber, writing to stdout (CloudWatch); in
/// Lambda, the DynamoDB capacity metric lines are printed too.
pub fn init() {
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        crate::capacity::print_lines();
    }
    let registry = tracing_subscriber::registry().with(filter(&rust_log, lambda_level.as_deref()));
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time();
    // Another subscriber may already be installed (tests): keep it.
    let _ = if json {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
}

/// `RUST_LOG`'s per-target levels over a default level: Lambda's, else
/// `RUST_LOG`'s own, else `info`. Unreadable directives count as none.
fn filter(rust_log: &str, lambda_level: Option<&str>) -> Targets {
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
