//! DynamoDB on the emulator as the soak reads it, past any fault proxy:
//! DynamoDB's JSON protocol as the SDK speaks it (unsigned: DynamoDB Local
//! only reads the access key and region), every page of a `Query` or a
//! `Scan`; and the local stack's resource names from its `env` file.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The emulator from the soak's own environment.
#[derive(Debug, Clone)]
pub struct EmulatorDynamoDb {
    http: reqwest::Client,
    endpoint: String,
    authorization: String,
}

impl EmulatorDynamoDb {
    /// The emulator at `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn from_env() -> Result<Self, String> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .map_err(|_| "AWS_ENDPOINT_URL_DYNAMODB is not set: run under emulators.sh")?;
        // DynamoDB Local keeps one database per access key and region: the
        // service's.
        let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "local".into());
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        Ok(Self {
            http: reqwest::Client::new(),
            endpoint,
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={key}/20260101/{region}/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
            ),
        })
    }

    /// Every item `operation` (`Query` or `Scan`) answers to `request`, page
    /// after page, each page within `timeout`; `what` names the read in
    /// errors.
    pub async fn items(
        &self,
        operation: &str,
        request: Value,
        timeout: Duration,
        what: &str,
    ) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut page_request = request.clone();
        loop {
            let answer = self
                .http
                .post(&self.endpoint)
                .header("X-Amz-Target", format!("DynamoDB_20120810.{operation}"))
                .header("Content-Type", "application/x-amz-json-1.0")
                .header("Authorization", &self.authorization)
                .timeout(timeout)
                .body(page_request.to_string())
                .send()
                .await
                .map_err(|err| format!("{what}: {err}"))?;
            let status = answer.status();
            let page: Value = answer
                .json()
                .await
                .map_err(|err| format!("{what}: {err}"))?;
            if !status.is_success() {
                return Err(format!("{what}: {status} {page}"));
            }
            items.extend(page["Items"].as_array().cloned().unwrap_or_default());
            match &page["LastEvaluatedKey"] {
                Value::Object(_) => {
                    page_request = request.clone();
                    page_request["ExclusiveStartKey"] = page["LastEvaluatedKey"].clone();
                }
                _ => return Ok(items),
            }
        }
    }
}

/// The value the local stack's `env` file (its `export NAME='value'`
/// lines) gives `name`.
pub fn env_value(env: &str, name: &str) -> Option<String> {
    let prefix = format!("export {name}='");
    env.lines().find_map(|line| {
        line.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix('\''))
            .map(str::to_owned)
    })
}

/// [`env_value`] of the `env` file at `path`; `None` while it is not written.
pub fn env_file_value(path: &Path, name: &str) -> Option<String> {
    env_value(&std::fs::read_to_string(path).ok()?, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_read_from_the_export_lines() {
        let env = "export ORDERS_TABLE='local-OrdersTable'\nexport EMPTY=''\n";
        assert_eq!(
            env_value(env, "ORDERS_TABLE").as_deref(),
            Some("local-OrdersTable")
        );
        assert_eq!(env_value(env, "EMPTY").as_deref(), Some(""));
        assert_eq!(env_value(env, "ORDERS"), None);
    }
}
