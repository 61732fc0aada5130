//! How a run reports progress: a progress bar on a terminal, JSON lines on a
//! pipe (one object per event, for log shippers and tests), or nothing.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

pub enum Progress {
    Bar(ProgressBar),
    JsonLines,
    Silent,
}

impl Progress {
    /// A bar when stderr is a terminal, JSON lines on stdout otherwise.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tenants · {per_sec} · ETA {eta} · {msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            Progress::JsonLines
        }
    }

    fn line(value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    pub fn phase(&self, name: &str, total: usize) {
        match self {
            Progress::Bar(bar) => {
                bar.set_length(total as u64);
                bar.set_message(name.to_string());
            }
            Progress::JsonLines => {
                Self::line(json!({"event": "phase", "phase": name, "tenants": total}))
            }
            Progress::Silent => {}
        }
    }

    pub fn template(&self, server: &str, version: i32) {
        match self {
            Progress::Bar(bar) => bar.println(format!("template on {server}: version {version}")),
            Progress::JsonLines => {
                Self::line(json!({"event": "template", "server": server, "version": version}))
            }
            Progress::Silent => {}
        }
    }

    pub fn tenant(
        &self,
        slug: &str,
        version: i32,
        millis: u128,
        error: Option<&str>,
        failures: usize,
    ) {
        match self {
            Progress::Bar(bar) => {
                bar.inc(1);
                if let Some(e) = error {
                    bar.println(format!("FAILED {slug}: {e}"));
                }
                bar.set_message(format!("{failures} failed"));
            }
            Progress::JsonLines => Self::line(json!({
                "event": "tenant", "slug": slug, "version": version, "ms": millis as u64,
                "state": if error.is_some() { "failed" } else { "succeeded" }, "error": error,
            })),
            Progress::Silent => {}
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
