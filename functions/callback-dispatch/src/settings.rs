//! What the dispatcher reads from its environment, once, at start-up; every
//! problem is listed (`adapters::settings`).

use std::time::Duration;

use adapters::TokenConfig;
use adapters::settings::{Env, OrderTables, SettingsError};
use shared::callback::RetryPolicy;
use shared::callback::breaker::BreakerPolicy;
use shared::config::{ConfigError, Warehouses};
use shared::ports::StaticToken;

/// The dispatcher's settings.
#[derive(Debug)]
pub struct Settings {
    pub tables: OrderTables,
    /// `CALLBACK_QUEUE_URL`.
    pub callback_queue_url: String,
    /// `CALLBACK_DEAD_LETTER_QUEUE_URL`.
    pub dead_letter_queue_url: String,
    /// `CALLBACK_URL`: the partner's platform-callback endpoint.
    pub callback_url: String,
    /// `WAREHOUSES`: JSON object of warehouses keyed by `centre_code`.
    pub warehouses: Warehouses,
    /// The retry schedule and the lease ([`schedule`]).
    pub policy: RetryPolicy,
    pub connect_timeout: Duration,
    /// `CALLBACK_TIMEOUT_SECONDS` (default 10).
    pub timeout: Duration,
    /// Where the partner's credentials are.
    pub credentials: Credentials,
    /// The partner-state table (`PARTNER_STATE_TABLE`): the circuit
    /// breaker's item; no breaker without it.
    pub state_table: Option<String>,
    /// `None`: `CALLBACK_BREAKER=off`.
    pub breaker: Option<BreakerPolicy>,
}

/// The partner's credentials: in a Secrets Manager secret
/// (`CALLBACK_TOKEN_SECRET_ID`, with `CALLBACK_TOKEN_URL` and
/// `PARTNER_STATE_TABLE` for OAuth2), else the static `CALLBACK_TOKEN`.
/// Its `Debug` shows no token.
#[derive(Debug)]
pub enum Credentials {
    Secret(TokenConfig),
    Static(StaticToken),
}

impl Settings {
    /// `ORDERS_TABLE`, `ORDER_HISTORY_TABLE`, `CALLBACK_QUEUE_URL`,
    /// `CALLBACK_DEAD_LETTER_QUEUE_URL`, `CALLBACK_URL`, `WAREHOUSES`, the
    /// credentials, and the optional schedule and breaker tunables.
    ///
    /// # Errors
    /// Every variable that is missing or invalid.
    pub fn read(mut env: Env<'_>) -> Result<Self, SettingsError> {
        let (policy, timeout) = schedule(&mut env);
        let settings = Self {
            tables: OrderTables::read(&mut env),
            callback_queue_url: env.required("CALLBACK_QUEUE_URL"),
            dead_letter_queue_url: env.required("CALLBACK_DEAD_LETTER_QUEUE_URL"),
            callback_url: env.required("CALLBACK_URL"),
            warehouses: env.warehouses(),
            policy,
            connect_timeout: Duration::from_secs(3).min(timeout),
            timeout,
            credentials: credentials(&mut env, timeout),
            state_table: env.optional("PARTNER_STATE_TABLE"),
            breaker: breaker(&mut env),
        };
        env.finish(settings)
    }
}

/// The retry schedule and the partner timeout: `CALLBACK_MAX_POSTS` (posts in
/// a schedule, default 8), `CALLBACK_RETRY_DELAYS` (seconds, comma-separated),
/// `CALLBACK_TIMEOUT_SECONDS` (default 10).
pub fn schedule(env: &mut Env<'_>) -> (RetryPolicy, Duration) {
    let timeout = env.seconds("CALLBACK_TIMEOUT_SECONDS", 1, Duration::from_secs(10));
    // The lease and the post timeout by the one rule (`for_partner_timeout`).
    let mut policy = RetryPolicy::for_partner_timeout(timeout);
    if let Some(posts) = env.number("CALLBACK_MAX_POSTS", 1) {
        policy.max_posts = posts;
    }
    if let Some(delays) = env.parsed("CALLBACK_RETRY_DELAYS", RetryPolicy::parse_delays) {
        policy.delays = delays;
    }
    (policy, timeout)
}

/// The circuit breaker's tunables (defaults in brackets): it opens when a
/// dispatcher saw at least `CALLBACK_BREAKER_MIN_POSTS` (20) posts end within
/// `CALLBACK_BREAKER_WINDOW_SECONDS` (30) and `CALLBACK_BREAKER_FAILURE_PCT`
/// (90) % of them failed as if the partner were down; it holds for
/// `CALLBACK_BREAKER_COOL_DOWN_SECONDS` (30), doubled after each round of
/// `CALLBACK_BREAKER_PROBES` (3) failed probes up to
/// `CALLBACK_BREAKER_MAX_COOL_DOWN_SECONDS` (1800); traffic comes back over
/// `CALLBACK_BREAKER_RAMP_SECONDS` (30). `CALLBACK_BREAKER=off` runs without
/// a breaker (and without the 429 throttle it carries): `None`.
pub fn breaker(env: &mut Env<'_>) -> Option<BreakerPolicy> {
    if env.optional("CALLBACK_BREAKER").as_deref() == Some("off") {
        return None;
    }
    let defaults = BreakerPolicy::default();
    let failure_pct = env.parsed("CALLBACK_BREAKER_FAILURE_PCT", |text| {
        text.parse()
            .ok()
            .filter(|pct| (1..=100).contains(pct))
            .ok_or_else(|| format!("{text:?} is not a percentage from 1 to 100"))
    });
    Some(BreakerPolicy {
        window: env.seconds("CALLBACK_BREAKER_WINDOW_SECONDS", 1, defaults.window),
        min_posts: env
            .number("CALLBACK_BREAKER_MIN_POSTS", 1)
            .unwrap_or(defaults.min_posts),
        failure_pct: failure_pct.unwrap_or(defaults.failure_pct),
        cool_down: env.seconds("CALLBACK_BREAKER_COOL_DOWN_SECONDS", 1, defaults.cool_down),
        max_cool_down: env.seconds(
            "CALLBACK_BREAKER_MAX_COOL_DOWN_SECONDS",
            1,
            defaults.max_cool_down,
        ),
        probes: env
            .number("CALLBACK_BREAKER_PROBES", 1)
            .unwrap_or(defaults.probes),
        ramp: env.seconds("CALLBACK_BREAKER_RAMP_SECONDS", 1, defaults.ramp),
        ..defaults
    })
}

/// `CALLBACK_TOKEN_SECRET_ID` (with `CALLBACK_TOKEN_URL`,
/// `PARTNER_STATE_TABLE` and `CALLBACK_TOKEN_MAX_LIFETIME_SECONDS`, the
/// longest an access token is used, default 12 h), else `CALLBACK_TOKEN`.
fn credentials(env: &mut Env<'_>, timeout: Duration) -> Credentials {
    let max_lifetime = env
        .number("CALLBACK_TOKEN_MAX_LIFETIME_SECONDS", 1)
        .map(Duration::from_secs);
    if let Some(secret_id) = env.optional("CALLBACK_TOKEN_SECRET_ID") {
        return Credentials::Secret(TokenConfig {
            secret_id,
            token_url: env.optional("CALLBACK_TOKEN_URL"),
            state_table: env.optional("PARTNER_STATE_TABLE"),
            max_lifetime,
            timeout,
        });
    }
    let token = env.optional("CALLBACK_TOKEN").unwrap_or_else(|| {
        env.problem(ConfigError::Missing(
            "CALLBACK_TOKEN_SECRET_ID (Secrets Manager) or CALLBACK_TOKEN",
        ));
        String::new()
    });
    Credentials::Static(StaticToken::new(token))
}

/// [`schedule`] from the process environment: the local stack runs the
/// deployed schedule's variables through this, so a compressed schedule
/// behaves as deployed.
///
/// # Errors
/// Every schedule variable that is invalid.
pub fn schedule_from_env() -> Result<(RetryPolicy, Duration), SettingsError> {
    let mut env = Env::process();
    let schedule = schedule(&mut env);
    env.finish(schedule)
}

/// [`breaker`] from the process environment (the local stack).
///
/// # Errors
/// Every breaker variable that is invalid.
pub fn breaker_policy() -> Result<Option<BreakerPolicy>, SettingsError> {
    let mut env = Env::process();
    let breaker = breaker(&mut env);
    env.finish(breaker)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `err` lists each of `names`, among `problems` problems in all.
    fn assert_lists(err: &SettingsError, names: &[&str], problems: usize) {
        let text = err.to_string();
        for name in names {
            assert!(text.contains(name), "{name} is not listed in {text}");
        }
        assert_eq!(err.0.len(), problems, "{text}");
    }

    /// The required variables, and `more`.
    fn complete(more: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = vec![
            ("ORDERS_TABLE", "orders"),
            ("ORDER_HISTORY_TABLE", "history"),
            ("CALLBACK_QUEUE_URL", "q"),
            ("CALLBACK_DEAD_LETTER_QUEUE_URL", "dlq"),
            ("CALLBACK_URL", "https://partner.test/callback"),
            ("WAREHOUSES", "{}"),
        ];
        vars.extend_from_slice(more);
        vars
    }

    #[test]
    fn an_empty_environment_lists_every_required_variable() {
        let err = Settings::read(Env::from_pairs(&[])).unwrap_err();
        let required = [
            "ORDERS_TABLE",
            "ORDER_HISTORY_TABLE",
            "CALLBACK_QUEUE_URL",
            "CALLBACK_DEAD_LETTER_QUEUE_URL",
            "CALLBACK_URL",
            "WAREHOUSES",
            "CALLBACK_TOKEN",
        ];
        assert_lists(&err, &required, 7);
    }

    #[test]
    fn invalid_tunables_are_listed_beside_the_missing_variables() {
        let err = Settings::read(Env::from_pairs(&[
            ("CALLBACK_MAX_POSTS", "0"),
            ("CALLBACK_RETRY_DELAYS", "5,soon"),
            ("CALLBACK_TIMEOUT_SECONDS", "ten"),
            ("CALLBACK_BREAKER_FAILURE_PCT", "101"),
            ("CALLBACK_BREAKER_PROBES", "-3"),
            ("CALLBACK_TOKEN", "t"),
        ]))
        .unwrap_err();
        let invalid_and_one_missing = [
            "CALLBACK_MAX_POSTS",
            "CALLBACK_RETRY_DELAYS",
            "CALLBACK_TIMEOUT_SECONDS",
            "CALLBACK_BREAKER_FAILURE_PCT",
            "CALLBACK_BREAKER_PROBES",
            "ORDERS_TABLE",
        ];
        assert_lists(&err, &invalid_and_one_missing, 11);
    }

    #[test]
    fn a_complete_environment_reads_the_schedule_and_the_secret() {
        let vars = complete(&[
            ("CALLBACK_RETRY_DELAYS", "1,2"),
            ("CALLBACK_TIMEOUT_SECONDS", "4"),
            ("CALLBACK_TOKEN_SECRET_ID", "partner"),
            ("CALLBACK_BREAKER", "off"),
        ]);
        let settings = Settings::read(Env::from_pairs(&vars)).unwrap();
        assert_eq!(
            settings.policy.delays,
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert_eq!(settings.policy.post_timeout, Duration::from_secs(4));
        assert!(settings.breaker.is_none());
        assert!(
            matches!(&settings.credentials, Credentials::Secret(c) if c.secret_id == "partner")
        );
    }

    #[test]
    fn the_static_token_is_not_in_the_settings_debug() {
        let vars = complete(&[("CALLBACK_TOKEN", "very-secret-token")]);
        let settings = Settings::read(Env::from_pairs(&vars)).unwrap();
        assert!(!format!("{settings:?}").contains("very-secret-token"));
    }
}
