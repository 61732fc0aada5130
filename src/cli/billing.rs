//! Billing's options (shared by `serve`, `dev` and `billing sync`) and
//! `bulkhead billing sync`.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::migrate::parse_duration_or_zero;
use super::output::json;
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::billing::{Billing, BillingSettings, StripeSettings};
use crate::secret::Secret;

/// Stripe and billing options. Keys are best given in the environment
/// (`BULKHEAD_STRIPE_*`): a command line is visible to every local user.
#[derive(Args, Clone, Default)]
pub struct BillingArgs {
    /// Stripe secret key (`sk_test_…` or `sk_live_…`). Without one, billing
    /// routes answer 503 `billing_disabled` (`dev` uses its built-in Stripe
    /// stand-in instead). Never printed or logged.
    #[arg(long, env = "BULKHEAD_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// The signing secret of the webhook endpoint (`whsec_…`; `stripe
    /// listen` prints one). Without it webhooks are refused.
    #[arg(long, env = "BULKHEAD_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// The Stripe price (`price_…`) Checkout sells for the pro plan.
    /// Required with a secret key.
    #[arg(long, env = "BULKHEAD_STRIPE_PRICE_PRO")]
    pub stripe_price_pro: Option<String>,
    /// Stripe's API base URL (default: Stripe's own). For a Stripe-compatible
    /// test server.
    #[arg(long, env = "BULKHEAD_STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// How long a subscription past due (a failed payment) keeps the tenant
    /// on pro before it moves to free. `0`: not at all.
    #[arg(long, env = "BULKHEAD_BILLING_GRACE", default_value = "7d", value_parser = parse_duration_or_zero)]
    pub billing_grace: Duration,
    /// How often `serve` re-reads every subscription from Stripe to repair
    /// what a missed webhook left behind. `0`: never.
    #[arg(long, env = "BULKHEAD_BILLING_SYNC_EVERY", default_value = "1h", value_parser = parse_duration_or_zero)]
    pub billing_sync_every: Duration,
}

impl BillingArgs {
    /// The settings these options give (`stripe: None` without a key).
    pub fn settings(&self) -> Result<BillingSettings, CliError> {
        let stripe = match &self.stripe_secret_key {
            None => {
                if self.stripe_price_pro.is_some() || self.stripe_webhook_secret.is_some() {
                    return Err(CliError::Usage(
                        "Stripe options are given without BULKHEAD_STRIPE_SECRET_KEY".into(),
                    ));
                }
                None
            }
            Some(key) => {
                let price_pro = self.stripe_price_pro.clone().ok_or_else(|| {
                    CliError::Usage(
                        "BULKHEAD_STRIPE_PRICE_PRO (--stripe-price-pro) is required with a Stripe key"
                            .into(),
                    )
                })?;
                let api_base = match &self.stripe_api_base {
                    Some(base) => {
                        let parsed = url::Url::parse(base).map_err(|e| {
                            CliError::Usage(format!("invalid --stripe-api-base `{base}`: {e}"))
                        })?;
                        if !matches!(parsed.scheme(), "http" | "https") {
                            return Err(CliError::Usage(format!(
                                "invalid --stripe-api-base `{base}`: use an http(s) URL"
                            )));
                        }
                        // The client joins paths to it: it must end with `/`.
                        Some(format!("{}/", base.trim_end_matches('/')))
                    }
                    None => None,
                };
                crate::billing::stripe::Stripe::try_new(key, api_base.as_deref())
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                Some(StripeSettings {
                    secret_key: Secret::new(key.clone()),
                    webhook_secret: self.stripe_webhook_secret.clone().map(Secret::new),
                    price_pro,
                    api_base,
                    test_mode: false,
                })
            }
        };
        Ok(BillingSettings {
            stripe,
            grace: self.billing_grace,
            sync_every: self.billing_sync_every,
            ..BillingSettings::default()
        })
    }
}

/// `bulkhead billing …`.
#[derive(Subcommand)]
pub enum BillingCommand {
    /// Re-read every subscription (or one tenant's) from Stripe and repair
    /// what differs: the subscription mirror, and the plan it gives (a
    /// missed webhook, an outage). Says what it changed. `serve` does this
    /// every --billing-sync-every.
    Sync(SyncArgs),
}

/// `bulkhead billing sync`.
#[derive(Args)]
pub struct SyncArgs {
    /// Only this tenant (its slug).
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long, env = "BULKHEAD_JSON")]
    pub json: bool,
    #[command(flatten)]
    pub billing: BillingArgs,
}

pub async fn run(app: &Bulkhead, cmd: BillingCommand) -> CliResult {
    match cmd {
        BillingCommand::Sync(args) => sync(app, args).await,
    }
}

async fn sync(app: &Bulkhead, args: SyncArgs) -> CliResult {
    let settings = args.billing.settings()?;
    if settings.stripe.is_none() {
        return Err(CliError::Usage(
            "billing sync needs BULKHEAD_STRIPE_SECRET_KEY (and BULKHEAD_STRIPE_PRICE_PRO)".into(),
        ));
    }
    let p = &app.provisioner;
    let control = p.control().clone();
    let only = match &args.tenant {
        Some(slug) => Some(
            control
                .tenant_by_slug(
                    &crate::control::Slug::parse(slug)
                        .map_err(|e| CliError::Usage(format!("invalid slug `{slug}`: {e}")))?,
                )
                .await
                .map_err(|e| CliError::Provision(e.into()))?
                .ok_or_else(|| CliError::Exit(1, format!("no tenant `{slug}`")))?
                .id,
        ),
        None => None,
    };
    let pools = super::tenant::cli_pools(app);
    let billing = Billing::new(settings, control, p.clone(), pools.clone())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let result = billing.sync(only).await;
    pools.close_all().await;
    let report = result.map_err(|e| CliError::Other(crate::report::chain(&e).to_string()))?;
    if args.json {
        json(&report)?;
    } else {
        for (tenant, change) in &report.changed {
            for (id, before, now) in &change.subscriptions {
                let before = before.as_deref().unwrap_or("(not known here)");
                println!("{tenant}: subscription {id} {before} → {now}");
            }
            if let Some((from, to)) = change.plan {
                println!("{tenant}: plan {from} → {to}");
            }
        }
        for (tenant, why) in &report.failed {
            println!("{tenant}: not checked: {why}");
        }
        println!(
            "checked {} billed tenant(s): {} repaired, {} not checked",
            report.checked,
            report.changed.len(),
            report.failed.len()
        );
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Exit(
            1,
            "some tenants could not be checked".into(),
        ))
    }
}

/// `bulkhead tenant comp`: pro without a subscription, until a time.
#[derive(Args, Debug)]
pub struct CompArgs {
    /// The tenant's slug.
    pub slug: String,
    /// Pro through this day (UTC: `2027-01-31` lasts until 2027-02-01
    /// 00:00 UTC) or until this time (RFC 3339). It ends by itself; the
    /// plan then returns to what billing says.
    #[arg(long)]
    pub until: String,
    /// Why (kept in the platform's audit log and shown in the tenant's).
    #[arg(long)]
    pub reason: String,
    /// As `serve`'s: whether a past-due subscription still counts.
    #[arg(long, env = "BULKHEAD_BILLING_GRACE", default_value = "7d", value_parser = parse_duration_or_zero)]
    pub billing_grace: Duration,
}

/// `bulkhead tenant cancel-subscription`.
#[derive(Args)]
pub struct CancelArgs {
    /// The tenant's slug.
    pub slug: String,
    /// Why (kept in the platform's audit log and shown in the tenant's).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub billing: BillingArgs,
}

impl std::fmt::Debug for CancelArgs {
    /// Never the Stripe keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelArgs")
            .field("slug", &self.slug)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// `bulkhead tenant uncomp`: end a comp now.
#[derive(Args, Debug)]
pub struct UncompArgs {
    /// The tenant's slug.
    pub slug: String,
    /// Why (kept in the platform's audit log and shown in the tenant's).
    #[arg(long)]
    pub reason: String,
    /// As `serve`'s: whether a past-due subscription still counts.
    #[arg(long, env = "BULKHEAD_BILLING_GRACE", default_value = "7d", value_parser = parse_duration_or_zero)]
    pub billing_grace: Duration,
}

/// `--until`: a day (through its end, UTC) or an RFC 3339 time, in the future.
fn parse_until(text: &str) -> Result<time::OffsetDateTime, CliError> {
    use time::format_description::well_known::Rfc3339;
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let until = match time::Date::parse(text.trim(), &day) {
        Ok(date) => date
            .next_day()
            .ok_or_else(|| CliError::Usage(format!("--until `{text}` is too far")))?
            .midnight()
            .assume_utc(),
        Err(_) => time::OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
            CliError::Usage(format!(
                "--until `{text}`: give a day (2027-01-31) or a time (2027-01-31T18:00:00Z)"
            ))
        })?,
    };
    if until <= time::OffsetDateTime::now_utc() {
        return Err(CliError::Usage(format!("--until `{text}` is in the past")));
    }
    Ok(until)
}

pub(super) fn reason(text: &str) -> Result<&str, CliError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(CliError::Usage("--reason must be 1-500 characters".into()));
    }
    Ok(text)
}

/// Billing for a CLI command that only settles plans (no Stripe): gives
/// what it changed to the tenant at once (limits, audit log).
async fn tell_tenant(app: &Bulkhead, grace: Duration, tenant: crate::control::TenantId) {
    let p = &app.provisioner;
    let control = p.control().clone();
    let pools = super::tenant::cli_pools(app);
    let settings = BillingSettings {
        grace,
        ..BillingSettings::default()
    };
    if let Ok(billing) = Billing::new(settings, control, p.clone(), pools.clone()) {
        billing.deliver(Some(tenant)).await;
    }
    pools.close_all().await;
}

/// `bulkhead tenant cancel-subscription`: through billing, as the admin
/// API's action; one row in each audit log.
pub async fn cancel_subscription(app: &Bulkhead, args: CancelArgs) -> CliResult {
    let why = reason(&args.reason)?;
    let tenant = super::tenant::live_tenant(app, &args.slug).await?;
    let settings = args.billing.settings()?;
    if settings.stripe.is_none() {
        return Err(CliError::Usage(
            "cancel-subscription needs BULKHEAD_STRIPE_SECRET_KEY (and BULKHEAD_STRIPE_PRICE_PRO)"
                .into(),
        ));
    }
    let p = &app.provisioner;
    let control = p.control().clone();
    let pools = super::tenant::cli_pools(app);
    let billing = Billing::new(settings, control.clone(), p.clone(), pools.clone())
        .map_err(|e| CliError::Other(e.to_string()))?;
    let canceled = billing.cancel(tenant.id).await;
    pools.close_all().await;
    let Some(id) = canceled.map_err(|e| CliError::Other(e.to_string()))? else {
        return Err(CliError::Exit(
            1,
            format!("tenant `{}` has no live subscription", tenant.slug),
        ));
    };
    let detail = serde_json::json!({"reason": why, "subscription": id});
    control
        .audit(
            &super::tenant::cli_actor(),
            "tenant.cancel_subscription",
            Some(tenant.id),
            detail.clone(),
        )
        .await
        .map_err(|e| CliError::Provision(e.into()))?;
    super::tenant::tenant_log(app, &tenant, "tenant.cancel_subscription", detail).await?;
    let now = super::tenant::live_tenant(app, &args.slug).await?;
    println!(
        "tenant `{}`: subscription {id} canceled; its plan is {}",
        now.slug, now.plan
    );
    Ok(())
}

/// Who a CLI action is by: `platform:<OS user>` in the tenant's audit log
/// (the vendor's staff), `cli:<OS user>` in the platform's (as every CLI
/// action).
fn actors() -> (String, String) {
    let user = crate::app::os_user();
    (format!("platform:{user}"), format!("cli:{user}"))
}

pub async fn comp(app: &Bulkhead, args: CompArgs) -> CliResult {
    let tenant = super::tenant::live_tenant(app, &args.slug).await?;
    let until = parse_until(&args.until)?;
    let why = reason(&args.reason)?;
    let (by, actor) = actors();
    let control = app.provisioner.control();
    let fail = |e: crate::control::ControlError| CliError::Provision(e.into());
    let change = control
        .grant_comp(tenant.id, until, why, &by, args.billing_grace)
        .await
        .map_err(fail)?;
    let until_text = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    control
        .audit(
            &actor,
            "tenant.comp",
            Some(tenant.id),
            serde_json::json!({"until": until_text, "reason": why}),
        )
        .await
        .map_err(fail)?;
    tell_tenant(app, args.billing_grace, tenant.id).await;
    let moved = if change.is_some() {
        format!(" (was {})", tenant.plan)
    } else {
        String::new()
    };
    println!(
        "tenant `{}` is on pro until {until_text}{moved}",
        tenant.slug
    );
    Ok(())
}

pub async fn uncomp(app: &Bulkhead, args: UncompArgs) -> CliResult {
    let tenant = super::tenant::live_tenant(app, &args.slug).await?;
    let why = reason(&args.reason)?;
    let (by, actor) = actors();
    let control = app.provisioner.control();
    let fail = |e: crate::control::ControlError| CliError::Provision(e.into());
    if !control
        .end_comp(tenant.id, why, &by, args.billing_grace)
        .await
        .map_err(fail)?
    {
        return Err(CliError::Exit(
            1,
            format!("tenant `{}` has no comp", tenant.slug),
        ));
    }
    control
        .audit(
            &actor,
            "tenant.uncomp",
            Some(tenant.id),
            serde_json::json!({"reason": why}),
        )
        .await
        .map_err(fail)?;
    tell_tenant(app, args.billing_grace, tenant.id).await;
    let now = control
        .tenant(tenant.id)
        .await
        .map_err(fail)?
        .map_or(tenant.plan, |t| t.plan);
    println!("tenant `{}`: comp ended, plan {now}", tenant.slug);
    Ok(())
}
