//! The AWS boundary's faults (issue 27): a fault proxy
//! (`infra/aws-faults`) in front of each emulator the service calls —
//! DynamoDB, SQS, S3, Secrets Manager — for the whole run. Only the
//! service's endpoints move to the proxies: the soak's own reads (the
//! webhook log, the queue probe, [`crate::aws_state`]) keep the emulators'.
//!
//! The orders table's stream stays unproxied
//! (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`): in AWS it is read by the event
//! source mapping and the pipe, not by a function. The proxies are paused
//! while the service starts (it provisions its tables, queues, bucket and
//! keys: the work of the template, not of a function) and resumed once it
//! listens.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_faults::FaultProxy;

/// The default plan per service (`infra/aws-faults/src/plan.rs`'s syntax):
/// low rates, on the calls the functions make, so the run still finishes.
/// docs/reliability.md ("The soak's fault plan") says why each.
pub const DYNAMODB_PLAN: &str = "PutItem=throughput@0.004,PutItem=reset@0.001,\
     UpdateItem=throttling@0.004,UpdateItem=reset@0.0005,\
     GetItem=internal@0.003,Query=http500@0.003,\
     TransactWriteItems=throughput@0.004,TransactWriteItems=reset@0.0005,\
     BatchGetItem=throttling@0.003,DeleteItem=internal@0.003,\
     *=stall@0.0002,*=delay-300@0.01";
pub const SQS_PLAN: &str = "SendMessage=sqs-internal@0.003,SendMessageBatch=sqs-throttled@0.003,\
     ChangeMessageVisibility=sqs-internal@0.003,DeleteMessageBatch=sqs-internal@0.002,\
     ReceiveMessage=sqs-throttled@0.002,*=delay-200@0.005";
pub const S3_PLAN: &str = "PUT=slowdown@0.02,PUT=s3-internal@0.01,GET=slowdown@0.02,\
     DELETE=s3-internal@0.02,PUT=stall@0.002,PUT=reset@0.005,*=delay-300@0.02";
pub const SECRETS_MANAGER_PLAN: &str =
    "GetSecretValue=secret-throttling@0.05,PutSecretValue=secret-throttling@0.5";

/// One service's endpoint variable, its name in the report, and its plan.
#[derive(Debug)]
pub struct ServicePlan {
    pub variable: &'static str,
    pub service: &'static str,
    pub plan: String,
}

/// The proxies, one per service, and what the service's environment gets.
#[derive(Debug)]
pub struct AwsFaults {
    proxies: Vec<(ServicePlan, FaultProxy)>,
    /// Bumped at every start: only the latest start resumes the faults.
    starts: AtomicU64,
}

impl AwsFaults {
    /// Starts a proxy in front of each service's emulator (from the soak's
    /// own environment) with its plan.
    pub async fn start(plans: Vec<ServicePlan>, seed: u64) -> Result<Arc<Self>, String> {
        let mut proxies = Vec::new();
        for (n, plan) in plans.into_iter().enumerate() {
            let upstream = std::env::var(plan.variable)
                .map_err(|_| format!("{} is not set: run under emulators.sh", plan.variable))?;
            let rules = aws_faults::plan::parse(&plan.plan).map_err(|err| err.to_string())?;
            let proxy = FaultProxy::start(&upstream, seed.wrapping_add(n as u64 * 7919))
                .await
                .map_err(|err| err.to_string())?;
            for rule in rules {
                proxy.inject(rule);
            }
            proxies.push((plan, proxy));
        }
        Ok(Arc::new(Self {
            proxies,
            starts: AtomicU64::new(0),
        }))
    }

    /// The service's endpoint variables: each proxied service's moved to its
    /// proxy, the stream's kept on the emulator.
    pub fn service_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .proxies
            .iter()
            .map(|(plan, proxy)| (plan.variable.to_owned(), proxy.url()))
            .collect();
        if let Ok(dynamodb) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            let streams = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").unwrap_or(dynamodb);
            env.push(("AWS_ENDPOINT_URL_DYNAMODB_STREAMS".into(), streams));
        }
        env
    }

    /// Pauses the faults while a start of the service on `port` provisions,
    /// and resumes them once it listens (up to a minute).
    pub fn pause_while_starting(self: &Arc<Self>, port: u16) {
        let start = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        self.pause(true);
        let faults = Arc::clone(self);
        tokio::spawn(async move {
            for _ in 0..600 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if faults.starts.load(Ordering::SeqCst) == start {
                faults.pause(false);
            }
        });
    }

    fn pause(&self, paused: bool) {
        for (_, proxy) in &self.proxies {
            proxy.pause(paused);
        }
    }

    /// What the proxies did: the plans, and per service and operation the
    /// requests and the faults given by kind.
    pub fn figures(&self) -> AwsFigures {
        let mut plan = String::new();
        let mut given = Vec::new();
        for (service, proxy) in &self.proxies {
            let _ = write!(
                plan,
                "{}{}: `{}`",
                if plan.is_empty() { "" } else { "; " },
                service.service,
                service.plan
            );
            for (operation, kind, count) in proxy.faults_given() {
                given.push(FaultCount {
                    service: service.service,
                    operation: operation.clone(),
                    kind,
                    count,
                    requests: proxy.seen(&operation),
                });
            }
        }
        AwsFigures { plan, given }
    }
}

/// One row of the report: faults of one kind given to one operation.
#[derive(Debug, Clone)]
pub struct FaultCount {
    pub service: &'static str,
    pub operation: String,
    pub kind: String,
    pub count: u64,
    /// Every request the operation got, faulted or not.
    pub requests: u64,
}

/// The AWS faults of a run.
#[derive(Debug, Clone, Default)]
pub struct AwsFigures {
    pub plan: String,
    pub given: Vec<FaultCount>,
}

impl AwsFigures {
    pub fn rows(&self) -> Vec<(String, String)> {
        let total: u64 = self.given.iter().map(|row| row.count).sum();
        let mut rows = vec![(
            "AWS faults injected (all services)".to_owned(),
            total.to_string(),
        )];
        rows.extend(self.given.iter().map(|row| {
            (
                format!(
                    "AWS fault: {} {} `{}`",
                    row.service, row.operation, row.kind
                ),
                format!("{} (of {} requests)", row.count, row.requests),
            )
        }));
        rows
    }
}

/// The default plans, every service proxied.
pub fn default_plans(dynamodb: &str, sqs: &str, s3: &str, secrets: &str) -> Vec<ServicePlan> {
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB", dynamodb),
        ("AWS_ENDPOINT_URL_SQS", "SQS", sqs),
        ("AWS_ENDPOINT_URL_S3", "S3", s3),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            "Secrets Manager",
            secrets,
        ),
    ]
    .into_iter()
    .map(|(variable, service, plan)| ServicePlan {
        variable,
        service,
        plan: plan.to_owned(),
    })
    .collect()
}
