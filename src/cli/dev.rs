//! `bulkhead dev`: the demo fleet (acme, globex), served on localhost with
//! every option of `serve`.

use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::billing::StripeSettings;
use crate::billing::standin::{StandIn, StandInSettings};
use crate::control::{Mode, Plan};
use crate::provision::{CreateOutcome, CreateRequest};
use crate::secret::Secret;

/// `dev`'s serve settings: `serve`'s options with dev's defaults (loopback,
/// `localhost`, cookies without `Secure`: dev serves plain HTTP).
pub fn dev_settings(
    args: &super::DevArgs,
    outbox: std::path::PathBuf,
) -> Result<crate::serve::ServeSettings, CliError> {
    let defaults = super::serve::ServeDefaults {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        base_domain: Some("localhost"),
    };
    let mut serve = args.serve.clone();
    serve.insecure_cookies = true;
    let mut settings = serve.settings(&defaults)?;
    settings.outbox = Some(outbox);
    Ok(settings)
}

/// `bulkhead dev`: the demo fleet, served on localhost.
pub async fn dev(
    app: &Bulkhead,
    args: &super::DevArgs,
    mut settings: crate::serve::ServeSettings,
) -> CliResult {
    let p = &app.provisioner;
    let mut tokens = Vec::new();
    for (slug, name, mode) in [
        ("acme", "Acme Corporation", Mode::Database),
        ("globex", "Globex Inc.", Mode::Schema),
    ] {
        let outcome = p
            .create(&CreateRequest {
                slug: slug.into(),
                display_name: Some(name.into()),
                mode,
                plan: Plan::Pro,
                server: None,
            })
            .await?;
        let tenant = match outcome {
            CreateOutcome::Created(t) | CreateOutcome::AlreadyExists(t) => t,
        };
        seed_demo_data(app, slug).await?;
        // A fresh token each run: the previous one cannot be shown again.
        let control = p.control();
        let map = |e: crate::control::ControlError| CliError::Provision(e.into());
        control
            .revoke_tokens_named(tenant.id, "dev")
            .await
            .map_err(map)?;
        let (_, token) = crate::auth::Tokens::create(control, tenant.id, "admin", "dev").await?;
        tokens.push((slug, mode, token));
    }
    if let Some(cluster) = &app.cluster {
        println!(
            "embedded PostgreSQL {} on 127.0.0.1:{} (data in {})",
            cluster.binaries.major,
            cluster.port,
            cluster.data_directory().display()
        );
    }
    println!();
    let tenants = p
        .control()
        .tenants(false)
        .await
        .map_err(|e| CliError::Provision(e.into()))?;
    super::tenant::print_tenants(&tenants);
    let port = settings.listen.port();
    let base = &settings.base_domain;
    println!();
    for (slug, mode, token) in &tokens {
        println!("{slug} ({mode} mode): http://{slug}.{base}:{port}");
        println!(
            "  curl -H 'Authorization: Bearer {}' http://{slug}.{base}:{port}{}",
            token.expose(),
            app.product.demo().path
        );
    }
    if args.no_serve {
        return Ok(());
    }
    if let Some(outbox) = &settings.outbox {
        println!("mail (invitations) is written to {}", outbox.display());
    }
    // The default metrics address may be taken (a second `dev`): say so and
    // serve without it. An address given explicitly must be had.
    if args.serve.metrics_listen.is_none()
        && let Some(at) = settings.metrics_listen
        && std::net::TcpListener::bind(at).is_err()
    {
        println!("metrics: {at} is taken, /metrics is off (set BULKHEAD_METRICS_LISTEN)");
        settings.metrics_listen = None;
    }
    // No Stripe key: billing talks to the stand-in, in this process.
    let _standin = if settings.billing.stripe.is_none() {
        let (standin, stripe) = start_standin(&settings).await?;
        println!(
            "billing: TEST MODE, no real payments: a Stripe stand-in at {} (checkout pages there; \
             set BULKHEAD_STRIPE_SECRET_KEY for Stripe's own test mode)",
            standin.base_url()
        );
        settings.billing.stripe = Some(stripe);
        Some(standin)
    } else {
        println!(
            "billing: Stripe ({})",
            if args.serve.billing.stripe_api_base.is_some() {
                "at --stripe-api-base"
            } else {
                "api.stripe.com"
            }
        );
        None
    };
    println!("\nserving on http://{} (Ctrl-C to stop)", settings.listen);
    super::serve::serve(app, &settings).await
}

/// The Stripe stand-in for `dev`: on a free loopback port, sending its
/// webhooks to this server's apex host, with keys made for this run.
async fn start_standin(
    settings: &crate::serve::ServeSettings,
) -> Result<(StandIn, StripeSettings), CliError> {
    use rand::Rng;
    let mut rng = rand::rng();
    let key = format!("sk_test_dev_{:016x}", rng.random::<u64>());
    let webhook_secret = format!("whsec_dev_{:032x}", rng.random::<u128>());
    let port = settings.listen.port();
    let host = format!("{}:{port}", settings.base_domain);
    let target = if settings.listen.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    } else {
        settings.listen
    };
    let standin = StandIn::start(StandInSettings {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        secret_key: key.clone(),
        webhook_url: format!("http://{target}/webhooks/stripe"),
        webhook_host: Some(host),
        webhook_secret: webhook_secret.clone(),
        prices: vec![DEV_PRICE.into()],
    })
    .await
    .map_err(|source| CliError::Serve {
        what: "cannot start the Stripe stand-in".into(),
        source,
    })?;
    let stripe = StripeSettings {
        secret_key: Secret::new(key),
        webhook_secret: Some(Secret::new(webhook_secret)),
        price_pro: DEV_PRICE.into(),
        api_base: Some(standin.base_url()),
        test_mode: true,
    };
    Ok((standin, stripe))
}

/// The pro plan's price at the stand-in.
const DEV_PRICE: &str = "price_bulkhead_pro_dev";

/// The product's demo data (see [`crate::app::Builder::demo`]), written as
/// the tenant.
async fn seed_demo_data(app: &Bulkhead, slug: &str) -> CliResult {
    let Some(sql) = &app.product.demo().sql else {
        return Ok(());
    };
    let url = app.provisioner.connect_url(slug).await?;
    let config =
        crate::pg::PgConfig::parse(url.expose()).map_err(|e| CliError::Other(e.to_string()))?;
    let (client, connection) = config.connect().await.map_err(CliError::Demo)?;
    tokio::spawn(connection);
    client.batch_execute(sql).await.map_err(CliError::Demo)
}
