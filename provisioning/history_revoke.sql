-- The migration history belongs to the migrator: default privileges gave the
-- runtime role DML on it when it was created.
REVOKE ALL ON TABLE {{schema}}.bulkhead_schema_history FROM {{runtime}};
