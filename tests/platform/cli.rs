//! The `bulkhead` binary itself: exit codes, messages, and that bad input
//! creates nothing.

use std::process::Output;

use crate::common::{TestFleet, pg};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs the CLI and asserts its exit code; returns (stdout, stderr).
fn run(fleet: &TestFleet, args: &[&str], code: i32) -> (String, String) {
    let out = fleet.cli().args(args).output().expect("run bulkhead");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "bulkhead {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn create_list_show_and_duplicate_create_through_the_binary() {
    let fleet = TestFleet::new().await;
    let slug = fleet.slug("cli");
    let (out, _) = run(
        &fleet,
        &[
            "tenant", "create", &slug, "--mode", "schema", "--name", "CLI Co",
        ],
        0,
    );
    assert!(
        out.contains(&format!("created tenant `{slug}`: schema mode")),
        "{out}"
    );
    let (out, _) = run(&fleet, &["tenant", "create", &slug, "--mode", "schema"], 0);
    assert!(out.contains("already exists (active"), "{out}");
    assert_eq!(fleet.tenant_rows(&slug).await, 1);

    let (out, _) = run(&fleet, &["tenant", "list"], 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&slug) && l.contains("active")),
        "{out}"
    );
    let (out, _) = run(&fleet, &["tenant", "list", "--json"], 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["slug"], slug.as_str());
    assert_eq!(list[0]["status"], "active");
    let (out, _) = run(&fleet, &["tenant", "show", &slug], 0);
    let name = fleet.pg_name(&slug).await;
    assert!(out.contains("CLI Co") && out.contains(&name), "{out}");
    let mut before = fleet.traces_of(&slug).await;
    before.sort();

    // A duplicate create in the other mode is refused: nothing changes.
    let (_, err) = run(
        &fleet,
        &["tenant", "create", &slug, "--mode", "database"],
        2,
    );
    assert!(err.contains("already exists in schema mode"), "{err}");
    let mut after = fleet.traces_of(&slug).await;
    after.sort();
    assert_eq!(after, before);
    assert_eq!(
        before,
        [
            format!("role {name}"),
            format!("role {name}_owner"),
            format!("schema {name}")
        ]
    );
}

#[tokio::test]
async fn invalid_and_reserved_slugs_exit_2_and_create_nothing() {
    let fleet = TestFleet::new().await;
    for (slug, message) in [
        ("Bad_Slug", "invalid slug"),
        ("ab", "invalid slug"),
        ("-acme", "invalid slug"),
        ("acme-", "invalid slug"),
        (&"a".repeat(33) as &str, "invalid slug"),
        ("admin", "is reserved"),
        ("www", "is reserved"),
        ("postgres", "is reserved"),
    ] {
        let (_, err) = run(&fleet, &["tenant", "create", "--", slug], 2);
        assert!(err.contains(message), "{slug}: {err}");
        assert_eq!(err.lines().count(), 1, "one-line error: {err}");
        assert_eq!(fleet.tenant_rows(slug).await, 0);
        assert!(fleet.traces_of(slug).await.is_empty());
    }
}

#[tokio::test]
async fn bad_options_exit_2_and_create_nothing() {
    let fleet = TestFleet::new().await;
    let slug = fleet.slug("bad");
    let (_, err) = run(
        &fleet,
        &["tenant", "create", &slug, "--server", "nowhere"],
        2,
    );
    assert!(err.contains("no server `nowhere`"), "{err}");
    let (_, err) = run(&fleet, &["tenant", "create", &slug, "--mode", "cluster"], 2);
    assert!(err.contains("database, schema"), "{err}");
    let (_, err) = run(&fleet, &["tenant", "create", &slug, "--plan", "gold"], 2);
    assert!(err.contains("free, pro"), "{err}");
    assert_eq!(fleet.tenant_rows(&slug).await, 0);
    assert!(fleet.traces_of(&slug).await.is_empty());

    let (_, err) = run(&fleet, &["tenant", "delete", &fleet.slug("ghost")], 2);
    assert!(err.contains("no tenant"), "{err}");
    let (_, err) = run(&fleet, &["tenant", "suspend", &fleet.slug("ghost")], 2);
    assert!(err.contains("no tenant"), "{err}");
    let (_, err) = run(&fleet, &["server", "drain", "nowhere"], 2);
    assert!(err.contains("no server `nowhere`"), "{err}");
}

#[tokio::test]
async fn a_quarantined_slug_is_refused_with_its_date() {
    let fleet = TestFleet::new().await;
    let slug = fleet.slug("gone");
    run(&fleet, &["tenant", "create", &slug], 0);
    // Reusable a week from today (UTC), with the quarantine given to the
    // delete: either side of a midnight passing while it runs.
    let in_a_week = || {
        let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(7);
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let before = in_a_week();
    let (out, _) = run(
        &fleet,
        &["tenant", "delete", &slug, "--slug-quarantine-days", "7"],
        0,
    );
    let after = in_a_week();
    let date = [before, after]
        .into_iter()
        .find(|d| out.contains(&format!("the slug is reusable from {d}\n")))
        .unwrap_or_else(|| panic!("not reusable in a week: {out}"));
    let (_, err) = run(&fleet, &["tenant", "create", &slug], 2);
    assert!(
        err.contains(&format!(
            "belonged to a deleted tenant and can be reused from {date}\n"
        )),
        "{err}"
    );
    assert!(fleet.traces_of(&slug).await.is_empty());
    let (out, _) = run(&fleet, &["tenant", "list", "--deleted"], 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&slug) && l.contains("deleted")),
        "{out}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_refused_and_its_password_never_printed() {
    let fleet = TestFleet::new().await;
    let url = "postgres://admin:hunter2-secret@127.0.0.1:1/postgres";
    let (out, err) = run(&fleet, &["server", "add", "dead", "--admin-url", url], 1);
    assert!(err.contains("server `dead` is unreachable"), "{err}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
    let (out, _) = run(&fleet, &["server", "list"], 0);
    assert!(!out.contains("dead"), "{out}");
    assert!(out.contains("local") && out.contains(":***@"), "{out}");
    assert!(
        !out.contains(&pg().url("postgres")),
        "admin password printed: {out}"
    );

    let (_, err) = run(
        &fleet,
        &["server", "add", "Bad Name", "--admin-url", url],
        2,
    );
    assert!(err.contains("invalid server name"), "{err}");
    let (_, err) = run(&fleet, &["server", "add", "local", "--admin-url", url], 2);
    assert!(err.contains("already exists"), "{err}");
}

/// The lines of `help` that describe the option `--long` (or the argument
/// `<NAME>`): its own line and those indented under it.
fn help_block<'a>(help: &'a str, header: &str) -> Option<Vec<&'a str>> {
    // An option or argument starts a line indented by 2 to 6 spaces (clap
    // lines up the long names); what it says is indented further.
    let indent = |l: &str| l.len() - l.trim_start().len();
    let starts_entry =
        |l: &str| (2..=6).contains(&indent(l)) && l.trim_start().starts_with(['-', '<']);
    let names = |l: &str| {
        l.split([' ', ',', '=', '['])
            .any(|w| w == header || w.strip_suffix("...") == Some(header))
    };
    let mut lines = help.lines().skip_while(|l| !(starts_entry(l) && names(l)));
    let first = lines.next()?;
    let mut block = vec![first];
    block.extend(lines.take_while(|l| indent(l) > 6 || l.is_empty()));
    Some(block)
}

#[tokio::test]
async fn every_option_but_one_shot_switches_has_its_environment_variable_in_help() {
    use clap::CommandFactory;
    let fleet = TestFleet::new().await;
    let secret = fleet.args.secret.clone().unwrap();
    let control_url = fleet.args.control_url.clone().unwrap();
    // From clap's own description of the CLI, global options propagated.
    let mut root = bulkhead::cli::Cli::command();
    root.build();
    let mut stack = vec![(Vec::<String>::new(), root)];
    let (mut commands, mut options, mut without_env) = (0, 0, Vec::new());
    while let Some((path, command)) = stack.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (help, _) = run(&fleet, &args, 0);
        commands += 1;
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version"].contains(&id) {
                continue;
            }
            let header = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None if arg.is_positional() => {
                    let name = arg
                        .get_value_names()
                        .map_or(id.to_uppercase(), |n| n[0].to_string());
                    format!("<{name}>")
                }
                None => panic!("bulkhead {path:?}: -{:?} has no long name", arg.get_short()),
            };
            let Some(var) = arg.get_env() else {
                if !arg.is_positional() {
                    without_env.push(format!("{} {header}", path.join(" ")));
                }
                continue;
            };
            let var = var.to_str().unwrap();
            let block = help_block(&help, &header)
                .unwrap_or_else(|| panic!("bulkhead {path:?} --help lacks {header}:\n{help}"))
                .join("\n");
            assert!(
                block.contains(&format!("[env: {var}="))
                    || block.contains(&format!("[env: {var}]")),
                "bulkhead {path:?} --help does not name {var} under {header}:\n{block}"
            );
            options += 1;
        }
        // Secrets given through the environment are not echoed by --help.
        assert!(
            !help.contains(&secret) && !help.contains(&control_url),
            "{help}"
        );
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = path.clone();
            path.push(sub.get_name().to_string());
            stack.push((path, sub.clone()));
        }
    }
    // Every subcommand was reached (34 today), each with the dozen global
    // options (413 options checked today).
    assert!(
        commands >= 25 && options >= 10 * commands,
        "{commands} commands, {options} options"
    );
    // Only switches that change what one invocation does have none (and the
    // values that name what one invocation acts on: `operator create
    // --role` among them, as an environment that made every new operator
    // an admin would be a trap): set for
    // a whole environment, BULKHEAD_ROLLBACK would turn every `reconcile`
    // into an undo.
    without_env.sort();
    assert_eq!(
        without_env,
        [
            "billing sync --tenant",
            "dev --no-serve",
            "operator create --role",
            "reconcile --rollback",
            "server add --if-not-exists",
            "tenant cancel-subscription --reason",
            "tenant comp --reason",
            "tenant comp --until",
            "tenant end-sessions --reason",
            "tenant list --deleted",
            "tenant resume --reason",
            "tenant rotate-credentials --reason",
            "tenant suspend --reason",
            "tenant uncomp --reason",
        ]
    );
}

#[tokio::test]
async fn without_server_binaries_nothing_is_created_and_the_package_is_named() {
    let home = std::env::temp_dir().join(format!(
        "bulkhead-nobin-{}",
        bulkhead::secret::random_hex(4)
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(["tenant", "list"])
        .env_remove("BULKHEAD_CONTROL_URL")
        .env("BULKHEAD_HOME", &home)
        .env("BULKHEAD_PG_BINDIR", "/nonexistent/bin")
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("apt-get install postgresql"), "{err}");
    assert!(!home.exists(), "{} was created", home.display());
}

#[tokio::test]
async fn with_nothing_started_the_binary_boots_its_own_cluster_and_creates_a_tenant() {
    let home =
        std::env::temp_dir().join(format!("bulkhead-e2e-{}", bulkhead::secret::random_hex(4)));
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"))
            .args(args)
            .env_remove("BULKHEAD_CONTROL_URL")
            .env_remove("BULKHEAD_SECRET")
            .env("BULKHEAD_HOME", &home)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    };
    let out = cli(&["tenant", "create", "acme"]);
    assert!(
        out.contains("created tenant `acme`: database mode on server `local`"),
        "{out}"
    );
    let out = cli(&["tenant", "list"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("acme") && l.contains("active")),
        "{out}"
    );
    // The cluster was left running and is reused; the secret was generated 0600.
    let out = cli(&["pg", "status"]);
    assert!(
        out.contains("state:     running") && out.contains(":***@"),
        "{out}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "secret file readable by others: {mode:o}");
    let out = cli(&["tenant", "connect-url", "acme"]);
    let client = crate::common::connect(out.trim()).await.unwrap();
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    // Named from an opaque id: the catalogs never name the customer.
    assert!(
        user.starts_with("t_") && user.len() == 18 && !user.contains("acme"),
        "{user}"
    );
    drop(client);
    let out = cli(&["pg", "stop"]);
    assert!(out.contains("stopped"), "{out}");
    let out = cli(&["pg", "status"]);
    assert!(out.contains("stopped"), "{out}");
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test]
async fn two_concurrent_creates_of_one_tenant_make_exactly_one() {
    let fleet = TestFleet::new().await;
    let slug = fleet.slug("race");
    let children: Vec<_> = (0..3)
        .map(|_| {
            fleet
                .cli()
                .args(["tenant", "create", &slug])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
    }
    assert_eq!(fleet.tenant_rows(&slug).await, 1);
    let mut traces = fleet.traces_of(&slug).await;
    traces.sort();
    let name = fleet.pg_name(&slug).await;
    assert_eq!(
        traces,
        [
            format!("database {name}"),
            format!("role {name}"),
            format!("role {name}_owner")
        ]
    );
    let (out, _) = run(&fleet, &["tenant", "show", &slug], 0);
    assert!(out.contains("active"), "{out}");
}

#[tokio::test]
async fn create_on_an_unreachable_server_exits_1_and_creates_nothing() {
    let fleet = TestFleet::new().await;
    // Registered while it was up, gone now: insert the row as `server add` would have.
    let cp = crate::common::connect(fleet.args.control_url.as_ref().unwrap())
        .await
        .unwrap();
    cp.execute(
        "INSERT INTO servers (name, admin_url) VALUES ('gone', 'postgres://a:hunter2@127.0.0.1:1/postgres')",
        &[],
    )
    .await
    .unwrap();
    let slug = fleet.slug("unreach");
    let (out, err) = run(&fleet, &["tenant", "create", &slug, "--server", "gone"], 1);
    assert!(err.contains("server `gone` is unreachable"), "{err}");
    assert!(!err.contains("hunter2") && !out.contains("hunter2"));
    assert_eq!(fleet.tenant_rows(&slug).await, 0);
    assert!(fleet.traces_of(&slug).await.is_empty());
}

/// A loopback port nobody listens on (just now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn dev_takes_every_serve_option_and_serves_metrics_where_it_is_told() {
    let fleet = TestFleet::new().await;
    let (listen, metrics) = (free_port(), free_port());
    // Everything `serve` takes, `dev` takes.
    let (help, _) = run(&fleet, &["dev", "--help"], 0);
    let (serve_help, _) = run(&fleet, &["serve", "--help"], 0);
    for option in serve_help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && *w != "--help")
    {
        let option = option.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        assert!(help.contains(option), "dev --help lacks {option}:\n{help}");
    }
    let mut child = fleet
        .cli()
        .arg("dev")
        .env("BULKHEAD_LISTEN", format!("127.0.0.1:{listen}"))
        .env("BULKHEAD_METRICS_LISTEN", format!("127.0.0.1:{metrics}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start bulkhead dev");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut answered = None;
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{metrics}/metrics"))
            .send()
            .await
        {
            answered = Some((r.status().as_u16(), r.text().await.unwrap_or_default()));
            // The metrics listener may answer a moment before the HTTP
            // listener has said its limits: ask until it has.
            if answered
                .as_ref()
                .is_some_and(|(_, body)| body.contains("bulkhead_http_connections_max"))
            {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "bulkhead dev exited before serving metrics"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let healthz = client
        .get(format!("http://127.0.0.1:{listen}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    // The demo user it prints logs in on acme's log-in page.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("http://127.0.0.1:{listen}/login"))
        .header("host", "acme.localhost")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=demo%40bulkhead.localhost&password=dev+demo+passphrase")
        .send()
        .await
        .map(|r| r.status().as_u16());
    // And the operator's log-in page it prints.
    let admin = client
        .get(format!("http://127.0.0.1:{listen}/admin/login"))
        .header("host", "admin.localhost")
        .send()
        .await
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut printed).unwrap();
    for url in [
        format!("sign up a new organisation: http://localhost:{listen}/"),
        format!("http://acme.localhost:{listen}/login"),
        format!("http://admin.localhost:{listen}/admin/login"),
        "TOTP secret".to_string(),
    ] {
        assert!(
            printed.contains(&url),
            "dev does not print {url}:\n{printed}"
        );
    }
    assert_eq!(admin.ok(), Some(200), "the admin log-in page");
    let (status, body) = answered.expect("metrics served on BULKHEAD_METRICS_LISTEN");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("bulkhead_http_connections_max"), "{body}");
    assert_eq!(healthz.ok(), Some(200));
    assert_eq!(login.ok(), Some(303), "the demo user logs in");
}
