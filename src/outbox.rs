//! Outgoing e-mail (invitations): each message is written as an `.eml` file
//! into the outbox directory (`$BULKHEAD_HOME/outbox/`), atomically, for a
//! relay or a person to pick up. Messages carry secrets (invitation links):
//! the log says where a message went, never what it says.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct Outbox {
    dir: Option<PathBuf>,
}

pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

impl Outbox {
    /// `None`: messages are dropped (and the log says so).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Writes the message; the path of its file.
    pub fn send(&self, mail: &Mail<'_>) -> io::Result<Option<PathBuf>> {
        let Some(dir) = &self.dir else {
            tracing::warn!(to = %mail.to, subject = %mail.subject, "no outbox configured: message dropped");
            return Ok(None);
        };
        std::fs::create_dir_all(dir)?;
        let now = time::OffsetDateTime::now_utc();
        let name = format!(
            "{}-{}.eml",
            now.unix_timestamp_nanos(),
            crate::secret::random_hex(4)
        );
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let text = format!(
            "To: {}\r\nSubject: {}\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            mail.to,
            mail.subject,
            mail.body.replace('\n', "\r\n")
        );
        // Written whole or not at all: a crash never leaves half a message.
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)?;
        let path = dir.join(name);
        std::fs::rename(&partial, &path)?;
        tracing::info!(to = %mail.to, path = %path.display(), "message written to the outbox");
        Ok(Some(path))
    }
}
