//! A fault plan as text, for the command line (`aws-faults exec`, the soak):
//! comma-separated `OPERATION=FAULT@RATE` rules, `*` for every operation,
//! `@RATE` (a share in [0, 1]) optional (every request).
//!
//! | FAULT | gives |
//! | --- | --- |
//! | `throughput`, `throttling`, `internal` | DynamoDB `ProvisionedThroughputExceededException`, `ThrottlingException`, `InternalServerError` |
//! | `http500` | a bare HTTP 500 |
//! | `sqs-internal`, `sqs-throttled` | SQS `InternalFailure`, `RequestThrottled` |
//! | `slowdown`, `s3-internal` | S3 `SlowDown` (503), `InternalError` (500) |
//! | `secret-throttling` | Secrets Manager `ThrottlingException` |
//! | `delay-MS` | the request forwarded after MS milliseconds |
//! | `stall` | no answer, ever |
//! | `reset` | forwarded, then the connection dropped |
//!
//! Example: `PutItem=throughput@0.02,*=delay-50@0.1,UpdateItem=reset@0.001`.

use std::time::Duration;

use crate::{Fault, Rule};

/// Why a plan cannot be read: the rule and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault rule {rule:?}: {reason}")]
pub struct PlanError {
    rule: String,
    reason: &'static str,
}

/// The rules of `plan`, in order.
///
/// # Errors
/// The first rule that is not `OPERATION=FAULT[@RATE]` with a known fault.
pub fn parse(plan: &str) -> Result<Vec<Rule>, PlanError> {
    plan.split(',')
        .map(str::trim)
        .filter(|rule| !rule.is_empty())
        .map(parse_rule)
        .collect()
}

fn parse_rule(text: &str) -> Result<Rule, PlanError> {
    let refuse = |reason| PlanError {
        rule: text.to_owned(),
        reason,
    };
    let (operation, fault) = text
        .split_once('=')
        .ok_or_else(|| refuse("not OPERATION=FAULT[@RATE]"))?;
    let (fault, rate) = match fault.split_once('@') {
        Some((fault, rate)) => {
            let rate: f64 = rate
                .parse()
                .map_err(|_| refuse("the rate is not a number"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(refuse("the rate is not in [0, 1]"));
            }
            (fault, rate)
        }
        None => (fault, 1.0),
    };
    let fault = match fault {
        "throughput" => Fault::dynamodb("ProvisionedThroughputExceededException"),
        "throttling" => Fault::dynamodb("ThrottlingException"),
        "internal" => Fault::dynamodb("InternalServerError"),
        "http500" => Fault::http_500(),
        "sqs-internal" => Fault::sqs("InternalFailure"),
        "sqs-throttled" => Fault::sqs("RequestThrottled"),
        "slowdown" => Fault::s3("SlowDown"),
        "s3-internal" => Fault::s3("InternalError"),
        "secret-throttling" => Fault::secrets_manager_throttling(),
        "stall" => Fault::Stall,
        "reset" => Fault::ResetAfterForward,
        other => {
            let millis = other
                .strip_prefix("delay-")
                .and_then(|ms| ms.parse().ok())
                .ok_or_else(|| refuse("unknown fault"))?;
            Fault::Delay(Duration::from_millis(millis))
        }
    };
    let rule = match operation {
        "*" => Rule::on_every_operation(fault),
        "" => return Err(refuse("no operation")),
        operation => Rule::on(operation, fault),
    };
    Ok(rule.at_rate(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_each_rule_with_its_operation_fault_and_rate() {
        let rules =
            parse("PutItem=throughput@0.02, *=delay-50@0.1,UpdateItem=reset").expect("a plan");
        let described: Vec<String> = rules.iter().map(|rule| format!("{rule:?}")).collect();
        assert_eq!(rules.len(), 3);
        assert!(
            described[0].contains("PutItem")
                && described[0].contains("ProvisionedThroughputExceededException")
                && described[0].contains("0.02")
        );
        assert!(described[1].contains("operation: None") && described[1].contains("Delay(50ms)"));
        assert!(described[2].contains("ResetAfterForward") && described[2].contains("rate: 1.0"));
    }

    #[test]
    fn a_wrong_rule_is_named_with_its_problem() {
        for (plan, reason) in [
            ("PutItem", "not OPERATION=FAULT[@RATE]"),
            ("PutItem=melt", "unknown fault"),
            ("PutItem=stall@2", "the rate is not in [0, 1]"),
            ("PutItem=stall@x", "the rate is not a number"),
            ("=stall", "no operation"),
        ] {
            let err = parse(plan).expect_err(plan);
            assert_eq!(err.reason, reason, "{plan}");
            assert!(
                err.to_string()
                    .contains(plan.split(',').next().unwrap_or(plan))
            );
        }
    }
}
