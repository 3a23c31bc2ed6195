//! A running set of functions over freshly provisioned tables and queues.

use std::path::Path;
use std::sync::Arc;

use order_intake::{Config, OrderApi};
use shared::config::Warehouses;

use crate::Error;
use crate::gateway::{self, Function};
use crate::provision::{Provisioned, provision};
use crate::template::Template;

/// The endpoints the emulators script exports; without them the SDK would
/// reach for real AWS.
const EMULATOR_ENDPOINTS: [&str; 2] = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"];

/// Clients for the emulators and the resources provisioned on them.
#[derive(Debug, Clone)]
pub struct Stack {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub resources: Provisioned,
    pub warehouses: Warehouses,
}

impl Stack {
    /// Provisions the template's resources under `prefix` on the emulators
    /// named by `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`.
    pub async fn provision(prefix: &str, warehouses: Warehouses) -> Result<Self, Error> {
        if let Some(missing) = EMULATOR_ENDPOINTS
            .iter()
            .find(|name| std::env::var_os(name).is_none())
        {
            return Err(Error::Template(format!(
                "{missing} is not set: the local stack needs the emulators; \
                 start it through `make run` / `make test` (infra/local/emulators.sh exec -- …)"
            )));
        }
        let aws = aws_config::load_from_env().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let resources = provision(&Template::project()?, &dynamodb, &sqs, prefix).await?;
        Ok(Self {
            dynamodb,
            sqs,
            resources,
            warehouses,
        })
    }

    /// The orders table's physical name.
    pub fn orders_table(&self) -> Result<&str, Error> {
        self.resources.table("OrdersTable")
    }

    /// The order API function, configured as the template configures it.
    pub fn order_api(&self) -> Result<Function, Error> {
        let config = Config {
            orders_table: self.orders_table()?.to_owned(),
            warehouses: self.warehouses.clone(),
        };
        let api = Arc::new(OrderApi::new(config, self.dynamodb.clone()));
        Ok(Arc::new(move |request| {
            let api = Arc::clone(&api);
            Box::pin(async move {
                let Ok(response) = api.handle(request).await;
                response
            })
        }))
    }

    /// Serves the API on `listener` (API Gateway's part) until dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> Result<(), Error> {
        gateway::serve(listener, self.order_api()?).await;
        Ok(())
    }
}

/// The warehouses of the local configuration, `infra/local/warehouses.json`.
pub fn local_warehouses() -> Result<Warehouses, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../local/warehouses.json");
    let json = std::fs::read_to_string(&path)
        .map_err(|err| Error::Template(format!("{}: {err}", path.display())))?;
    Ok(Warehouses::from_json(&json)?)
}
