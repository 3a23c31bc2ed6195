//! Reading a function's settings from its environment, once, at start-up:
//! every variable is read and checked, and start-up fails with the list of
//! every problem (a deploy with three mistakes is fixed in one round, not
//! three). Each function's `settings.rs` declares its own struct with this.
//!
//! Hand-written rather than `envy` or `figment`: both deserialise through
//! serde, which stops at the first error, and neither knows our units
//! (seconds, comma-separated delays, JSON warehouses); this is a loop over
//! a lookup that collects [`ConfigError`]s.

use std::str::FromStr;
use std::time::Duration;

use shared::config::{ConfigError, Warehouses};
use shared::webhook::Reach;

/// Looks a variable up by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// The variables of one start-up and the problems found in them so far.
pub struct Env<'a> {
    lookup: Lookup<'a>,
    problems: Vec<ConfigError>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

/// Every problem of a start-up's settings, one per line. Its `Debug` is
/// that list too: a `main` that returns the error prints its `Debug`.
#[derive(thiserror::Error)]
#[error("{} setting problem(s):\n{}", .0.len(), list(.0))]
pub struct SettingsError(pub Vec<ConfigError>);

impl std::fmt::Debug for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn list(problems: &[ConfigError]) -> String {
    problems
        .iter()
        .map(|problem| format!("- {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Env<'static> {
    /// The process environment (the functions' `main` and the tools).
    #[must_use]
    pub fn process() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

impl<'a> Env<'a> {
    /// Variables from `lookup` (the tests pass a list).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
            problems: Vec::new(),
        }
    }

    /// Variables from a list of (name, value) pairs (tests).
    #[must_use]
    pub fn from_pairs(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Self::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    /// The value of `name`, if set to something other than blanks.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The value of `name`; a problem (and an empty string) when unset.
    pub fn required(&mut self, name: &'static str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.problems.push(ConfigError::Missing(name));
            String::new()
        })
    }

    /// `WEBHOOKS_LOCAL_NETWORK=1` (`make run` only): webhook endpoints may be
    /// plain HTTP on this machine's network; anything else, the internet only.
    pub fn webhook_reach(&self) -> Reach {
        if self.optional("WEBHOOKS_LOCAL_NETWORK").as_deref() == Some("1") {
            Reach::LocalNetwork
        } else {
            Reach::Internet
        }
    }

    /// Records a problem no single reader could see (a choice between variables).
    pub fn problem(&mut self, problem: ConfigError) {
        self.problems.push(problem);
    }

    /// `name` parsed by `parse`, `None` when unset; a problem (and `None`)
    /// when `parse` refuses it with its reason.
    pub fn parsed<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.optional(name)?;
        parse(value.trim())
            .map_err(|reason| self.problems.push(ConfigError::Invalid { name, reason }))
            .ok()
    }

    /// A whole number of `name`, at least `min`.
    pub fn number<T: FromStr + PartialOrd + std::fmt::Display>(
        &mut self,
        name: &'static str,
        min: T,
    ) -> Option<T> {
        self.parsed(name, |text| {
            text.parse()
                .ok()
                .filter(|n| *n >= min)
                .ok_or_else(|| format!("{text:?} is not a whole number of at least {min}"))
        })
    }

    /// Seconds of `name` (at least `min`), else `default`.
    pub fn seconds(&mut self, name: &'static str, min: u64, default: Duration) -> Duration {
        self.number(name, min).map_or(default, Duration::from_secs)
    }

    /// The required `WAREHOUSES` JSON.
    pub fn warehouses(&mut self) -> Warehouses {
        let json = self.required("WAREHOUSES");
        if json.is_empty() {
            return Warehouses::default();
        }
        Warehouses::from_json(&json).unwrap_or_else(|problem| {
            self.problems.push(problem);
            Warehouses::default()
        })
    }

    /// `settings` if no variable had a problem, else every problem.
    ///
    /// # Errors
    /// At least one variable was missing or invalid.
    pub fn finish<T>(self, settings: T) -> Result<T, SettingsError> {
        if self.problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(self.problems))
        }
    }
}

/// Where the order API functions keep orders: `ORDERS_TABLE` and
/// `ORDER_HISTORY_TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTables {
    /// `ORDERS_TABLE`: the DynamoDB table keyed by `order_number`.
    pub orders: String,
    /// `ORDER_HISTORY_TABLE`: the orders' requests and callback ledgers.
    pub history: String,
}

impl OrderTables {
    pub fn read(env: &mut Env<'_>) -> Self {
        Self {
            orders: env.required("ORDERS_TABLE"),
            history: env.required("ORDER_HISTORY_TABLE"),
        }
    }
}

/// What both HTTP functions need to authenticate and to store labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub tables: OrderTables,
    /// `API_KEYS_TABLE`: the API keys, by hash.
    pub api_keys_table: String,
    /// `API_KEY_CACHE_SECONDS` (default 60): how long a warm function trusts a
    /// key it has read; a revocation takes effect within this time; 0 reads
    /// the key table on every request.
    pub api_key_cache: Duration,
    /// `LABELS_BUCKET`: where labels are stored.
    pub labels_bucket: String,
}

impl ApiSettings {
    pub fn read(env: &mut Env<'_>) -> Self {
        Self {
            tables: OrderTables::read(env),
            api_keys_table: env.required("API_KEYS_TABLE"),
            api_key_cache: api_key_cache(env),
            labels_bucket: env.required("LABELS_BUCKET"),
        }
    }
}

impl OrderTables {
    /// The order store over these tables.
    #[must_use]
    pub fn store(&self, dynamodb: aws_sdk_dynamodb::Client) -> crate::DynamoOrderStore {
        crate::DynamoOrderStore::new(dynamodb, &self.orders, &self.history)
    }
}

impl ApiSettings {
    /// The HTTP functions' ports: the order store, the label store and the
    /// key table.
    #[must_use]
    pub fn ports(
        &self,
        dynamodb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
    ) -> (
        crate::DynamoOrderStore,
        crate::S3LabelStore,
        crate::DynamoKeyStore,
    ) {
        (
            self.tables.store(dynamodb.clone()),
            crate::S3LabelStore::new(s3, &self.labels_bucket),
            crate::DynamoKeyStore::new(dynamodb, &self.api_keys_table),
        )
    }
}

/// `API_KEY_CACHE_SECONDS` (default 60 s), also read by the local stack.
pub fn api_key_cache(env: &mut Env<'_>) -> Duration {
    env.seconds("API_KEY_CACHE_SECONDS", 0, Duration::from_secs(60))
}

/// `POLL_SETTLE_SECONDS`: how far behind now a page of
/// `GET /apicenter/api/orders` stops (`shared::polling`; default 15 s).
pub fn poll_settle(env: &mut Env<'_>) -> Duration {
    env.seconds("POLL_SETTLE_SECONDS", 0, shared::polling::DEFAULT_SETTLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_and_invalid_variable_is_listed() {
        let mut env = Env::from_pairs(&[("API_KEY_CACHE_SECONDS", "soon"), ("ORDERS_TABLE", " ")]);
        let settings = ApiSettings::read(&mut env);
        let err = env.finish(settings).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 5, "{text}");
        for name in [
            "ORDERS_TABLE",
            "ORDER_HISTORY_TABLE",
            "API_KEYS_TABLE",
            "API_KEY_CACHE_SECONDS",
            "LABELS_BUCKET",
        ] {
            assert!(text.contains(name), "{name} is not listed in {text}");
        }
        assert!(text.contains("\"soon\""), "{text}");
        assert_eq!(format!("{err:?}"), text, "what a failed main prints");
    }

    #[test]
    fn unset_optional_variables_take_their_defaults() {
        let mut env = Env::from_pairs(&[
            ("ORDERS_TABLE", "orders"),
            ("ORDER_HISTORY_TABLE", "history"),
            ("API_KEYS_TABLE", "keys"),
            ("LABELS_BUCKET", "labels"),
        ]);
        let settings = ApiSettings::read(&mut env);
        let settings = env.finish(settings).unwrap();
        assert_eq!(settings.api_key_cache, Duration::from_secs(60));
        assert_eq!(settings.tables.history, "history");
    }

    #[test]
    fn a_bad_warehouses_json_is_one_problem_among_others() {
        let mut env =
            Env::from_pairs(&[("WAREHOUSES", "{\"x\": 1}"), ("POLL_SETTLE_SECONDS", "-1")]);
        env.warehouses();
        poll_settle(&mut env);
        let err = env.finish(()).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.to_string().contains("WAREHOUSES"), "{err}");
        assert!(err.to_string().contains("POLL_SETTLE_SECONDS"), "{err}");
    }
}

/// What the webhook fan-out and the webhook dispatcher read: the same three
/// variables, so one reader.
#[derive(Debug, Clone)]
pub struct WebhookWorker {
    /// `WEBHOOKS_TABLE`: endpoints, deliveries and the event log.
    pub webhooks_table: String,
    /// `WEBHOOK_DELIVERY_QUEUE_URL`: one message per delivery.
    pub delivery_queue_url: String,
    /// `WEBHOOKS_LOCAL_NETWORK` ([`Env::webhook_reach`]).
    pub reach: Reach,
}

impl WebhookWorker {
    /// # Errors
    /// Every variable that is missing or invalid.
    pub fn read(mut env: Env<'_>) -> Result<Self, SettingsError> {
        let settings = Self {
            webhooks_table: env.required("WEBHOOKS_TABLE"),
            delivery_queue_url: env.required("WEBHOOK_DELIVERY_QUEUE_URL"),
            reach: env.webhook_reach(),
        };
        env.finish(settings)
    }
}
