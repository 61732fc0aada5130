-- Rate-limited attempts: log-ins (per e-mail and per client address),
-- invitation acceptances and sign-ups (per client address). An attempt is
-- recorded, under a lock per key, before the password is hashed, so attempts
-- sent at once are counted one after another; a log-in or acceptance that
-- succeeds removes its own row again.
ALTER TABLE login_failures RENAME TO attempts;
ALTER INDEX login_failures_email RENAME TO attempts_email;
ALTER INDEX login_failures_ip RENAME TO attempts_ip;
ALTER TABLE attempts
    ADD COLUMN kind text NOT NULL DEFAULT 'login'
        CHECK (kind IN ('login', 'invitation', 'signup')),
    ALTER COLUMN email DROP NOT NULL;
DROP INDEX attempts_email;
DROP INDEX attempts_ip;
CREATE INDEX attempts_email ON attempts (kind, email, at) WHERE email IS NOT NULL;
CREATE INDEX attempts_ip ON attempts (kind, ip, at);
