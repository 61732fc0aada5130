//! PostgreSQL refuses to run as root: when bulkhead runs as root, the cluster
//! belongs to the `postgres` OS user, who must also be able to reach it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::{PgError, io};

/// Who runs `initdb`, `pg_ctl` and the server: ourselves, or `postgres` when
/// we are root.
pub struct ServerUser {
    ids: Option<(u32, u32)>,
}

impl ServerUser {
    pub fn current() -> Result<Self, PgError> {
        let euid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .map_err(io("reading /proc/self"))?;
        if euid != 0 {
            return Ok(Self { ids: None });
        }
        let passwd = std::fs::read_to_string("/etc/passwd").map_err(io("reading /etc/passwd"))?;
        let ids = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == "postgres")
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or(PgError::NoPostgresUser)?;
        Ok(Self { ids: Some(ids) })
    }

    pub fn command<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    pub fn chown(&self, path: &Path) -> Result<(), PgError> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(io(format!("chown {}", path.display())))?;
        }
        Ok(())
    }

    /// Gives the cluster directory to the server user and makes sure that user
    /// can traverse every directory above it (a 0700 temp dir is the classic
    /// trap): those get `o+x`, never read access.
    pub fn prepare_dir(&self, dir: &Path) -> Result<(), PgError> {
        if self.ids.is_none() {
            return Ok(());
        }
        let dir = dir
            .canonicalize()
            .map_err(io(format!("resolving {}", dir.display())))?;
        self.chown(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", dir.display())))?;
        for ancestor in dir.ancestors().skip(1) {
            let meta = std::fs::metadata(ancestor)
                .map_err(io(format!("reading {}", ancestor.display())))?;
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                tracing::info!(path = %ancestor.display(), "adding o+x so the postgres user can reach the cluster");
                std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001))
                    .map_err(io(format!("chmod o+x {}", ancestor.display())))?;
            }
        }
        Ok(())
    }
}
