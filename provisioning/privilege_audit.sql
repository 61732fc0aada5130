-- For every tenant runtime role (t_*, not *_owner): how many databases it may
-- connect to, whether it may create temp tables anywhere, and how many roles
-- it is a member of. The isolation contract wants 1, false, 0.
SELECT r.rolname::text AS role,
       (SELECT count(*) FROM pg_database d
         WHERE has_database_privilege(r.oid, d.oid, 'CONNECT'))::int AS connectable,
       (SELECT array_agg(d.datname::text ORDER BY d.datname) FROM pg_database d
         WHERE has_database_privilege(r.oid, d.oid, 'CONNECT')) AS databases,
       (SELECT bool_or(has_database_privilege(r.oid, d.oid, 'TEMP')) FROM pg_database d) AS temp,
       (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)::int AS memberships,
       r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication
           AS privileged
  FROM pg_roles r
 WHERE r.rolname LIKE 't\_%' AND r.rolname NOT LIKE '%\_owner'
 ORDER BY r.rolname;
