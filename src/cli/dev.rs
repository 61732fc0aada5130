//! `bulkhead dev`: the demo fleet (acme, globex), served on localhost with
//! every option of `serve`.

use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::control::{Mode, Plan};
use crate::provision::{CreateOutcome, CreateRequest};

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
    println!("\nserving on http://{} (Ctrl-C to stop)", settings.listen);
    super::serve::serve(app, &settings).await
}

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
