//! `aws-faults exec [--dynamodb PLAN] [--sqs PLAN] [--s3 PLAN]
//! [--secrets-manager PLAN] [--seed N] -- COMMAND ARGS…`: runs COMMAND with
//! each named service's endpoint (`AWS_ENDPOINT_URL_<SERVICE>`, as
//! `infra/local/emulators.sh` sets them) moved to a fault proxy that applies
//! PLAN (see `aws_faults::plan`), and prints how many requests each
//! operation got and how many were faulted when COMMAND exits. The soak runs
//! through it unchanged:
//! `infra/local/emulators.sh stack -- aws-faults exec --dynamodb 'PutItem=throughput@0.01' -- soak …`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use aws_faults::FaultProxy;

const SERVICES: [(&str, &str); 4] = [
    ("--dynamodb", "AWS_ENDPOINT_URL_DYNAMODB"),
    ("--sqs", "AWS_ENDPOINT_URL_SQS"),
    ("--s3", "AWS_ENDPOINT_URL_S3"),
    ("--secrets-manager", "AWS_ENDPOINT_URL_SECRETS_MANAGER"),
];

const USAGE: &str = "usage: aws-faults exec [--dynamodb PLAN] [--sqs PLAN] [--s3 PLAN] \
                     [--secrets-manager PLAN] [--seed N] -- COMMAND ARGS...";

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("aws-faults: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut args = args.into_iter();
    if args.next().as_deref() != Some("exec") {
        return Err(USAGE.into());
    }
    let mut plans = Vec::new();
    let mut seed = 27_u64;
    let command = loop {
        match args.next().as_deref() {
            Some("--") => break args.collect::<Vec<_>>(),
            Some("--seed") => {
                seed = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--seed takes a number")?;
            }
            Some(flag) => {
                let (_, env) = SERVICES
                    .iter()
                    .find(|(name, _)| *name == flag)
                    .ok_or_else(|| format!("unknown option {flag}; {USAGE}"))?;
                let plan = args.next().ok_or_else(|| format!("{flag} takes a plan"))?;
                let rules = aws_faults::plan::parse(&plan).map_err(|err| err.to_string())?;
                plans.push((*env, rules));
            }
            None => return Err(USAGE.into()),
        }
    };
    let (program, program_args) = command.split_first().ok_or(USAGE)?;
    let mut proxies = Vec::new();
    let mut child = tokio::process::Command::new(program);
    child.args(program_args);
    for (env, rules) in plans {
        let upstream = std::env::var(env)
            .map_err(|_| format!("{env} is not set: run under infra/local/emulators.sh"))?;
        let proxy = FaultProxy::start(&upstream, seed)
            .await
            .map_err(|err| err.to_string())?;
        for rule in rules {
            proxy.inject(rule);
        }
        eprintln!("aws-faults: {env} {upstream} -> {}", proxy.url());
        child.env(env, proxy.url());
        proxies.push((env, proxy));
    }
    let status = child
        .status()
        .await
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    for (env, proxy) in &proxies {
        let operations: BTreeSet<String> = proxy.operations();
        for operation in operations {
            eprintln!(
                "aws-faults: {env} {operation}: {} requests, {} faulted",
                proxy.seen(&operation),
                proxy.faulted(&operation)
            );
        }
    }
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}
