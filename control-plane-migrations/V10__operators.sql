-- Platform operators: the vendor's own staff, who log in on admin.<base>
-- only. A separate identity from tenant users (no row here is a user, no
-- user is an operator), with a password and a TOTP second factor, sessions
-- of their own, and single-use recovery codes. Nothing secret is stored as
-- it is: passwords as argon2id, tokens, sessions and recovery codes as
-- SHA-256, and the TOTP secret not at all (it is an HMAC of the master
-- secret and `totp_seed`, so a copy of this database alone does not give it).

CREATE TABLE operators (
    id             uuid PRIMARY KEY,
    -- Normalised by the application (control::Email); unique.
    email          text NOT NULL UNIQUE CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 254),
    role           text NOT NULL CHECK (role IN ('support', 'admin')),
    -- argon2id PHC string; NULL until the first enrolment sets it.
    password_hash  text,
    -- 16 random bytes; NULL until an enrolment is begun, and again after
    -- `operator reset-mfa`.
    totp_seed      bytea CHECK (length(totp_seed) = 16),
    -- The TOTP time step of the last code accepted (RFC 6238 §5.2): a code
    -- of this step or an earlier one is refused (replay).
    totp_last_step bigint NOT NULL DEFAULT 0,
    -- Set when the enrolment is confirmed with a TOTP code: only then can
    -- the operator log in.
    enrolled_at    timestamptz,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One-time enrolment links (`operator create`, `operator reset-mfa`): used
-- once to set the password and the second factor (`used_at`), then kept
-- only until that enrolment is confirmed.
CREATE TABLE operator_enrolments (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    operator_id uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX operator_enrolments_operator ON operator_enrolments (operator_id);

-- Operator sessions: as tenant sessions, but bound to no tenant and read
-- from here on every request (no cache: an operator disabled is out at once).
CREATE TABLE operator_sessions (
    id_hash      bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    operator_id  uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    user_agent   text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 500),
    ip           text NOT NULL DEFAULT ''
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);

-- Recovery codes, ten per enrolment, each accepted once instead of a TOTP
-- code.
CREATE TABLE operator_recovery_codes (
    operator_id uuid NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at     timestamptz,
    PRIMARY KEY (operator_id, code_hash)
);

-- Operator log-ins and enrolment confirmations are rate-limited as user
-- log-ins are, with counts of their own.
ALTER TABLE attempts DROP CONSTRAINT attempts_kind_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_kind_check
    CHECK (kind IN ('login', 'invitation', 'signup', 'operator_login'));
