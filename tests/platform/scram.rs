//! The SCRAM-SHA-256 verifiers bulkhead computes for tenant roles, judged by
//! the only judge that matters: PostgreSQL, logging in with the plain
//! password over SCRAM (as tokio-postgres does), and refusing a wrong one.

use std::str::FromStr;

use bulkhead::secret::{TENANT_SCRAM_ITERATIONS, random_hex, scram_verifier};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

/// Logs in to the test cluster as `role` with `password`; `current_user`.
async fn log_in(role: &str, password: &str) -> Result<String, tokio_postgres::Error> {
    let mut config = Config::from_str(&crate::common::pg().url("postgres")).expect("valid URL");
    config.user(role).password(password);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client
        .query_one("SELECT current_user::text", &[])
        .await?
        .get(0))
}

#[tokio::test]
async fn postgres_logs_in_with_the_password_of_a_precomputed_verifier_and_refuses_others() {
    let admin = crate::common::connect(&crate::common::pg().url("postgres"))
        .await
        .unwrap();
    // A tenant's password (64 hex digits) at the tenants' iteration count,
    // and a typed one at PostgreSQL's own default count.
    for (password, iterations) in [
        (random_hex(32), TENANT_SCRAM_ITERATIONS),
        ("correct horse battery staple!".to_string(), 4096),
    ] {
        let role = format!("scram_{}", random_hex(4));
        let verifier = scram_verifier(&password, iterations);
        admin
            // CONNECT granted by name: the provisioner's lockdown of this
            // shared test cluster takes it from PUBLIC.
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{verifier}';
                 GRANT CONNECT ON DATABASE postgres TO {role}"
            ))
            .await
            .unwrap();
        // Kept as given, not taken for a plain password and hashed again.
        let stored: String = admin
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&role],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored, verifier);

        let who = log_in(&role, &password).await;
        assert_eq!(who.as_deref().ok(), Some(role.as_str()), "{who:?}");
        let mut wrong = password.clone().into_bytes();
        wrong[0] ^= 1;
        let wrong = String::from_utf8(wrong).unwrap();
        for attempt in [wrong.as_str(), "", &password[1..]] {
            let e = log_in(&role, attempt)
                .await
                .expect_err("a wrong password must be refused");
            assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{e}");
        }
        admin
            .batch_execute(&format!(
                "REVOKE CONNECT ON DATABASE postgres FROM {role}; DROP ROLE {role}"
            ))
            .await
            .unwrap();
    }
}
