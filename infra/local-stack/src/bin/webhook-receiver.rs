//! A webhook endpoint for the walk-through: verifies each delivery with the
//! `standardwebhooks` crate and prints it, or prints why it was refused (401).
//!
//! `cargo run -q -p local-stack --bin webhook-receiver -- --secret whsec_… [--port 4000]`

use local_stack::receiver;
use tokio::net::TcpListener;

const USAGE: &str = "usage: webhook-receiver --secret whsec_… [--port 4000]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut secret = None;
    let mut port: u16 = 4000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--secret", Some(value)) => secret = Some(value),
            ("--port", Some(value)) => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port {value}: not a port"))?;
            }
            _ => return Err(USAGE.into()),
        }
    }
    let webhook = receiver::verifier(&secret.ok_or(USAGE)?)?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "Receiving webhooks on http://{}/hooks (any path)",
        listener.local_addr()?
    );
    tokio::select! {
        () = receiver::serve(listener, webhook, |seen| match seen {
            Ok(event) => println!(
                "verified {:<22} order {}  sequence {}",
                event.kind, event.order_number, event.sequence
            ),
            Err(why) => println!("refused (401): {why}"),
        }) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
