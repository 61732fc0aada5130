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
    let demo_user = demo_user(app).await?;
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
        let control = p.control();
        let map = |e: crate::control::ControlError| CliError::Provision(e.into());
        if control
            .membership_role(demo_user, tenant.id)
            .await
            .map_err(map)?
            .is_none()
        {
            control
                .add_membership(demo_user, tenant.id, crate::control::Role::Owner)
                .await
                .map_err(map)?;
        }
        // A fresh token each run: the previous one cannot be shown again.
        control
            .revoke_tokens_named(tenant.id, "dev")
            .await
            .map_err(map)?;
        let (_, token) = crate::auth::Tokens::create(control, tenant.id, "admin", "dev").await?;
        tokens.push((slug, mode, token));
    }
    let operator = demo_operator(app).await?;
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
    println!("sign up a new organisation: http://{base}:{port}/");
    println!("log in on either as {DEV_USER}, password `{DEV_USER_PASSWORD}` (an owner; dev only)");
    for (slug, mode, token) in &tokens {
        println!("{slug} ({mode} mode): http://{slug}.{base}:{port}/login");
        println!(
            "  curl -H 'Authorization: Bearer {}' http://{slug}.{base}:{port}{}",
            token.expose(),
            app.product.demo().path
        );
    }
    println!(
        "\nadmin (operator {DEV_OPERATOR}, password `{DEV_OPERATOR_PASSWORD}`; dev only): \
         http://admin.{base}:{port}/admin/login"
    );
    println!("  TOTP secret {} ({})", operator.0, operator.1);
    println!(
        "  or scan it:\n{}",
        crate::auth::operators::qr_code(&operator.1, false)
    );
    println!(
        "  the code: your authenticator app's, or `oathtool --totp -b {}`; the API: \
         POST http://admin.{base}:{port}/api/admin/login {{\"email\", \"password\", \"totp\"}}",
        operator.0
    );
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

/// The demo operator of `dev`, and its password (dev only: printed).
const DEV_OPERATOR: &str = "ops@bulkhead.localhost";
/// The demo user of `dev`, owner of acme and globex, and its password
/// (dev only: printed, and set again at every run).
const DEV_USER: &str = "demo@bulkhead.localhost";
const DEV_USER_PASSWORD: &str = "dev demo passphrase";

/// The demo user, made on the first run, its password set on every one.
async fn demo_user(app: &Bulkhead) -> Result<uuid::Uuid, CliError> {
    let control = app.provisioner.control();
    let map = |e: crate::control::ControlError| CliError::Provision(e.into());
    let hash = crate::auth::passwords::hash(DEV_USER_PASSWORD);
    let user = match control.user_by_email(DEV_USER).await.map_err(map)? {
        Some(user) => {
            control
                .set_password_hash(user.id, &hash)
                .await
                .map_err(map)?;
            user
        }
        None => control
            .insert_user(DEV_USER, "Demo Owner", &hash)
            .await
            .map_err(map)?
            .ok_or_else(|| CliError::Other("the demo user could not be made".into()))?,
    };
    Ok(user.id)
}
const DEV_OPERATOR_PASSWORD: &str = "dev operator passphrase";

/// The demo operator (admin), enrolled with [`DEV_OPERATOR_PASSWORD`]: made
/// on the first run, kept (with its TOTP secret) on the next ones. Its
/// TOTP secret in base32 and as an `otpauth://` URI.
async fn demo_operator(app: &Bulkhead) -> Result<(String, String), CliError> {
    use crate::auth::{operators, passwords, sessions};
    use crate::control::{Email, OperatorRole};
    let control = app.provisioner.control();
    let map = |e: crate::control::ControlError| CliError::Provision(e.into());
    let email = Email::parse(DEV_OPERATOR).map_err(|e| CliError::Other(e.to_string()))?;
    let enrolled = |s: &Option<crate::control::OperatorSecrets>| {
        s.as_ref()
            .is_some_and(|s| s.operator.enrolled_at.is_some() && s.operator.disabled_at.is_none())
    };
    let mut found = control.operator_secrets(&email).await.map_err(map)?;
    if !enrolled(&found) {
        let token = operators::new_enrolment_token();
        let hash = sessions::hash(&token);
        let op = match &found {
            None => control
                .insert_operator(&email, OperatorRole::Admin, &hash)
                .await
                .map_err(map)?,
            Some(_) => {
                control.enable_operator(&email).await.map_err(map)?;
                control
                    .reset_operator_mfa(&email, &hash)
                    .await
                    .map_err(map)?
            }
        }
        .ok_or_else(|| CliError::Other("the demo operator could not be made".into()))?;
        let password = passwords::hash(DEV_OPERATOR_PASSWORD);
        let codes: Vec<[u8; 32]> = operators::new_recovery_codes()
            .iter()
            .map(|c| operators::recovery_hash(c))
            .collect();
        control
            .begin_enrolment(&hash, &password, &operators::new_seed(), &codes)
            .await
            .map_err(map)?;
        control.complete_enrolment(op.id, 0).await.map_err(map)?;
        control
            .audit(
                &app.provisioner.settings().actor,
                "operator.create",
                None,
                serde_json::json!({"operator": op.id, "email": op.email, "role": op.role, "dev": true}),
            )
            .await
            .map_err(map)?;
        found = control.operator_secrets(&email).await.map_err(map)?;
    }
    let seed = found
        .and_then(|f| f.totp_seed)
        .ok_or_else(|| CliError::Other("the demo operator has no TOTP secret".into()))?;
    let secret = app.provisioner.secret().operator_totp_secret(&seed);
    Ok((
        operators::base32_secret(&secret),
        operators::otpauth_uri(&secret, DEV_OPERATOR),
    ))
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
