//! `bulkhead operator ...`: the platform's own staff, who log in on
//! admin.<base> with a password and a TOTP code. Made, listed, disabled and
//! re-enrolled from here only; every action is in the platform audit log
//! with the OS user as its actor.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{json, table, when};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::auth::{operators, sessions};
use crate::control::{ControlError, ENROLMENT_TTL, Email, OperatorRole};
use crate::routing::HostName;

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Create an operator and print its one-time enrolment link (valid 72
    /// hours), where it sets its password and TOTP app.
    Create {
        /// The operator's e-mail address.
        email: String,
        /// support (reads; breaks glass read-only) or admin (also changes things).
        #[arg(long)]
        role: OperatorRole,
        #[command(flatten)]
        link: LinkArgs,
    },
    /// List operators (never a secret).
    List {
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
    /// Disable an operator: its sessions end and it can no longer log in.
    Disable {
        /// The operator's e-mail address.
        email: String,
    },
    /// Void an operator's TOTP secret and recovery codes, end its sessions,
    /// and print a new enrolment link (a lost phone).
    ResetMfa {
        /// The operator's e-mail address.
        email: String,
        #[command(flatten)]
        link: LinkArgs,
    },
}

/// Where enrolment links point: admin.<base domain>.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The base domain `serve` runs with: links point at admin.<base domain>
    /// [required].
    #[arg(long, env = "BULKHEAD_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// Links with http://, for a server run with --insecure-cookies (dev).
    #[arg(long, env = "BULKHEAD_INSECURE_COOKIES")]
    pub insecure_cookies: bool,
}

impl LinkArgs {
    /// The enrolment link for `token`: the token in the fragment, which
    /// browsers send to no server and no `Referer` carries.
    fn link(&self, token: &str) -> Result<String, CliError> {
        let base = self.base_domain.as_deref().ok_or_else(|| {
            CliError::Usage("BULKHEAD_BASE_DOMAIN (--base-domain) is required".into())
        })?;
        let base = HostName::parse(base)
            .map_err(|e| CliError::Usage(format!("invalid base domain `{base}`: {e}")))?;
        let scheme = if self.insecure_cookies {
            "http"
        } else {
            "https"
        };
        Ok(format!("{scheme}://admin.{base}/enrol#token={token}"))
    }
}

fn email(raw: &str) -> Result<Email, CliError> {
    Email::parse(raw).map_err(|e| CliError::Usage(format!("`{raw}`: {e}")))
}

fn map(e: ControlError) -> CliError {
    CliError::Provision(e.into())
}

fn unknown(email: &Email) -> CliError {
    CliError::Usage(format!("no operator `{email}`"))
}

pub async fn run(app: &Bulkhead, cmd: OperatorCommand) -> CliResult {
    let control = app.provisioner.control();
    let actor = &app.provisioner.settings().actor;
    match cmd {
        OperatorCommand::Create {
            email: raw,
            role,
            link,
        } => {
            let email = email(&raw)?;
            let token = operators::new_enrolment_token();
            let url = link.link(&token)?;
            let op = control
                .insert_operator(&email, role, &sessions::hash(&token))
                .await
                .map_err(map)?
                .ok_or_else(|| CliError::Usage(format!("operator `{email}` already exists")))?;
            control
                .audit(
                    actor,
                    "operator.create",
                    None,
                    json!({"operator": op.id, "email": op.email, "role": op.role}),
                )
                .await
                .map_err(map)?;
            print_link(&op.email, role, &url);
            Ok(())
        }
        OperatorCommand::List { json: as_json } => {
            let ops = control.operators().await.map_err(map)?;
            if as_json {
                return json(&ops);
            }
            let rows: Vec<Vec<String>> = ops
                .iter()
                .map(|o| {
                    vec![
                        o.email.clone(),
                        o.role.to_string(),
                        o.enrolled_at.map_or("-".into(), when),
                        o.disabled_at.map_or("-".into(), when),
                        when(o.created_at),
                    ]
                })
                .collect();
            table(&["EMAIL", "ROLE", "ENROLLED", "DISABLED", "CREATED"], &rows);
            Ok(())
        }
        OperatorCommand::Disable { email: raw } => {
            let email = email(&raw)?;
            let op = control
                .disable_operator(&email)
                .await
                .map_err(map)?
                .ok_or_else(|| unknown(&email))?;
            control
                .audit(
                    actor,
                    "operator.disable",
                    None,
                    json!({"operator": op.id, "email": op.email}),
                )
                .await
                .map_err(map)?;
            println!("disabled operator {email}: its sessions have ended");
            Ok(())
        }
        OperatorCommand::ResetMfa { email: raw, link } => {
            let email = email(&raw)?;
            let token = operators::new_enrolment_token();
            let url = link.link(&token)?;
            let op = control
                .reset_operator_mfa(&email, &sessions::hash(&token))
                .await
                .map_err(map)?
                .ok_or_else(|| unknown(&email))?;
            control
                .audit(
                    actor,
                    "operator.reset_mfa",
                    None,
                    json!({"operator": op.id, "email": op.email}),
                )
                .await
                .map_err(map)?;
            eprintln!("the old TOTP secret and recovery codes of {email} are void");
            print_link(&op.email, op.role, &url);
            Ok(())
        }
    }
}

/// The link on stdout (for scripts), what it is on stderr.
fn print_link(email: &str, role: OperatorRole, url: &str) {
    eprintln!(
        "operator {email} ({role}): enrolment link, shown once, valid {} hours:",
        ENROLMENT_TTL.as_secs() / 3600
    );
    println!("{url}");
    eprintln!(
        "enrol: POST /api/admin/enrol {{\"token\", \"password\"}}, then \
         POST /api/admin/enrol/confirm {{\"token\", \"code\"}} on admin.<base>"
    );
}
