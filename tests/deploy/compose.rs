//! `docker-compose.yml` as compose reads it (the parts the tests check),
//! and compose's variable substitution.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_norway::Value;

use super::read;

#[derive(Deserialize)]
pub struct Compose {
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Network>>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Value>>,
}

#[derive(Deserialize)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Value>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, Value>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    pub networks: Option<ServiceNetworks>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, DependsOn>,
    pub healthcheck: Option<Healthcheck>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum ServiceNetworks {
    List(Vec<String>),
    Map(BTreeMap<String, Option<ServiceNetwork>>),
}

#[derive(Deserialize)]
pub struct ServiceNetwork {
    ipv4_address: Option<String>,
}

#[derive(Deserialize)]
pub struct DependsOn {
    pub condition: String,
}

#[derive(Deserialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
}

#[derive(Deserialize)]
pub struct Network {
    #[serde(default)]
    pub internal: bool,
    pub ipam: Option<Ipam>,
}

#[derive(Deserialize)]
pub struct Ipam {
    pub config: Vec<IpamConfig>,
}

#[derive(Deserialize)]
pub struct IpamConfig {
    pub subnet: String,
}

pub fn compose() -> Compose {
    serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses")
}

impl Compose {
    pub fn service(&self, name: &str) -> &Service {
        self.services
            .get(name)
            .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
    }

    /// The services built from this repository's Dockerfile: bulkhead itself.
    pub fn bulkhead_services(&self) -> impl Iterator<Item = (&String, &Service)> {
        self.services.iter().filter(|(_, s)| s.build.is_some())
    }
}

impl Service {
    pub fn env(&self, key: &str) -> String {
        match self.environment.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            other => panic!("environment {key} is {other:?}, not a value"),
        }
    }

    pub fn networks(&self) -> Vec<String> {
        match &self.networks {
            None => vec!["default".into()],
            Some(ServiceNetworks::List(l)) => l.clone(),
            Some(ServiceNetworks::Map(m)) => m.keys().cloned().collect(),
        }
    }

    pub fn ipv4_on(&self, network: &str) -> Option<IpAddr> {
        match &self.networks {
            Some(ServiceNetworks::Map(m)) => m
                .get(network)?
                .as_ref()?
                .ipv4_address
                .as_ref()
                .map(|a| a.parse().expect("ipv4_address is an address")),
            _ => None,
        }
    }

    /// The container ports of `ports:` (`[host-ip:][host-port:]port[/proto]`).
    pub fn container_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .map(|p| {
                let p = p.split('/').next().unwrap_or(p);
                p.rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .expect("a port number")
            })
            .collect()
    }

    pub fn waits_for(&self, service: &str, condition: &str) -> bool {
        self.depends_on
            .get(service)
            .is_some_and(|d| d.condition == condition)
    }

    /// The value following `flag` in the command.
    pub fn flag(&self, flag: &str) -> Option<&str> {
        let i = self.command.iter().position(|w| w == flag)?;
        self.command.get(i + 1).map(String::as_str)
    }
}

/// Compose's variable substitution for the forms the file may use:
/// `${NAME}`, `${NAME:-default}`, `${NAME:?message}` and `$$`. Unset and
/// empty are alike for the `:` forms, as in compose.
pub fn interpolate(s: &str, vars: &BTreeMap<&str, &str>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let body = rest
            .strip_prefix('{')
            .unwrap_or_else(|| panic!("`${rest}`: write variables as ${{NAME}}"));
        let end = body.find('}').expect("a closing }");
        let (expr, after) = (&body[..end], &body[end + 1..]);
        let (name, op) = match expr.find(':') {
            Some(j) => (&expr[..j], Some(&expr[j + 1..])),
            None => (expr, None),
        };
        let value = vars.get(name).copied().filter(|v| !v.is_empty());
        match (value, op) {
            (Some(v), _) => out.push_str(v),
            (None, None) => {}
            (None, Some(op)) if op.starts_with('-') => out.push_str(&op[1..]),
            (None, Some(op)) if op.starts_with('?') => {
                return Err(format!("{name}: {}", &op[1..]));
            }
            (None, Some(op)) => panic!("unsupported substitution `${{{name}:{op}}}`"),
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// What an operator sets before `docker compose up`.
pub fn operator_env() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("BULKHEAD_BASE_DOMAIN", "example.com"),
        ("BULKHEAD_SECRET", "0123456789abcdef0123456789abcdef"),
        ("POSTGRES_PASSWORD", "pg-pass-from-env"),
    ])
}
