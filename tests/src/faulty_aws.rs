//! The fault proxy (`infra/aws-faults`) in front of one AWS service's
//! emulator, and the SDK settings that send only that service's calls
//! through it: one rig for every fault target of tests/aws_faults.rs
//! (DynamoDB, SQS, S3, Secrets Manager).

use std::ops::Deref;

use adapters::https::{AwsBudget, aws_config_within};
use aws_faults::FaultProxy;
use aws_types::SdkConfig;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// The services the fault proxy stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Sqs,
    S3,
    SecretsManager,
}

impl Service {
    /// Its id as the SDK names it.
    fn id(self) -> &'static str {
        match self {
            Self::DynamoDb => "DynamoDB",
            Self::Sqs => "SQS",
            Self::S3 => "S3",
            Self::SecretsManager => "Secrets Manager",
        }
    }
}

/// A fault proxy in front of one service's emulator. Derefs to the proxy,
/// whose rules (`inject`, `heal`) and counts (`seen`, `faulted`) tests use.
#[derive(Debug)]
pub struct FaultyService {
    service: Service,
    proxy: FaultProxy,
}

impl FaultyService {
    /// Starts a proxy in front of `service`'s emulator (the endpoint
    /// emulators.sh exports for it).
    pub async fn start(service: Service) -> Self {
        let variable = service_variable("AWS_ENDPOINT_URL", service.id());
        let upstream = std::env::var(&variable)
            .unwrap_or_else(|_| panic!("{variable}: run through infra/local/emulators.sh exec"));
        let proxy = FaultProxy::start(&upstream, 27)
            .await
            .expect("the fault proxy");
        Self { service, proxy }
    }

    /// The environment's SDK settings within `budget`, with this service's
    /// calls moved to the proxy and every other service's left on its
    /// emulator.
    pub async fn aws(&self, budget: AwsBudget) -> SdkConfig {
        aws_config_within(budget)
            .await
            .expect("the SDK config")
            .to_builder()
            .service_config(OneServiceThrough {
                service_id: self.service.id(),
                endpoint: self.proxy.url(),
            })
            .build()
    }
}

impl Deref for FaultyService {
    type Target = FaultProxy;

    fn deref(&self) -> &FaultProxy {
        &self.proxy
    }
}

/// The environment variable of setting `env` for one service (`service_id`
/// as the SDK names it): `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
fn service_variable(env: &str, service_id: &str) -> String {
    format!("{env}_{}", service_id.to_uppercase().replace(' ', "_"))
}

/// The environment's service settings, with one service's endpoint
/// (`service_id` as the SDK names it) moved to the fault proxy.
#[derive(Debug)]
struct OneServiceThrough {
    service_id: &'static str,
    endpoint: String,
}

impl LoadServiceConfig for OneServiceThrough {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() == "AWS_ENDPOINT_URL" && key.service_id() == self.service_id {
            return Some(self.endpoint.clone());
        }
        std::env::var(service_variable(key.env(), key.service_id())).ok()
    }
}
