//! `make run`: the whole service on this machine. Provisions the template's
//! tables and queues on the emulators and serves the API through the same
//! handler code the Lambda runs.

use local_stack::Stack;
use local_stack::stack::local_warehouses;
use tokio::net::TcpListener;

const SAMPLE_ORDER: &str = include_str!("../../../../tests/fixtures/spec-000-sample.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into()),
        )
        .init();
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port} is not a port number"))?,
        Err(_) => 3000,
    };
    let stack = Stack::provision("local", local_warehouses()?).await?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let compact: serde_json::Value = serde_json::from_str(SAMPLE_ORDER)?;
    println!(
        "\nOrder API listening on {base}  (tables and queues: {:?}, {:?})\n\n\
         Create the spec's sample order:\n\n  curl -s -X POST {base}/apicenter/api/order \\\n    \
         -H 'Content-Type: application/json' \\\n    -d '{compact}'\n\n\
         Read it back:\n\n  curl -s {base}/apicenter/api/order/mabang-test002\n\n\
         Ctrl-C stops the service and the emulators.\n",
        stack.resources.tables.values().collect::<Vec<_>>(),
        stack.resources.queue_urls.keys().collect::<Vec<_>>(),
    );
    tokio::select! {
        result = stack.serve(listener) => result?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}
