-- Runs on creation and on every rotation; re-asserts every attribute so that a
-- role found already existing can never keep one it should not have. The
-- password is a pre-computed SCRAM-SHA-256 verifier of the derived password
-- (low iteration count: the password is a 256-bit HMAC output); the password
-- itself never reaches the server, the control plane or a log.
ALTER ROLE {{runtime}} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT {{limit}} PASSWORD {{verifier}};
