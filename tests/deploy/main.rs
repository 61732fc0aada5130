//! The container deployment, checked by reading: no container engine runs in
//! CI, so `docker-compose.yml`, the `Caddyfile` and the `Dockerfile` are
//! parsed and held to what a working stack needs, every flag and variable the
//! compose file gives bulkhead is checked against the binary's own `--help`,
//! and the start-up registration of the database is run, as on every start,
//! through the CLI against PostgreSQL.

mod caddyfile;
#[path = "../common/mod.rs"]
mod common;
mod compose;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use caddyfile::{all, caddyfile, find};
use common::{TestFleet, pg};
use compose::{Service, compose, interpolate, operator_env};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap_or_else(|e| panic!("read {file}: {e}"))
}

// ---- the binary and the Dockerfile ----

fn help(subcommand: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(subcommand)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run bulkhead --help");
    assert!(
        out.status.success(),
        "bulkhead {subcommand:?} --help failed"
    );
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The Dockerfile's last stage: what the running image is.
fn runtime_stage() -> String {
    let dockerfile = read("Dockerfile");
    let i = dockerfile.rfind("\nFROM ").expect("a runtime stage");
    dockerfile[i..].to_string()
}

fn route_exists(path: &str) -> bool {
    bulkhead::http::routes().iter().any(|r| r.path == path)
}

/// bulkhead's listen address in the compose file.
fn listen(bulkhead: &Service) -> SocketAddr {
    bulkhead
        .env("BULKHEAD_LISTEN")
        .parse()
        .expect("BULKHEAD_LISTEN is an address")
}

#[test]
fn compose_runs_bulkhead_serve_on_a_published_port_with_a_readyz_healthcheck() {
    let compose = compose();
    let bulkhead = compose.service("bulkhead");
    assert!(
        bulkhead.build.is_some(),
        "bulkhead is built from the Dockerfile"
    );
    assert_eq!(
        bulkhead.command.first().map(String::as_str),
        Some("serve"),
        "the image's default would not serve: {:?}",
        bulkhead.command
    );
    let port = listen(bulkhead).port();
    assert!(
        listen(bulkhead).ip().is_unspecified(),
        "bulkhead must listen beyond the container's loopback"
    );
    assert!(
        bulkhead.container_ports().contains(&port),
        "port {port} is not published: {:?}",
        bulkhead.ports
    );

    // The healthcheck asks /readyz (control plane reachable) with a tool the
    // image has, and fails on an HTTP error status.
    let check = &bulkhead.healthcheck.as_ref().expect("a healthcheck").test;
    assert_eq!(check[0], "CMD", "{check:?}");
    assert_eq!(check[1], "curl", "{check:?}");
    assert!(
        check
            .iter()
            .any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('f')),
        "curl without -f succeeds on a 503: {check:?}"
    );
    assert!(
        check.contains(&format!("http://127.0.0.1:{port}/readyz")),
        "{check:?}"
    );
    assert!(route_exists("/readyz"));
    let runtime = runtime_stage();
    assert!(
        runtime
            .lines()
            .any(|l| l.contains("apt-get install") && l.split_whitespace().any(|w| w == "curl")),
        "the runtime image has no curl for the healthcheck:\n{runtime}"
    );
    assert!(runtime.contains(r#"CMD ["serve"]"#), "{runtime}");

    // It starts only on a healthy database and a registered server.
    assert!(bulkhead.waits_for("db", "service_healthy"));
    assert!(bulkhead.waits_for("server-add", "service_completed_successfully"));
    let db = compose.service("db");
    let db_check = &db.healthcheck.as_ref().expect("db healthcheck").test;
    assert!(db_check.contains(&"pg_isready".to_string()), "{db_check:?}");
    assert!(
        db.ports.is_empty(),
        "the database is published: {:?}",
        db.ports
    );

    // Its home (the outbox) is the image's and outlives the container.
    let home = runtime
        .lines()
        .find_map(|l| l.strip_prefix("ENV BULKHEAD_HOME="))
        .expect("the image sets BULKHEAD_HOME");
    assert!(
        bulkhead
            .volumes
            .iter()
            .any(|v| v.ends_with(&format!(":{home}"))),
        "{:?}",
        bulkhead.volumes
    );
}

#[test]
fn secrets_and_the_base_domain_come_from_the_environment_and_fail_loudly_when_unset() {
    let compose = compose();
    let text = read("docker-compose.yml");
    let required = [
        "BULKHEAD_SECRET",
        "BULKHEAD_BASE_DOMAIN",
        "POSTGRES_PASSWORD",
    ];
    for var in required {
        assert!(
            !text.contains(&format!("${{{var}}}")),
            "${{{var}}} without :?"
        );
        assert!(
            !text.contains(&format!("${{{var}:-")),
            "{var} has a default"
        );
    }
    let bulkhead = compose.service("bulkhead");
    for key in ["BULKHEAD_SECRET", "BULKHEAD_BASE_DOMAIN"] {
        assert!(
            bulkhead.env(key).starts_with(&format!("${{{key}:?")),
            "{key}"
        );
    }
    let db = compose.service("db");
    assert!(
        db.env("POSTGRES_PASSWORD")
            .starts_with("${POSTGRES_PASSWORD:?")
    );

    // With the operator's variables every value resolves...
    let vars = operator_env();
    let resolve = |service: &Service, key: &str, vars: &BTreeMap<&str, &str>| {
        interpolate(&service.env(key), vars)
    };
    for (name, service) in &compose.services {
        for key in service.environment.keys() {
            resolve(service, key, &vars).unwrap_or_else(|e| panic!("{name}.{key}: {e}"));
        }
    }
    // ...and without any one of them, every value naming it stops compose.
    for var in required {
        let mut without = vars.clone();
        without.remove(var);
        for (name, service) in &compose.services {
            for key in service.environment.keys() {
                if service.env(key).contains(&format!("${{{var}")) {
                    assert!(
                        resolve(service, key, &without).is_err(),
                        "{name}.{key} resolves without {var}"
                    );
                }
            }
        }
    }

    // The URLs name the database service, its control-plane database, and the
    // password from the environment.
    let control = resolve(bulkhead, "BULKHEAD_CONTROL_URL", &vars).unwrap();
    let control = url::Url::parse(&control).expect("BULKHEAD_CONTROL_URL is a URL");
    assert_eq!(control.host_str(), Some("db"));
    assert_eq!(control.password(), Some(vars["POSTGRES_PASSWORD"]));
    assert_eq!(control.path(), format!("/{}", db.env("POSTGRES_DB")));
    let admin = resolve(
        compose.service("server-add"),
        "BULKHEAD_SERVER_ADMIN_URL",
        &vars,
    )
    .unwrap();
    let admin = url::Url::parse(&admin).expect("BULKHEAD_SERVER_ADMIN_URL is a URL");
    assert_eq!(
        (admin.host_str(), admin.username()),
        (Some("db"), "postgres")
    );
    assert_eq!(admin.password(), Some(vars["POSTGRES_PASSWORD"]));
}

#[test]
fn every_flag_and_variable_compose_gives_bulkhead_is_one_the_binary_accepts() {
    let compose = compose();
    let mut checked = 0;
    for (name, service) in compose.bulkhead_services() {
        // The subcommand is the words before the first flag.
        let split = service
            .command
            .iter()
            .position(|w| w.starts_with('-'))
            .unwrap_or(service.command.len());
        let subcommand: Vec<&str> = service.command[..split]
            .iter()
            .map(String::as_str)
            .filter(|w| !w.is_empty())
            .collect();
        assert!(!subcommand.is_empty(), "{name} has no command");
        let help = help(&subcommand);
        for word in &service.command[split..] {
            let Some(flag) = word.strip_prefix("--") else {
                continue;
            };
            let flag = flag.split('=').next().unwrap();
            assert!(
                help.contains(&format!("--{flag} ")) || help.contains(&format!("--{flag}\n")),
                "{name}: `bulkhead {}` has no --{flag}:\n{help}",
                subcommand.join(" ")
            );
            checked += 1;
        }
        for key in service
            .environment
            .keys()
            .filter(|k| k.starts_with("BULKHEAD_"))
        {
            assert!(
                help.contains(&format!("[env: {key}=")) || help.contains(&format!("[env: {key}]")),
                "{name}: `bulkhead {}` reads no {key}:\n{help}",
                subcommand.join(" ")
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} flags and variables checked");
}

#[test]
fn caddy_asks_bulkhead_before_each_certificate_and_proxies_every_host_to_it() {
    let compose = compose();
    let bulkhead = compose.service("bulkhead");
    let upstream = format!("bulkhead:{}", listen(bulkhead).port());
    let caddyfile = caddyfile();

    // The global options block (the first, with no address) asks bulkhead.
    let global = caddyfile.first().expect("a Caddyfile");
    assert!(global.words.is_empty(), "no global options block first");
    let ask = find(&global.block, &["on_demand_tls"])
        .and_then(|o| find(&o.block, &["ask"]))
        .expect("on_demand_tls { ask ... }");
    assert_eq!(
        ask.words[1..],
        [format!("http://{upstream}/internal/tls-ask")],
        "the ask URL"
    );
    assert!(route_exists("/internal/tls-ask"));
    let mut every = Vec::new();
    all(&caddyfile, &mut every);
    assert!(
        !every
            .iter()
            .any(|d| d.words.first().is_some_and(|w| w == "trusted_proxies")),
        "Caddy's trusted_proxies would pass a client's X-Forwarded-For on"
    );
    assert!(
        !every
            .iter()
            .any(|d| d.words.first().is_some_and(|w| w == "header_up")),
        "reverse_proxy's default headers are the ones bulkhead needs (Host kept)"
    );

    // Every host over HTTPS: on-demand certificates, proxied to bulkhead.
    let https = find(&caddyfile, &["https://"]).expect("an https:// site");
    let tls = find(&https.block, &["tls"]).expect("tls in the https:// site");
    assert!(
        find(&tls.block, &["on_demand"]).is_some(),
        "tls without on_demand"
    );
    assert!(find(&https.block, &["reverse_proxy", &upstream]).is_some());

    // Plain HTTP: a custom domain's verification path reaches bulkhead (its
    // check follows no redirect), the rest is redirected to HTTPS.
    let http = find(&caddyfile, &["http://"]).expect("an http:// site");
    assert!(route_exists("/.well-known/bulkhead-verify/{token}"));
    let verify = find(&http.block, &["handle", "/.well-known/bulkhead-verify/*"])
        .expect("handle /.well-known/bulkhead-verify/*");
    assert!(find(&verify.block, &["reverse_proxy", &upstream]).is_some());
    let mut in_http = Vec::new();
    all(&http.block, &mut in_http);
    assert!(
        in_http
            .iter()
            .any(|d| d.words[0] == "redir" && d.words[1].starts_with("https://"))
    );

    // The caddy service reads this file, keeps its certificates, and takes
    // the ports the world connects to.
    let caddy = compose.service("caddy");
    assert!(
        caddy
            .image
            .as_deref()
            .is_some_and(|i| i.starts_with("caddy:2"))
    );
    assert!(
        caddy
            .volumes
            .contains(&"./Caddyfile:/etc/caddy/Caddyfile:ro".to_string())
    );
    let data = caddy
        .volumes
        .iter()
        .find(|v| v.ends_with(":/data"))
        .expect("Caddy's /data (certificates) on a volume");
    assert!(
        compose
            .volumes
            .contains_key(data.split(':').next().unwrap())
    );
    for port in [80, 443] {
        assert!(
            caddy.ports.contains(&format!("{port}:{port}")),
            "{:?}",
            caddy.ports
        );
    }
    assert!(caddy.waits_for("bulkhead", "service_healthy"));
}

#[test]
fn bulkhead_trusts_x_forwarded_for_from_caddys_fixed_address_alone() {
    let compose = compose();
    let bulkhead = compose.service("bulkhead");
    let caddy = compose.service("caddy");
    let trusted = bulkhead
        .flag("--trusted-proxy")
        .expect("serve --trusted-proxy");
    let trusted = bulkhead::http::parse_network(trusted).expect("a network");

    // Caddy has a fixed address on a network of its own with bulkhead, and
    // that address is all that is trusted: the network's gateway, where
    // connections to the published port come from, is not.
    let edge = caddy.networks();
    let [edge] = edge.as_slice() else {
        panic!("caddy should be on one network: {edge:?}");
    };
    assert!(
        bulkhead.networks().contains(edge),
        "bulkhead is not on {edge}"
    );
    let subnet: ipnet::IpNet = compose.networks[edge]
        .as_ref()
        .and_then(|n| n.ipam.as_ref())
        .map(|i| i.config[0].subnet.parse().expect("a subnet"))
        .expect("a fixed subnet for the edge network");
    let address = caddy.ipv4_on(edge).expect("a fixed address for caddy");
    assert!(subnet.contains(&address));
    assert_eq!(
        trusted,
        ipnet::IpNet::from(address),
        "--trusted-proxy is not Caddy"
    );
    let gateway = subnet.hosts().next().unwrap();
    assert!(
        !trusted.contains(&gateway),
        "the gateway {gateway} is trusted"
    );

    // The database is on an internal network, not the edge.
    let db = compose.service("db");
    assert!(!db.networks().contains(edge));
    for network in db.networks() {
        assert!(
            compose.networks[&network]
                .as_ref()
                .is_some_and(|n| n.internal),
            "{network} is not internal"
        );
    }
}

#[tokio::test]
async fn the_compose_start_up_registers_the_database_once_however_often_it_runs() {
    let compose = compose();
    let add = compose.service("server-add");
    assert!(add.waits_for("db", "service_healthy"));
    let [server, add_, name, flag] = add.command.as_slice() else {
        panic!("server-add: {:?}", add.command);
    };
    assert_eq!((server.as_str(), add_.as_str()), ("server", "add"));
    assert_eq!(flag, "--if-not-exists");

    // Its exact command, on every start, against a fresh control plane.
    let fleet = TestFleet::new().await;
    let run = |args: &[&str]| {
        let out = fleet
            .cli()
            .args(args)
            .env("BULKHEAD_SERVER_ADMIN_URL", pg().url("postgres"))
            .output()
            .expect("run bulkhead");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let all = format!("stdout: {stdout}\nstderr: {stderr}");
        (out.status.code(), stdout, all)
    };
    let start: Vec<&str> = add.command.iter().map(String::as_str).collect();
    let (code, out, all) = run(&start);
    assert_eq!(code, Some(0), "{all}");
    assert!(out.contains(&format!("added server `{name}`")), "{all}");
    for _restart in 0..2 {
        let (code, out, all) = run(&start);
        assert_eq!(code, Some(0), "a restart fails: {all}");
        assert!(out.contains("already exists; left as it is"), "{all}");
    }
    // Without the flag a second add is still refused: the flag is what makes
    // the start-up idempotent.
    let (code, _, all) = run(&["server", "add", name]);
    assert_eq!(code, Some(2), "{all}");
    assert!(
        all.contains(&format!("server `{name}` already exists")),
        "{all}"
    );

    let (code, out, all) = run(&["server", "list", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let named: Vec<_> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter(|s| s["name"] == name.as_str())
        .collect();
    assert_eq!(named.len(), 1, "{all}");
    assert_eq!(named[0]["state"], "open", "{all}");
}
