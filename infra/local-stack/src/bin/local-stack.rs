//! `make run`: the whole service on this machine. Provisions the template's
//! tables and queues on the emulators, serves the API through the same handler
//! code the Lambdas run, runs the callback dispatcher the way the SQS event
//! source mapping does (fed by the orders table's stream, as the template's
//! pipe feeds it in AWS), and posts callbacks to
//! `CALLBACK_URL` or, without it, to a built-in partner that logs what it got.
//! Webhooks run as deployed: the fan-out reads the orders stream beside the
//! pipe, the webhook dispatcher polls the delivery queue and posts to the
//! endpoints ERPs create (`WEBHOOKS_LOCAL_NETWORK=1`, which `make run` sets,
//! allows plain HTTP on this machine).

use std::time::Duration;

use local_stack::stack::{CallbackSettings, local_warehouses};
use local_stack::{Stack, partner};
use shared::domain::Scope;
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const SAMPLE_ORDER: &str = include_str!("../../../../tests/fixtures/spec-000-sample.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::registry()
        .with(local_stack::log::filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with(tracing_subscriber::fmt::layer())
        .init();
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port} is not a port number"))?,
        Err(_) => 3000,
    };
    let mut stack = Stack::provision("local", local_warehouses()?).await?;
    let mut env = adapters::settings::Env::process();
    stack.key_cache = adapters::settings::api_key_cache(&mut env);
    stack.poll_settle = adapters::settings::poll_settle(&mut env);
    // The functions' own setting (shared::webhook::Reach): link-local and
    // metadata addresses stay refused either way.
    stack.webhook_reach = env.webhook_reach();
    env.finish(())?;
    // Demo credentials: the spec sample's client "20", and the two local
    // warehouses. Fixed values from the environment make scripts repeatable.
    let erp = stack
        .issue_key(
            Scope::Client("20".into()),
            std::env::var("LOCAL_API_KEY").ok(),
            false,
        )
        .await?;
    let wms = stack
        .issue_key(
            Scope::Warehouse(["mabang".to_owned(), "lax".to_owned()].into()),
            std::env::var("LOCAL_WMS_KEY").ok(),
            false,
        )
        .await?;

    let mut oauth = oauth_from_env()?;
    let callback_url = match std::env::var("CALLBACK_URL") {
        Ok(url) => url,
        Err(_) => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let url = format!("http://{address}{}", partner::CALLBACK_PATH);
            // Without credentials of its own (neither OAuth2 nor
            // CALLBACK_TOKEN), the built-in partner plays CK1's OAuth2 with
            // tokens that expire after LOCAL_PARTNER_TOKEN_SECONDS (60).
            let plays_oauth = oauth.is_none() && std::env::var_os("CALLBACK_TOKEN").is_none();
            let lifetime = match std::env::var("LOCAL_PARTNER_TOKEN_SECONDS") {
                Ok(seconds) => Duration::from_secs(
                    seconds
                        .parse()
                        .map_err(|_| "LOCAL_PARTNER_TOKEN_SECONDS is not a number")?,
                ),
                Err(_) => Duration::from_secs(60),
            };
            if plays_oauth {
                oauth = Some(local_stack::stack::OAuthClient {
                    token_url: format!("http://{address}{}", partner::TOKEN_PATH),
                    client_id: partner::CLIENT_ID.into(),
                    client_secret: partner::CLIENT_SECRET.into(),
                    refresh_token: partner::FIRST_REFRESH_TOKEN.into(),
                    max_lifetime: None,
                });
            }
            tokio::spawn(partner::serve_with(
                listener,
                plays_oauth.then(|| partner::OAuth::new(lifetime)),
            ));
            url
        }
    };
    // The deployed dispatcher's variables (CALLBACK_RETRY_DELAYS,
    // CALLBACK_MAX_POSTS, CALLBACK_TIMEOUT_SECONDS, CALLBACK_BREAKER_*), read
    // by its own code: a compressed schedule (make soak) behaves as deployed.
    let (policy, timeout) = callback_dispatch::schedule_from_env()?;
    let settings = CallbackSettings {
        url: callback_url.clone(),
        token: std::env::var("CALLBACK_TOKEN").unwrap_or_else(|_| "local-dev-token".into()),
        oauth,
        breaker: callback_dispatch::breaker_policy()?,
        timeout,
        retry_delays: Some(policy.delays),
        max_posts: Some(policy.max_posts),
    };
    // LOCAL_STATE_DIR (make run): the pipe resumes from its checkpoint there,
    // and the resource names go to its `env` file for orderctl.
    let state_dir = std::env::var_os("LOCAL_STATE_DIR").map(std::path::PathBuf::from);
    let checkpoint = state_dir
        .as_ref()
        .map(|dir| dir.join("outbox-checkpoint.json"));
    tokio::spawn(stack.outbox_pipe(checkpoint.as_deref())?.run());
    // The stream's second reader (WebhookOrderChanges), with its own positions.
    let webhook_checkpoint = state_dir
        .as_ref()
        .map(|dir| dir.join("webhook-checkpoint.json"));
    tokio::spawn(stack.webhook_fanout(webhook_checkpoint.as_deref())?.run());
    let webhook_dispatcher = stack.clone();
    tokio::spawn(async move {
        if let Err(err) = webhook_dispatcher.run_webhook_dispatcher().await {
            tracing::error!(%err, "the webhook dispatcher stopped");
        }
    });
    // Messages the SQS emulator held died with it: re-arm what was due. Only
    // when the emulator did stop, i.e. its queue is new: a queue that outlived
    // the service (make soak restarts the service, not the emulators) still
    // holds every message, and re-arming would add a second one per due
    // callback on every restart.
    let rearm = stack.store()?;
    let pace = local_stack::rearm::Pace::for_queue(
        stack.sqs.clone(),
        stack.callback_queue_url()?.to_owned(),
    );
    let queue_is_new = queue_created_within(&stack, Duration::from_secs(120)).await;
    tokio::spawn(async move {
        if !queue_is_new {
            tracing::info!("the callback queue outlived the last stop; nothing to re-arm");
            return;
        }
        if let Err(err) = local_stack::rearm::rearm_due_callbacks(&rearm, &pace).await {
            tracing::error!(%err, "could not re-arm due callbacks");
        }
    });
    let env_file = match &state_dir {
        Some(dir) => Some(write_env_file(&stack, dir)?),
        None => None,
    };
    // The template's hourly schedule of PersonalDataSweepFunction.
    let sweeper = stack.clone();
    tokio::spawn(async move {
        if let Err(err) = sweeper
            .run_personal_data_sweep(Duration::from_secs(3600))
            .await
        {
            tracing::error!(%err, "the personal-data sweep stopped");
        }
    });
    let dispatcher = stack.clone();
    tokio::spawn(async move {
        if let Err(err) = dispatcher.run_dispatcher(&settings).await {
            tracing::error!(%err, "the callback dispatcher stopped");
        }
    });

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let compact: serde_json::Value = serde_json::from_str(SAMPLE_ORDER)?;
    let order = format!("{base}/apicenter/api/order");
    println!(
        "\nOrder API listening on {base}\nCallbacks go to {callback_url}\n\n\
         Demo API keys (every request needs one):\n  \
         ERP, client \"20\":              export API_KEY={erp_key}\n  \
         warehouse, mabang and lax:     export WMS_KEY={wms_key}\n\n\
         To watch the order's webhooks, first give client \"20\" an endpoint at a local receiver:\n\n  \
         curl -s -X POST {base}/apicenter/api/webhooks -H \"Authorization: Bearer $API_KEY\" -H 'Content-Type: application/json' \\\n    \
         -d '{{\"url\":\"http://127.0.0.1:4000/hooks\"}}'\n  \
         cargo run -q -p local-stack --bin webhook-receiver -- --secret '<data.secret of the answer>' --port 4000\n\n\
         Create the spec's sample order:\n\n  curl -s -X POST {order} -H \"Authorization: Bearer $API_KEY\" \\\n    \
         -H 'Content-Type: application/json' \\\n    -d '{compact}'\n\n\
         Read it back:\n\n  curl -s {order}/mabang-test002 -H \"Authorization: Bearer $API_KEY\"\n\n\
         Ship it (the warehouse's events), then watch the callback go out:\n\n  \
         curl -s -X POST {order}/mabang-test002/events -H \"Authorization: Bearer $WMS_KEY\" -H 'Content-Type: application/json' \\\n    \
         -d '{{\"event_id\":\"e-1\",\"type\":\"shipped\",\"occurred_at\":\"{now}\",\"tracking_number\":\"YT4567890123CN\",\"logistic_provider_code\":\"jito\"}}'\n  \
         curl -s -X POST {order}/mabang-test002/events -H \"Authorization: Bearer $WMS_KEY\" -H 'Content-Type: application/json' \\\n    \
         -d '{{\"event_id\":\"e-2\",\"type\":\"handed_over\",\"occurred_at\":\"{now}\"}}'\n\n\
         {env_hint}Ctrl-C stops the service and the emulators.\n",
        env_hint = env_file.map_or_else(String::new, |path| format!(
            "The operator's tool against this stack:\n\n  source {} && cargo run -q -p orderctl -- callbacks list --status failed\n\n",
            path.display()
        )),
        erp_key = erp.key,
        wms_key = wms.key,
        // Event times must fall within the order's life (docs/api.md, "Warehouse events").
        now = shared::record::format_time(chrono::Utc::now()),
    );
    tokio::select! {
        result = stack.serve(listener) => result?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}

/// Writes `env` in `dir`: `export` lines for the endpoints, region, dummy
/// credentials and resource names, so `source .local/run/env && orderctl …`
/// talks to this stack.
/// Whether the callback queue was created less than `age` ago (by this
/// start's provisioning); `true` when the emulator cannot say.
async fn queue_created_within(stack: &Stack, age: Duration) -> bool {
    let Ok(url) = stack.callback_queue_url() else {
        return true;
    };
    let created = stack
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::CreatedTimestamp)
        .send()
        .await
        .ok()
        .and_then(|answer| {
            answer
                .attributes()?
                .get(&aws_sdk_sqs::types::QueueAttributeName::CreatedTimestamp)?
                // Seconds since the epoch; moto writes a fraction too.
                .parse::<f64>()
                .ok()
        });
    created.is_none_or(|seconds| {
        (chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - seconds) < age.as_secs_f64()
    })
}

fn write_env_file(
    stack: &Stack,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let mut lines =
        vec!["# written by make run; the emulators' ports change on every start".to_owned()];
    for name in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_EC2_METADATA_DISABLED",
    ] {
        if let Ok(value) = std::env::var(name) {
            lines.push(format!("export {name}='{value}'"));
        }
    }
    for (name, value) in [
        ("ORDERS_TABLE", stack.orders_table()?),
        ("ORDER_HISTORY_TABLE", stack.order_history_table()?),
        ("API_KEYS_TABLE", stack.resources.table("ApiKeysTable")?),
        ("LABELS_BUCKET", stack.labels_bucket()?),
        ("CALLBACK_QUEUE_URL", stack.callback_queue_url()?),
        (
            "CALLBACK_DEAD_LETTER_QUEUE_URL",
            stack.dead_letter_queue_url()?,
        ),
        // `orderctl webhooks …`.
        ("WEBHOOKS_TABLE", stack.resources.table("WebhooksTable")?),
        (
            "WEBHOOK_DELIVERY_QUEUE_URL",
            stack.resources.queue_url("WebhookDeliveryQueue")?,
        ),
    ] {
        lines.push(format!("export {name}='{value}'"));
    }
    // orderctl then accepts the local endpoints this stack delivers to.
    if stack.webhook_reach == shared::webhook::Reach::LocalNetwork {
        lines.push("export WEBHOOKS_LOCAL_NETWORK=1".to_owned());
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.join("env");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

/// `CALLBACK_TOKEN_URL`, `CALLBACK_CLIENT_ID`, `CALLBACK_CLIENT_SECRET` and
/// `CALLBACK_REFRESH_TOKEN` (all four, or none): OAuth2 credentials, put into
/// the secret on the emulator so the dispatcher refreshes its tokens as
/// deployed. `CALLBACK_TOKEN_MAX_LIFETIME_SECONDS` caps a token's life.
fn oauth_from_env() -> Result<Option<local_stack::stack::OAuthClient>, Box<dyn std::error::Error>> {
    let names = [
        "CALLBACK_TOKEN_URL",
        "CALLBACK_CLIENT_ID",
        "CALLBACK_CLIENT_SECRET",
        "CALLBACK_REFRESH_TOKEN",
    ];
    let values: Vec<Option<String>> = names.iter().map(|n| std::env::var(n).ok()).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [
        Some(token_url),
        Some(client_id),
        Some(client_secret),
        Some(refresh_token),
    ] = <[Option<String>; 4]>::try_from(values).map_err(|_| "four values")?
    else {
        return Err(format!("set all of {} for OAuth2, or none", names.join(", ")).into());
    };
    let max_lifetime = std::env::var("CALLBACK_TOKEN_MAX_LIFETIME_SECONDS")
        .ok()
        .map(|s| s.parse().map(Duration::from_secs))
        .transpose()
        .map_err(|_| "CALLBACK_TOKEN_MAX_LIFETIME_SECONDS is not a number")?;
    Ok(Some(local_stack::stack::OAuthClient {
        token_url,
        client_id,
        client_secret,
        refresh_token,
        max_lifetime,
    }))
}
