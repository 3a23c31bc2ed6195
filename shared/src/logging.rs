//! Log set-up for the Lambda functions, read from Lambda's advanced logging
//! controls as `lambda_runtime`'s default subscriber reads them:
//! `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines, the level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` (`info,aws_smithy_runtime=warn`
//! style: a default level and per-target levels), else `info`.
//!
//! Filtered by target list rather than `EnvFilter`, whose regex engine was
//! ≈ 0.25 MB of every bootstrap (issue 5, docs/benchmarks.md); span and field
//! filters are the only `EnvFilter` syntax lost.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber, writing to stdout (CloudWatch).
pub fn init() {
    let directives = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter(&directives));
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

/// The filter for `directives`; `info` when they are empty or unreadable.
fn filter(directives: &str) -> Targets {
    // Lambda's levels include FATAL, which tracing calls ERROR.
    let directives = directives
        .trim()
        .replace("FATAL", "ERROR")
        .replace("fatal", "error");
    match directives.parse::<Targets>() {
        Ok(targets) if !directives.is_empty() => targets,
        _ => Targets::new().with_default(LevelFilter::INFO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn lambda_levels_and_rust_log_directives_are_understood() {
        assert!(filter("DEBUG").would_enable("shared", &Level::DEBUG));
        assert!(!filter("WARN").would_enable("shared", &Level::INFO));
        assert!(filter("FATAL").would_enable("shared", &Level::ERROR));
        assert!(!filter("FATAL").would_enable("shared", &Level::WARN));
        let mixed = filter("info,aws_smithy_runtime=warn");
        assert!(mixed.would_enable("shared::intake", &Level::INFO));
        assert!(!mixed.would_enable("aws_smithy_runtime::client", &Level::INFO));
    }

    #[test]
    fn missing_or_unreadable_directives_mean_info() {
        for directives in ["", "  ", "=loud=", "info,,=x"] {
            let targets = filter(directives);
            assert!(
                targets.would_enable("shared", &Level::INFO),
                "{directives:?}"
            );
            assert!(
                !targets.would_enable("shared", &Level::DEBUG),
                "{directives:?}"
            );
        }
    }
}
