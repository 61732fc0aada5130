-- The defaults set on each of the given roles for every database (not the
-- per-database ones, such as a schema-mode tenant's pinned search_path), as
-- `name=value` texts: `reconcile` compares them with the plan's limits.
SELECT r.rolname::text AS role, coalesce(s.setconfig, '{}'::text[]) AS settings
FROM pg_catalog.pg_roles r
LEFT JOIN pg_catalog.pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0
WHERE r.rolname = ANY($1::text[]);
