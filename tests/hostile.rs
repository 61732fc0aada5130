//! Hostile SQL as a tenant: every statement below runs over a connection logged
//! in as an attacker tenant's runtime role, while victim tenants exist on the
//! same server, in both isolation modes. Each must fail (or, for the catalog
//! reads, return nothing of the victim), and the victims' data must be intact.

mod common;

use bulkhead::control::Mode;
use common::{TestFleet, connect, pg};

/// `{victim}` = victim's runtime role, `{victim_owner}`, `{victim_db}`,
/// `{victim_schema}`, `{own_owner}`: all replaced by quoted identifiers.
const MUST_FAIL: &[(&str, &str)] = &[
    (
        "read victim's table by qualified name",
        "SELECT * FROM {victim_schema}.projects",
    ),
    (
        "read victim's history",
        "SELECT * FROM {victim_schema}.bulkhead_schema_history",
    ),
    (
        "write victim's table",
        "INSERT INTO {victim_schema}.projects (name) VALUES ('pwned')",
    ),
    (
        "put victim's schema on the search path",
        "SET search_path = {victim_schema}; SELECT * FROM projects",
    ),
    ("SET ROLE to victim", "SET ROLE {victim}"),
    ("SET ROLE to victim's owner", "SET ROLE {victim_owner}"),
    ("SET ROLE to own owner", "SET ROLE {own_owner}"),
    ("SET ROLE to the superuser", "SET ROLE bulkhead"),
    (
        "SET SESSION AUTHORIZATION to victim",
        "SET SESSION AUTHORIZATION {victim}",
    ),
    (
        "SET SESSION AUTHORIZATION to the superuser",
        "SET SESSION AUTHORIZATION bulkhead",
    ),
    ("CREATE DATABASE", "CREATE DATABASE evil"),
    ("CREATE ROLE", "CREATE ROLE evil"),
    (
        "ALTER ROLE itself SUPERUSER",
        "ALTER ROLE CURRENT_USER SUPERUSER",
    ),
    (
        "ALTER ROLE itself CREATEDB",
        "ALTER ROLE CURRENT_USER CREATEDB",
    ),
    (
        "ALTER ROLE itself BYPASSRLS",
        "ALTER ROLE CURRENT_USER BYPASSRLS",
    ),
    (
        "ALTER ROLE itself CONNECTION LIMIT",
        "ALTER ROLE CURRENT_USER CONNECTION LIMIT -1",
    ),
    (
        "ALTER ROLE victim's password",
        "ALTER ROLE {victim} PASSWORD 'pwned'",
    ),
    (
        "GRANT itself victim's role",
        "GRANT {victim} TO CURRENT_USER",
    ),
    (
        "GRANT itself own owner role",
        "GRANT {own_owner} TO CURRENT_USER",
    ),
    ("CREATE EXTENSION dblink", "CREATE EXTENSION dblink"),
    (
        "CREATE EXTENSION postgres_fdw",
        "CREATE EXTENSION postgres_fdw",
    ),
    ("COPY TO PROGRAM", "COPY projects TO PROGRAM 'id'"),
    (
        "COPY FROM PROGRAM",
        "COPY projects (name) FROM PROGRAM 'echo pwned'",
    ),
    (
        "COPY TO a server file",
        "COPY projects TO '/tmp/bulkhead-evil'",
    ),
    (
        "COPY FROM a server file",
        "COPY projects (name) FROM '/etc/hostname'",
    ),
    ("pg_read_file", "SELECT pg_read_file('/etc/passwd')"),
    (
        "pg_read_binary_file",
        "SELECT pg_read_binary_file('postgresql.conf')",
    ),
    ("pg_ls_dir", "SELECT pg_ls_dir('.')"),
    ("lo_import", "SELECT lo_import('/etc/passwd')"),
    (
        "lo_export",
        "SELECT lo_export(lo_create(0), '/tmp/bulkhead-evil')",
    ),
    (
        "CREATE FUNCTION in public",
        "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ),
    ("CREATE TABLE in public", "CREATE TABLE public.evil (a int)"),
    (
        "CREATE TABLE in its own schema",
        "CREATE TABLE evil (a int)",
    ),
    ("CREATE VIEW", "CREATE VIEW evil AS SELECT 1"),
    ("CREATE SCHEMA", "CREATE SCHEMA evil"),
    ("CREATE TEMP TABLE", "CREATE TEMP TABLE evil (a int)"),
    (
        "CREATE TEMP FUNCTION",
        "CREATE FUNCTION pg_temp.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ),
    ("DROP its own table", "DROP TABLE projects CASCADE"),
    (
        "ALTER its own table",
        "ALTER TABLE projects ADD COLUMN evil int",
    ),
    (
        "ALTER its own table's owner",
        "ALTER TABLE projects OWNER TO CURRENT_USER",
    ),
    ("TRUNCATE its own table", "TRUNCATE projects"),
    (
        "CREATE INDEX on its own table",
        "CREATE INDEX evil ON projects (name)",
    ),
    (
        "CREATE TRIGGER on its own table",
        "CREATE TRIGGER evil BEFORE INSERT ON projects FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    (
        "CREATE POLICY on its own table",
        "CREATE POLICY evil ON projects USING (true)",
    ),
    (
        "tamper with its migration history",
        "DELETE FROM bulkhead_schema_history",
    ),
    ("read password hashes", "SELECT rolpassword FROM pg_authid"),
    ("ALTER SYSTEM", "ALTER SYSTEM SET log_statement = 'none'"),
    ("pg_reload_conf", "SELECT pg_reload_conf()"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("LOAD a library", "LOAD 'plpgsql'"),
    ("CREATE LANGUAGE", "CREATE LANGUAGE plperlu"),
    (
        "CREATE EVENT TRIGGER",
        "CREATE EVENT TRIGGER evil ON ddl_command_start EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    (
        "CREATE PUBLICATION",
        "CREATE PUBLICATION evil FOR ALL TABLES",
    ),
    (
        "CREATE SUBSCRIPTION",
        "CREATE SUBSCRIPTION evil CONNECTION 'dbname=postgres' PUBLICATION p",
    ),
    ("SECURITY LABEL", "SECURITY LABEL ON TABLE projects IS 'x'"),
];

/// Statements PostgreSQL accepts with a warning or answers with an empty
/// result: each is followed by a check, run as the attacker, that must return
/// no row (or false).
const MUST_DO_NOTHING: &[(&str, &str, &str)] = &[
    (
        "GRANT on its tables to the victim",
        "GRANT SELECT ON projects TO {victim}",
        "SELECT has_table_privilege({victim_name}, 'projects', 'SELECT')",
    ),
    (
        "GRANT on its tables to PUBLIC",
        "GRANT SELECT ON projects TO PUBLIC",
        "SELECT EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
          WHERE c.oid = 'projects'::regclass AND a.grantee = 0)",
    ),
    (
        "GRANT USAGE on its schema to the victim",
        "GRANT USAGE ON SCHEMA {own_schema} TO {victim}",
        "SELECT has_schema_privilege({victim_name}, {own_schema_name}, 'USAGE')",
    ),
    (
        "read the data directory's location",
        "SELECT 1",
        "SELECT setting <> '' FROM pg_settings WHERE name = 'data_directory'",
    ),
];

struct Party {
    slug: String,
    mode: Mode,
}

impl Party {
    fn runtime(&self) -> String {
        format!("\"t_{}\"", self.slug)
    }
    fn owner(&self) -> String {
        format!("\"t_{}_owner\"", self.slug)
    }
    /// How an attacker would name this party's schema: in database mode it
    /// lives in another database, so the reference is cross-database.
    fn schema_ref(&self) -> String {
        match self.mode {
            Mode::Database => format!("\"t_{}\".public", self.slug),
            Mode::Schema => format!("\"t_{}\"", self.slug),
        }
    }
    fn own_schema(&self) -> String {
        match self.mode {
            Mode::Database => "public".into(),
            Mode::Schema => format!("t_{}", self.slug),
        }
    }
    fn database(&self, shared: &str) -> String {
        match self.mode {
            Mode::Database => format!("t_{}", self.slug),
            Mode::Schema => shared.to_string(),
        }
    }
}

fn render(template: &str, attacker: &Party, victim: &Party, shared: &str) -> String {
    template
        .replace("{victim_owner}", &victim.owner())
        .replace("{victim_schema}", &victim.schema_ref())
        .replace("{victim_name}", &format!("'t_{}'", victim.slug))
        .replace("{own_schema_name}", &format!("'{}'", attacker.own_schema()))
        .replace("{own_schema}", &format!("\"{}\"", attacker.own_schema()))
        .replace("{victim_db}", &format!("\"{}\"", victim.database(shared)))
        .replace("{victim}", &victim.runtime())
        .replace("{own_owner}", &attacker.owner())
}

async fn fleet_with_victims() -> (TestFleet, Vec<Party>) {
    let fleet = TestFleet::new().await;
    let mut parties = Vec::new();
    for (base, mode) in [
        ("atk-db", Mode::Database),
        ("atk-sc", Mode::Schema),
        ("vic-db", Mode::Database),
        ("vic-sc", Mode::Schema),
    ] {
        let slug = fleet.tenant(base, mode).await;
        parties.push(Party { slug, mode });
    }
    for victim in &parties[2..] {
        fleet
            .as_tenant(&victim.slug)
            .await
            .batch_execute("INSERT INTO projects (name) VALUES ('victim-data')")
            .await
            .unwrap();
    }
    (fleet, parties)
}

async fn victims_intact(fleet: &TestFleet, victims: &[Party]) {
    for victim in victims {
        let client = fleet.as_tenant(&victim.slug).await;
        let names: Vec<String> = client
            .query("SELECT name FROM projects ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(names, ["victim-data"], "victim {} changed", victim.slug);
    }
}

async fn hostile_statements_fail(attacker_index: usize) {
    let (fleet, parties) = fleet_with_victims().await;
    let attacker = &parties[attacker_index];
    let shared = fleet.args.shared_db.clone();
    let client = fleet.as_tenant(&attacker.slug).await;
    let mut survived = Vec::new();
    for victim in &parties[2..] {
        for (name, template) in MUST_FAIL {
            let sql = render(template, attacker, victim, &shared);
            // Each statement alone, outside any transaction, so one failure
            // cannot mask the next.
            match client.simple_query(&sql).await {
                Ok(rows) => {
                    let returned_rows = rows
                        .iter()
                        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                        .count();
                    survived.push(format!(
                        "{name} (victim {}, {returned_rows} rows): {sql}",
                        victim.slug
                    ));
                }
                Err(e) => assert!(
                    e.as_db_error().is_some(),
                    "{name}: not a server refusal: {e}"
                ),
            }
            client
                .batch_execute("RESET ROLE; RESET search_path")
                .await
                .ok();
        }
        for (name, statement, check) in MUST_DO_NOTHING {
            let statement = render(statement, attacker, victim, &shared);
            let check = render(check, attacker, victim, &shared);
            // Refused outright is fine too; accepted must change nothing.
            let _ = client.simple_query(&statement).await;
            let leaked = client
                .query_opt(&check, &[])
                .await
                .unwrap_or_else(|e| panic!("{name}: check failed: {e}"))
                .is_some_and(|row| row.get::<_, Option<bool>>(0).unwrap_or(false));
            if leaked {
                survived.push(format!("{name} (victim {}): {statement}", victim.slug));
            }
        }
    }
    assert!(
        survived.is_empty(),
        "statements that should have failed:\n{}",
        survived.join("\n")
    );
    victims_intact(&fleet, &parties[2..]).await;
}

#[tokio::test]
async fn hostile_sql_from_a_database_mode_tenant_fails() {
    hostile_statements_fail(0).await;
}

#[tokio::test]
async fn hostile_sql_from_a_schema_mode_tenant_fails() {
    hostile_statements_fail(1).await;
}

#[tokio::test]
async fn a_tenant_cannot_connect_to_any_database_but_its_own() {
    let (fleet, parties) = fleet_with_victims().await;
    let shared = fleet.args.shared_db.clone();
    let control_db = fleet
        .args
        .control_url
        .as_ref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    for attacker in &parties[..2] {
        let url = fleet.p().connect_url(&attacker.slug).await.unwrap();
        let own_db = attacker.database(&shared);
        let mut targets = vec![
            "postgres".to_string(),
            "template1".to_string(),
            control_db.clone(),
            fleet.args.template_db.clone(),
        ];
        targets.extend(parties[2..].iter().map(|v| v.database(&shared)));
        for db in targets.into_iter().filter(|db| *db != own_db) {
            let other = format!("{}/{db}", url.expose().rsplit_once('/').unwrap().0);
            let err = connect(&other)
                .await
                .err()
                .unwrap_or_else(|| panic!("{} connected to {db}", attacker.slug));
            let code = err.as_db_error().map(|e| e.code().clone());
            assert_eq!(
                code,
                Some(tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{} -> {db}: {err}",
                attacker.slug
            );
        }
    }
}

#[tokio::test]
async fn a_tenant_cannot_signal_or_spy_on_another_tenants_backend() {
    let (fleet, parties) = fleet_with_victims().await;
    let victim = &parties[2];
    let victim_conn = fleet.as_tenant(&victim.slug).await;
    victim_conn
        .simple_query("SELECT 'victim-secret-marker'")
        .await
        .unwrap();
    let victim_pid: i32 = victim_conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    for attacker in &parties[..2] {
        let client = fleet.as_tenant(&attacker.slug).await;
        // Query text of other roles' sessions is hidden.
        let rows = client
            .query("SELECT coalesce(query, '') FROM pg_stat_activity", &[])
            .await
            .unwrap();
        for row in rows {
            let query: String = row.get(0);
            assert!(!query.contains("victim-secret-marker"), "saw: {query}");
        }
        // Terminating or cancelling its backend is refused.
        for f in ["pg_terminate_backend", "pg_cancel_backend"] {
            let result = client
                .query_one(&format!("SELECT {f}($1)"), &[&victim_pid])
                .await;
            match result {
                Err(e) => assert!(e.as_db_error().is_some(), "{e}"),
                Ok(row) => assert!(!row.get::<_, bool>(0), "{f} succeeded"),
            }
        }
    }
    victim_conn
        .query_one("SELECT 1", &[])
        .await
        .expect("victim still connected");
    let _ = pg();
}
