-- Run over a fresh connection logged in as the tenant's runtime role: the
-- provisioner compares every column with what the isolation contract wants.
SELECT current_user::text AS role,
       current_database()::text AS database,
       current_schemas(false)::text[] AS schemas,
       (SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication
          FROM pg_roles WHERE rolname = current_user) AS privileged,
       (SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
         WHERE r.rolname = current_user)::int AS memberships,
       has_database_privilege(current_database(), 'TEMP') AS can_temp,
       has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       has_schema_privilege((current_schemas(false))[1], 'CREATE') AS can_create_in_schema;
