-- For every tenant runtime role (t_*, not *_owner): how many databases it may
-- connect to, whether it may create temp tables anywhere, and how many roles
-- it is a member of. The isolation contract wants 1, false, 0.
-- A database that allows no connections (datallowconn false) is reachable by
-- nobody: every database the provisioner creates is created so, and opened
-- only after PUBLIC's default CONNECT and TEMP are revoked, in the same
-- transaction (database_lockdown.sql, database_open.sql). Until then its ACL
-- still shows those defaults, which a connection could never use.
SELECT r.rolname::text AS role,
       (SELECT count(*) FROM pg_database d
         WHERE d.datallowconn AND has_database_privilege(r.oid, d.oid, 'CONNECT'))::int
           AS connectable,
       (SELECT array_agg(d.datname::text ORDER BY d.datname) FROM pg_database d
         WHERE d.datallowconn AND has_database_privilege(r.oid, d.oid, 'CONNECT')) AS databases,
       (SELECT bool_or(has_database_privilege(r.oid, d.oid, 'TEMP')) FROM pg_database d
         WHERE d.datallowconn) AS temp,
       (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)::int AS memberships,
       r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication
           AS privileged
  FROM pg_roles r
 WHERE r.rolname LIKE 't\_%' AND r.rolname NOT LIKE '%\_owner'
 ORDER BY r.rolname;
