//! Finds the PostgreSQL server binaries: `PATH`, `pg_config --bindir`, then
//! `/usr/lib/postgresql/*/bin` and friends, newest major version first.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::PgError;

/// A directory holding `initdb`, `pg_ctl` and `postgres`, with its major version.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
    pub major: u32,
}

impl Binaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The binaries in `dir` if given (an explicit choice: no fallback), else
    /// the newest found on this machine.
    pub fn locate(dir: Option<&Path>) -> Result<Self, PgError> {
        match dir {
            Some(dir) => Self::search(vec![dir.to_path_buf()]),
            None => Self::find(),
        }
    }

    pub fn find() -> Result<Self, PgError> {
        Self::search(candidate_dirs())
    }

    fn search(dirs: Vec<PathBuf>) -> Result<Self, PgError> {
        let mut found: Vec<Binaries> = dirs
            .into_iter()
            .filter(|dir| {
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|t| dir.join(t).is_file())
            })
            .filter_map(|dir| {
                // PATH often holds symlinks to the real bin directory (which also
                // has pg_dump and pg_restore): use the directory they point into.
                let real = dir.join("postgres").canonicalize().ok()?;
                let dir = real.parent()?.to_path_buf();
                let major = major_version(&real)?;
                Some(Binaries { dir, major })
            })
            .collect();
        // Stable sort: among equal versions the earlier source (PATH) wins.
        found.sort_by_key(|b| std::cmp::Reverse(b.major));
        found.into_iter().next().ok_or(PgError::NoServerBinaries)
    }
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        dirs.push(PathBuf::from(dir));
    }
    for root in [
        "/usr/lib/postgresql",
        "/usr/local/pgsql",
        "/opt/homebrew/opt",
    ] {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            dirs.push(entry.path().join("bin"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs
}

/// `postgres (PostgreSQL) 15.18 (Debian ...)` -> 15
fn major_version(postgres: &Path) -> Option<u32> {
    let out = Command::new(postgres).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(2)?;
    version.split(['.', ' ']).next()?.parse().ok()
}
