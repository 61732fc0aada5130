//! Hostile SQL as a tenant: every statement below runs logged in as an
//! attacker tenant's runtime role, while victim tenants exist on the same
//! server, in both isolation modes. Each must be refused with the SQLSTATE of
//! the check that should stop it (almost always 42501, insufficient
//! privilege): an error that only says something is missing (no such
//! extension, role, schema; a cross-database name) proves nothing, so it
//! fails the test like a statement that succeeds. The victims' data must be
//! intact afterwards.

use crate::common::{TestFleet, connect};
use bulkhead::control::Mode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

/// A statement and the refusal it must meet.
struct Hostile {
    name: &'static str,
    sql: &'static str,
    code: SqlState,
}

const fn denied(name: &'static str, sql: &'static str) -> Hostile {
    Hostile {
        name,
        sql,
        code: SqlState::INSUFFICIENT_PRIVILEGE,
    }
}

/// Run over the attacker's own connection. Placeholders (see [`render`]):
/// `{victim}`, `{victim_owner}`, `{own_owner}`, `{superuser}` are quoted role
/// names.
///
/// Not here: `SECURITY LABEL` (without a label provider loaded it fails with
/// 22023 before any privilege check, so it cannot tell refused from missing;
/// the ownership it would need is checked by the `must be owner` statements),
/// and `CREATE EXTENSION` of untrusted extensions, which may not be installed
/// on the server: see [`UNTRUSTED_EXTENSIONS`].
const MUST_FAIL: &[Hostile] = &[
    denied("SET ROLE to victim", "SET ROLE {victim}"),
    denied("SET ROLE to victim's owner", "SET ROLE {victim_owner}"),
    denied("SET ROLE to own owner", "SET ROLE {own_owner}"),
    denied("SET ROLE to the superuser", "SET ROLE {superuser}"),
    denied(
        "SET SESSION AUTHORIZATION to victim",
        "SET SESSION AUTHORIZATION {victim}",
    ),
    denied(
        "SET SESSION AUTHORIZATION to the superuser",
        "SET SESSION AUTHORIZATION {superuser}",
    ),
    denied("CREATE DATABASE", "CREATE DATABASE evil"),
    denied("CREATE ROLE", "CREATE ROLE evil"),
    denied(
        "ALTER ROLE itself SUPERUSER",
        "ALTER ROLE CURRENT_USER SUPERUSER",
    ),
    denied(
        "ALTER ROLE itself CREATEDB",
        "ALTER ROLE CURRENT_USER CREATEDB",
    ),
    denied(
        "ALTER ROLE itself BYPASSRLS",
        "ALTER ROLE CURRENT_USER BYPASSRLS",
    ),
    denied(
        "ALTER ROLE itself CONNECTION LIMIT",
        "ALTER ROLE CURRENT_USER CONNECTION LIMIT -1",
    ),
    denied(
        "ALTER ROLE victim's password",
        "ALTER ROLE {victim} PASSWORD 'pwned'",
    ),
    denied(
        "GRANT itself victim's role",
        "GRANT {victim} TO CURRENT_USER",
    ),
    denied(
        "GRANT itself own owner role",
        "GRANT {own_owner} TO CURRENT_USER",
    ),
    // Untrusted code and outbound connections without any extension: the
    // privilege checks dblink, postgres_fdw and plperlu would meet.
    denied(
        "CREATE LANGUAGE with a handler",
        "CREATE LANGUAGE evil HANDLER plpgsql_call_handler",
    ),
    denied(
        "CREATE FOREIGN DATA WRAPPER",
        "CREATE FOREIGN DATA WRAPPER evil",
    ),
    denied("COPY TO PROGRAM", "COPY projects TO PROGRAM 'id'"),
    denied(
        "COPY FROM PROGRAM",
        "COPY projects (name) FROM PROGRAM 'echo pwned'",
    ),
    denied(
        "COPY TO a server file",
        "COPY projects TO '/tmp/bulkhead-evil'",
    ),
    denied(
        "COPY FROM a server file",
        "COPY projects (name) FROM '/etc/hostname'",
    ),
    denied("pg_read_file", "SELECT pg_read_file('/etc/passwd')"),
    denied(
        "pg_read_binary_file",
        "SELECT pg_read_binary_file('postgresql.conf')",
    ),
    denied("pg_ls_dir", "SELECT pg_ls_dir('.')"),
    denied("lo_import", "SELECT lo_import('/etc/passwd')"),
    denied(
        "lo_export",
        "SELECT lo_export(lo_create(0), '/tmp/bulkhead-evil')",
    ),
    denied(
        "CREATE FUNCTION in public",
        "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ),
    denied("CREATE TABLE in public", "CREATE TABLE public.evil (a int)"),
    denied(
        "CREATE TABLE in its own schema",
        "CREATE TABLE {own_schema}.evil (a int)",
    ),
    denied("CREATE VIEW", "CREATE VIEW {own_schema}.evil AS SELECT 1"),
    denied("CREATE SCHEMA", "CREATE SCHEMA evil"),
    denied("CREATE TEMP TABLE", "CREATE TEMP TABLE evil (a int)"),
    denied(
        "CREATE TEMP FUNCTION",
        "CREATE FUNCTION pg_temp.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ),
    denied("DROP its own table", "DROP TABLE projects CASCADE"),
    denied(
        "ALTER its own table",
        "ALTER TABLE projects ADD COLUMN evil int",
    ),
    denied(
        "ALTER its own table's owner",
        "ALTER TABLE projects OWNER TO CURRENT_USER",
    ),
    denied("TRUNCATE its own table", "TRUNCATE projects"),
    denied(
        "CREATE INDEX on its own table",
        "CREATE INDEX evil ON projects (name)",
    ),
    denied(
        "CREATE TRIGGER on its own table",
        "CREATE TRIGGER evil BEFORE INSERT ON projects FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    denied(
        "CREATE POLICY on its own table",
        "CREATE POLICY evil ON projects USING (true)",
    ),
    denied(
        "tamper with its migration history",
        "DELETE FROM bulkhead_schema_history",
    ),
    denied("read password hashes", "SELECT rolpassword FROM pg_authid"),
    denied("ALTER SYSTEM", "ALTER SYSTEM SET log_statement = 'none'"),
    denied("pg_reload_conf", "SELECT pg_reload_conf()"),
    denied("CHECKPOINT", "CHECKPOINT"),
    denied("LOAD a library", "LOAD 'plpgsql'"),
    denied(
        "CREATE EVENT TRIGGER",
        "CREATE EVENT TRIGGER evil ON ddl_command_start EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ),
    denied(
        "CREATE PUBLICATION",
        "CREATE PUBLICATION evil FOR ALL TABLES",
    ),
    denied(
        "CREATE SUBSCRIPTION",
        "CREATE SUBSCRIPTION evil CONNECTION 'dbname=postgres' PUBLICATION p",
    ),
];

/// Extensions that would run untrusted code or open connections from the
/// server, and the statement that installs each. Where the server has one
/// available, creating it must be refused (42501); where it does not, the
/// statement would fail with "not available" whatever the privileges, so it is
/// not run, and the `CREATE LANGUAGE … HANDLER` and `CREATE FOREIGN DATA
/// WRAPPER` statements of [`MUST_FAIL`] are the privilege checks on that path.
/// (A bare `CREATE LANGUAGE plperlu` is `CREATE EXTENSION plperlu` since
/// PostgreSQL 13.)
const UNTRUSTED_EXTENSIONS: &[(&str, &str)] = &[
    ("dblink", "CREATE EXTENSION dblink"),
    ("postgres_fdw", "CREATE EXTENSION postgres_fdw"),
    ("file_fdw", "CREATE EXTENSION file_fdw"),
    ("plperlu", "CREATE LANGUAGE plperlu"),
    ("plpython3u", "CREATE EXTENSION plpython3u"),
];

/// Run in the database holding the victim's objects, as the attacker's role,
/// naming the victim's schema (`{victim_schema}`). Each is first run by a
/// superuser in a rolled-back transaction and must succeed there: the object
/// exists and the statement is valid, so the attacker's error is the refusal.
const AGAINST_VICTIM: &[Hostile] = &[
    denied(
        "read victim's table by qualified name",
        "SELECT * FROM {victim_schema}.projects",
    ),
    denied(
        "read victim's history",
        "SELECT * FROM {victim_schema}.bulkhead_schema_history",
    ),
    denied(
        "write victim's table",
        "INSERT INTO {victim_schema}.projects (name) VALUES ('pwned')",
    ),
    denied(
        "update victim's table",
        "UPDATE {victim_schema}.projects SET name = 'pwned'",
    ),
    denied(
        "delete from victim's table",
        "DELETE FROM {victim_schema}.projects",
    ),
    denied(
        "create in victim's schema",
        "CREATE TABLE {victim_schema}.evil (a int)",
    ),
    // A schema without USAGE is left out of the search path: the unqualified
    // name finds nothing there.
    Hostile {
        name: "put victim's schema on the search path",
        sql: "SET search_path = {victim_schema}; SELECT * FROM projects",
        code: SqlState::UNDEFINED_TABLE,
    },
];

/// Statements PostgreSQL accepts with a warning or answers with an empty
/// result: each must be accepted or refused for lack of privilege, and is
/// followed by a check, run as the attacker, that must return no row (or
/// false).
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

/// A tenant as the server knows it: every name read back from a connection
/// logged in as its runtime role, so nothing here assumes how bulkhead names
/// a tenant's roles, database or schema.
struct Party {
    slug: String,
    mode: Mode,
    role: String,
    owner: String,
    database: String,
    schema: String,
}

impl Party {
    async fn of(fleet: &TestFleet, slug: String, mode: Mode) -> Party {
        let row = fleet
            .as_tenant(&slug)
            .await
            .query_one(
                "SELECT current_user::text, pg_get_userbyid(c.relowner)::text,
                        current_database()::text, current_schema()::text
                   FROM pg_class c WHERE c.oid = 'projects'::regclass",
                &[],
            )
            .await
            .unwrap();
        Party {
            slug,
            mode,
            role: row.get(0),
            owner: row.get(1),
            database: row.get(2),
            schema: row.get(3),
        }
    }
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn render(template: &str, attacker: &Party, victim: &Party, superuser: &str) -> String {
    template
        .replace("{victim_owner}", &ident(&victim.owner))
        .replace("{victim_schema}", &ident(&victim.schema))
        .replace("{victim_name}", &literal(&victim.role))
        .replace("{victim}", &ident(&victim.role))
        .replace("{own_schema_name}", &literal(&attacker.schema))
        .replace("{own_schema}", &ident(&attacker.schema))
        .replace("{own_owner}", &ident(&attacker.owner))
        .replace("{superuser}", &ident(superuser))
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
        parties.push(Party::of(&fleet, slug, mode).await);
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

/// The name of the cluster's superuser (the test's admin connection).
async fn superuser(fleet: &TestFleet) -> String {
    let row = fleet
        .admin("postgres")
        .await
        .query_one(
            "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(1), "the admin connection is a superuser");
    row.get(0)
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

/// Runs one statement alone, outside any transaction (so one failure cannot
/// mask the next), and says what went wrong if it was not refused with `code`.
async fn refused(client: &Client, sql: &str, code: &SqlState) -> Result<(), String> {
    match client.simple_query(sql).await {
        Ok(messages) => {
            let rows = messages
                .iter()
                .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                .count();
            Err(format!("succeeded ({rows} rows)"))
        }
        Err(e) => match e.as_db_error() {
            Some(db) if db.code() == code => Ok(()),
            Some(db) => Err(format!(
                "refused with {} ({}), not {}",
                db.code().code(),
                db.message(),
                code.code()
            )),
            None => Err(format!("not a server refusal: {e}")),
        },
    }
}

async fn hostile_statements_fail(attacker_index: usize) {
    let (fleet, parties) = fleet_with_victims().await;
    let attacker = &parties[attacker_index];
    let superuser = superuser(&fleet).await;
    let client = fleet.as_tenant(&attacker.slug).await;
    let mut survived = Vec::new();

    for victim in &parties[2..] {
        for h in MUST_FAIL {
            let sql = render(h.sql, attacker, victim, &superuser);
            if let Err(what) = refused(&client, &sql, &h.code).await {
                survived.push(format!(
                    "{} (victim {}): {what}: {sql}",
                    h.name, victim.slug
                ));
            }
            client
                .batch_execute("RESET SESSION AUTHORIZATION; RESET ROLE; RESET search_path")
                .await
                .unwrap();
        }
        survived.extend(against_victim(&fleet, attacker, victim, &superuser).await);
        for (name, statement, check) in MUST_DO_NOTHING {
            let statement = render(statement, attacker, victim, &superuser);
            let check = render(check, attacker, victim, &superuser);
            match client.simple_query(&statement).await {
                Ok(_) => {}
                Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {}
                Err(e) => survived.push(format!("{name}: neither accepted nor refused: {e}")),
            }
            match client.query_opt(&check, &[]).await {
                Ok(Some(row)) if row.get::<_, Option<bool>>(0).unwrap_or(false) => {
                    survived.push(format!("{name} (victim {}): {statement}", victim.slug));
                }
                Ok(_) => {}
                Err(e) => survived.push(format!("{name}: its check failed: {e}: {check}")),
            }
        }
    }

    // Untrusted extensions: refused where the server has them, not counted
    // where it does not.
    let admin = fleet.admin(&attacker.database).await;
    let names: Vec<&str> = UNTRUSTED_EXTENSIONS.iter().map(|(n, _)| *n).collect();
    let available: Vec<String> = admin
        .query(
            "SELECT name::text FROM pg_available_extensions WHERE name = ANY($1)",
            &[&names],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (extension, sql) in UNTRUSTED_EXTENSIONS {
        if !available.iter().any(|a| a == extension) {
            eprintln!("{extension} is not available on the test server: not checked");
            continue;
        }
        if let Err(what) = refused(&client, sql, &SqlState::INSUFFICIENT_PRIVILEGE).await {
            survived.push(format!("{extension}: {what}: {sql}"));
        }
    }

    assert!(
        survived.is_empty(),
        "statements not refused as they should be:\n{}",
        survived.join("\n")
    );
    victims_intact(&fleet, &parties[2..]).await;
}

/// [`AGAINST_VICTIM`] where the victim's objects live. A schema-mode attacker
/// shares the victim's database and runs them over its own connection. Any
/// other attacker cannot connect there at all (see
/// `a_tenant_cannot_connect_to_any_database_but_its_own`; from its own
/// database a name in another database is only "cross-database references
/// are not implemented" or "does not exist", which says nothing about
/// privileges): for them a superuser session in the victim's database takes
/// the attacker's role with SET ROLE, so the grants inside that database are
/// checked too, as if the connection wall had fallen.
async fn against_victim(
    fleet: &TestFleet,
    attacker: &Party,
    victim: &Party,
    superuser: &str,
) -> Vec<String> {
    let control = fleet.admin(&victim.database).await;
    let same_database = attacker.mode == Mode::Schema && victim.mode == Mode::Schema;
    let client = if same_database {
        fleet.as_tenant(&attacker.slug).await
    } else {
        let client = fleet.admin(&victim.database).await;
        client
            .batch_execute(&format!("SET ROLE {}", ident(&attacker.role)))
            .await
            .unwrap();
        client
    };
    let mut survived = Vec::new();
    for h in AGAINST_VICTIM {
        let sql = render(h.sql, attacker, victim, superuser);
        control
            .batch_execute(&format!("BEGIN; {sql}; ROLLBACK"))
            .await
            .unwrap_or_else(|e| panic!("{}: fails even for a superuser: {e}: {sql}", h.name));
        if let Err(what) = refused(&client, &sql, &h.code).await {
            let how = if same_database { "" } else { " (SET ROLE)" };
            survived.push(format!(
                "{} (victim {}){how}: {what}: {sql}",
                h.name, victim.slug
            ));
        }
        client.batch_execute("RESET search_path").await.unwrap();
    }
    survived
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
    let control_db = fleet.control_db();
    for attacker in &parties[..2] {
        let url = fleet.p().connect_url(&attacker.slug).await.unwrap();
        let mut targets = vec![
            "postgres".to_string(),
            "template1".to_string(),
            control_db.clone(),
            fleet.args.template_db.clone(),
        ];
        targets.extend(parties[2..].iter().map(|v| v.database.clone()));
        for db in targets.into_iter().filter(|db| *db != attacker.database) {
            let other = format!("{}/{db}", url.expose().rsplit_once('/').unwrap().0);
            let err = connect(&other)
                .await
                .err()
                .unwrap_or_else(|| panic!("{} connected to {db}", attacker.slug));
            let code = err.as_db_error().map(|e| e.code().clone());
            assert_eq!(
                code,
                Some(SqlState::INSUFFICIENT_PRIVILEGE),
                "{} -> {db}: {err}",
                attacker.slug
            );
        }
    }
}

#[tokio::test]
async fn a_tenant_cannot_signal_or_spy_on_another_tenants_backend() {
    const MARKER: &str = "victim-secret-marker";
    let (fleet, parties) = fleet_with_victims().await;
    let victim = &parties[2];
    let victim_conn = fleet.as_tenant(&victim.slug).await;
    let victim_pid: i32 = victim_conn
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    // The marker is the victim's last query: its session stays idle with it
    // in pg_stat_activity.query.
    victim_conn
        .simple_query(&format!("SELECT '{MARKER}'"))
        .await
        .unwrap();
    // Control: a superuser sees it, so hiding it below is the privilege check.
    let seen: Option<String> = fleet
        .admin("postgres")
        .await
        .query_one(
            "SELECT query FROM pg_stat_activity WHERE pid = $1",
            &[&victim_pid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        seen.as_deref().is_some_and(|q| q.contains(MARKER)),
        "the superuser sees the victim's query: {seen:?}"
    );
    for attacker in &parties[..2] {
        let client = fleet.as_tenant(&attacker.slug).await;
        let rows = client
            .query("SELECT pid, query FROM pg_stat_activity", &[])
            .await
            .unwrap();
        let victim_query = rows
            .iter()
            .find(|r| r.get::<_, Option<i32>>(0) == Some(victim_pid))
            .map(|r| r.get::<_, Option<String>>(1));
        assert_eq!(
            victim_query,
            Some(Some("<insufficient privilege>".to_string())),
            "{} reading the victim's backend",
            attacker.slug
        );
        for row in &rows {
            let query: Option<String> = row.get(1);
            assert!(!query.unwrap_or_default().contains(MARKER));
        }
        // Terminating or cancelling its backend is refused (a pid that is no
        // backend would only give false and a warning).
        for f in ["pg_terminate_backend", "pg_cancel_backend"] {
            let result = client
                .query_one(&format!("SELECT {f}($1)"), &[&victim_pid])
                .await;
            match result {
                Err(e) => assert_eq!(
                    e.code(),
                    Some(&SqlState::INSUFFICIENT_PRIVILEGE),
                    "{f}: {e}"
                ),
                Ok(row) => panic!(
                    "{f} answered {:?} instead of refusing",
                    row.get::<_, bool>(0)
                ),
            }
        }
    }
    victim_conn
        .query_one("SELECT 1", &[])
        .await
        .expect("victim still connected");
}
