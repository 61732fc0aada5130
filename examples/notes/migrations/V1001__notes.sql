-- The notes product's own table, in every tenant's database (or schema),
-- created by the tenant's owner role: the runtime role the requests use may
-- read and write it, never drop or alter it.
CREATE TABLE notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
