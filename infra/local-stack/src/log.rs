//! The local stack's log filter: the functions' own rule
//! ([`adapters::logging::filter`]: `RUST_LOG`'s directives, the SDK's
//! connection-poisoning complaint off unless named) over a quieter default.

use tracing_subscriber::filter::Targets;

/// Without `RUST_LOG`: the service's info lines, the SDK's warnings.
const DEFAULT: &str = "info,aws_config=warn,aws_smithy_runtime=warn";

/// The filter for `RUST_LOG` (`None`: unset).
#[must_use]
pub fn filter(rust_log: Option<&str>) -> Targets {
    adapters::logging::filter(rust_log.unwrap_or(DEFAULT), None)
}

#[cfg(test)]
mod tests {
    use adapters::logging::CONNECTION_POISONING;
    use tracing::Level;

    use super::*;

    /// The soak sets `RUST_LOG`; with `EnvFilter` taking it as it stood,
    /// the complaint the functions keep off filled a 10,000-order soak's
    /// service log with 1,000 ERROR lines.
    #[test]
    fn the_sdks_connection_poisoning_complaint_stays_off_whatever_rust_log_says() {
        let soak = "warn,callback_dispatch=info,local_stack::rearm=info,shared::dispatch=info";
        for rust_log in [None, Some(soak), Some("debug")] {
            assert!(
                !filter(rust_log).would_enable(CONNECTION_POISONING, &Level::ERROR),
                "{rust_log:?}"
            );
        }
        assert!(filter(Some(soak)).would_enable("callback_dispatch", &Level::INFO));
        assert!(!filter(Some(soak)).would_enable("shared::intake", &Level::INFO));
    }

    #[test]
    fn without_rust_log_the_service_says_what_it_does_and_the_sdk_only_warns() {
        assert!(filter(None).would_enable("shared::intake", &Level::INFO));
        assert!(filter(None).would_enable("aws_smithy_runtime::client", &Level::WARN));
        assert!(!filter(None).would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(!filter(None).would_enable("aws_config::default_provider", &Level::INFO));
    }
}
