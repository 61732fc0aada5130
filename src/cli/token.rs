//! `bulkhead token ...`: API tokens for machine clients, made and revoked by
//! an operator.

use clap::Subcommand;

use super::output::{json, table, when};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::auth::Tokens;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a tenant; it is printed once and only its hash is kept.
    Create {
        #[arg(long, env = "BULKHEAD_TOKEN_TENANT")]
        tenant: String,
        /// admin, member or viewer
        #[arg(long, env = "BULKHEAD_TOKEN_ROLE", default_value = "member")]
        role: String,
        #[arg(long, env = "BULKHEAD_TOKEN_NAME", default_value = "cli")]
        name: String,
    },
    /// List a tenant's tokens (never the tokens themselves).
    List {
        #[arg(long, env = "BULKHEAD_TOKEN_TENANT")]
        tenant: String,
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke {
        #[arg(long, env = "BULKHEAD_TOKEN_TENANT")]
        tenant: String,
        id: String,
    },
}

pub async fn token(app: &Bulkhead, cmd: TokenCommand) -> CliResult {
    let control = app.provisioner.control();
    let map = |e: crate::control::ControlError| CliError::Provision(e.into());
    match cmd {
        TokenCommand::Create { tenant, role, name } => {
            let t = super::tenant::live_tenant(app, &tenant).await?;
            let (row, secret) = Tokens::create(control, t.id, &role, &name)
                .await
                .map_err(|e| match e {
                    crate::auth::TokenError::Control(c) => map(c),
                    other => CliError::Usage(other.to_string()),
                })?;
            control
                .audit(
                    &app.provisioner.settings().actor,
                    "token.create",
                    Some(t.id),
                    serde_json::json!({"token": row.id, "role": row.role, "name": row.name}),
                )
                .await
                .map_err(map)?;
            eprintln!("token {} ({} on {}), shown once:", row.id, row.role, t.slug);
            println!("{}", secret.expose());
            Ok(())
        }
        TokenCommand::List {
            tenant,
            json: as_json,
        } => {
            let t = super::tenant::live_tenant(app, &tenant).await?;
            let rows = control.tokens(t.id).await.map_err(map)?;
            if as_json {
                return json(&rows);
            }
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.role.clone(),
                        r.name.clone(),
                        when(r.created_at),
                        r.revoked_at.map_or("-".into(), when),
                    ]
                })
                .collect();
            table(&["ID", "ROLE", "NAME", "CREATED", "REVOKED"], &rows);
            Ok(())
        }
        TokenCommand::Revoke { tenant, id } => {
            let t = super::tenant::live_tenant(app, &tenant).await?;
            let id: uuid::Uuid = id
                .parse()
                .map_err(|_| CliError::Usage(format!("`{id}` is not a token id")))?;
            if !control.revoke_token(t.id, id).await.map_err(map)? {
                return Err(CliError::Usage(format!(
                    "tenant `{}` has no live token {id}",
                    t.slug
                )));
            }
            control
                .audit(
                    &app.provisioner.settings().actor,
                    "token.revoke",
                    Some(t.id),
                    serde_json::json!({"token": id}),
                )
                .await
                .map_err(map)?;
            println!("revoked token {id}");
            Ok(())
        }
    }
}
