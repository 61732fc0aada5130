-- Runs inside the shared database: a schema-mode tenant's schema moves to
-- its opaque name; schema_pin.sql then points its role's search_path there.
ALTER SCHEMA {{from}} RENAME TO {{to}};
