//! Each function's environment as Lambda gives it to the deployed function:
//! Lambda's own variables, then the template's (`Globals` and the
//! function's `Environment.Variables`, read by `local_stack::template`),
//! each `!Ref` resolved against the provisioned stack. Nothing is listed by
//! hand, so a variable added to the template reaches the bench too.

use std::collections::BTreeMap;

use local_stack::Stack;
use local_stack::template::{EnvValue, FunctionSpec, Template};

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
    // Every emulator the harness was started with (DynamoDB, SQS, S3,
    // Secrets Manager): the functions reach them as they would AWS.
    env.extend(std::env::vars().filter(|(name, _)| name.starts_with("AWS_ENDPOINT_URL")));
    env
}

/// The environment of `function` on `stack`. A `!Ref` names a parameter
/// given a local value in `parameters` (the partner's URL, the secret made
/// on the emulator), else a provisioned table, queue (its URL, as `!Ref`
/// gives) or bucket, else a parameter whose default serves.
pub fn of(
    function: &FunctionSpec,
    template: &Template,
    stack: &Stack,
    parameters: &BTreeMap<&str, String>,
) -> Result<Vec<(String, String)>, String> {
    let resources = &stack.resources;
    let resolve = |id: &str| {
        parameters
            .get(id)
            .or_else(|| resources.tables.get(id))
            .or_else(|| resources.queue_urls.get(id))
            .or_else(|| resources.buckets.get(id))
            .cloned()
            .or_else(|| template.parameter_default(id))
    };
    let mut env = lambda_env(&function.binary);
    for (name, value) in &function.environment {
        let value = match value {
            EnvValue::Literal(value) => value.clone(),
            EnvValue::Ref(id) => resolve(id).ok_or_else(|| {
                format!(
                    "{}: {name} is !Ref {id}, which the bench neither provisions nor \
                     has a value for (infra/bench/src/environment.rs)",
                    function.logical_id
                )
            })?,
        };
        env.push((name.clone(), value));
    }
    Ok(env)
}
