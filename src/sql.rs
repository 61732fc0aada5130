//! The one way identifiers and literals reach SQL text. Values go as bind
//! parameters everywhere else; utility statements (`CREATE ROLE`, `GRANT`…)
//! take no parameters, so their names pass through `Ident` and `Literal` here.

use std::fmt;

/// A quoted SQL identifier: `"t_acme-co"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    pub fn new(name: &str) -> Self {
        Self(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A quoted SQL string literal, escape-safe under `standard_conforming_strings`
/// (on by default since PostgreSQL 9.1; the E'' form makes it independent of it).
#[derive(Clone, PartialEq, Eq)]
pub struct Literal(String);

impl Literal {
    pub fn new(value: &str) -> Self {
        Self(format!(
            "E'{}'",
            value.replace('\\', "\\\\").replace('\'', "''")
        ))
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Literals may carry password verifiers: keep them out of Debug output.
impl fmt::Debug for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Literal(***)")
    }
}

/// A value substituted into a SQL template: already quoted, or a plain integer.
pub enum Arg<'a> {
    Ident(&'a Ident),
    Literal(&'a Literal),
    Int(i64),
}

impl fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Ident(i) => i.fmt(f),
            Arg::Literal(l) => l.fmt(f),
            Arg::Int(n) => n.fmt(f),
        }
    }
}

/// Fills `{{name}}` placeholders of a SQL template. Every placeholder must be
/// given and every argument used, so a typo in a reviewed `.sql` file is a bug
/// caught by the first test that runs it, not a silently wrong statement.
pub fn render(template: &str, args: &[(&str, Arg<'_>)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    let mut used = vec![false; args.len()];
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed placeholder in SQL template: {template}"));
        let name = after[..end].trim();
        let index = args
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("SQL template needs `{name}`, which was not given"));
        used[index] = true;
        out.push_str(&args[index].1.to_string());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        panic!("argument `{}` not used by SQL template", args[i].0);
    }
    out
}

/// `-c name=value` for a connection's start-up options, escaped as the server
/// splits them (on white space; a backslash takes the next character as is).
pub fn startup_option(name: &str, value: &str) -> String {
    let mut out = format!("-c {name}=");
    for c in value.chars() {
        if c == '\\' || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `search_path` a tenant connection is pinned to: its one schema, quoted.
/// `current_setting('search_path')` reads back exactly this text.
pub fn search_path_of(schema: &str) -> String {
    Ident::new(schema).to_string()
}

/// Pins `search_path` to `schema` for every connection made from `config`
/// (start-up options, added to any already there). A value sent at start-up
/// outranks every role and database default, so nothing the tenant's role
/// can change (`ALTER ROLE current_user SET search_path = ...`) applies.
pub fn pin_search_path(config: &mut tokio_postgres::Config, schema: &str) {
    let pin = startup_option("search_path", &search_path_of(schema));
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {pin}"),
        _ => pin,
    };
    config.options(&options);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_embedded_quotes_doubled() {
        assert_eq!(Ident::new("t_acme-co").to_string(), "\"t_acme-co\"");
        assert_eq!(Ident::new("a\"b").to_string(), "\"a\"\"b\"");
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(Literal::new("it's").to_string(), "E'it''s'");
        assert_eq!(Literal::new("a\\'b").to_string(), "E'a\\\\''b'");
        assert_eq!(format!("{:?}", Literal::new("pw")), "Literal(***)");
    }

    #[test]
    fn render_fills_every_placeholder() {
        let role = Ident::new("t_x");
        let sql = render(
            "GRANT CONNECT ON DATABASE {{db}} TO {{ role }}; -- {{n}}",
            &[
                ("db", Arg::Ident(&Ident::new("t_x"))),
                ("role", Arg::Ident(&role)),
                ("n", Arg::Int(3)),
            ],
        );
        assert_eq!(sql, "GRANT CONNECT ON DATABASE \"t_x\" TO \"t_x\"; -- 3");
    }

    #[test]
    fn startup_options_escape_spaces_and_backslashes() {
        assert_eq!(
            startup_option("search_path", &search_path_of("t_acme-co")),
            "-c search_path=\"t_acme-co\""
        );
        assert_eq!(startup_option("x", "a b\\c\"d"), "-c x=a\\ b\\\\c\"d");
        let mut config = tokio_postgres::Config::new();
        config.options("-c statement_timeout=5s");
        pin_search_path(&mut config, "public");
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=5s -c search_path=\"public\"")
        );
    }

    #[test]
    #[should_panic(expected = "not given")]
    fn render_refuses_a_missing_argument() {
        render("DROP ROLE {{role}}", &[]);
    }

    #[test]
    #[should_panic(expected = "not used")]
    fn render_refuses_an_unused_argument() {
        render("SELECT 1", &[("role", Arg::Int(1))]);
    }
}
