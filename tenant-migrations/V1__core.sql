-- The tenant's own schema. Runs inside the tenant's database (database mode)
-- or with the tenant's schema first on search_path (schema mode), as the
-- tenant's owner role: the runtime role gets DML through default privileges
-- and can never DROP or ALTER any of it. Names are unqualified on purpose.

CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    archived    boolean NOT NULL DEFAULT false,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_created ON projects (created_at DESC, id DESC);

CREATE TABLE tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    body        text NOT NULL DEFAULT '' CHECK (length(body) <= 100000),
    status      text NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
    assignee    uuid,
    due_date    date,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_project ON tasks (project_id, id);
CREATE INDEX tasks_assignee ON tasks (assignee) WHERE assignee IS NOT NULL;
CREATE INDEX tasks_due ON tasks (due_date) WHERE status <> 'done';

-- Local copy of the control plane's memberships, for joins and display.
CREATE TABLE members (
    user_id      uuid PRIMARY KEY,
    email        text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    synced_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE settings (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]{0,62}$'),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       uuid,
    actor_label text NOT NULL DEFAULT '',
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text,
    client_ip   inet,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

CREATE TABLE files (
    id           uuid PRIMARY KEY,
    project_id   bigint REFERENCES projects (id) ON DELETE SET NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    content_type text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    sha256       text,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    error        text,
    uploaded_by  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_created ON files (created_at DESC, id);
CREATE INDEX files_pending ON files (created_at) WHERE status = 'pending';
