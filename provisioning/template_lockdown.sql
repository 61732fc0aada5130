-- Runs inside the template database. Its objects are created by the template
-- owner role; each tenant clone hands them to the tenant's owner role.
-- Serialised with every other change to a database's ACL ("tuple
-- concurrently updated" otherwise); runs in one transaction.
LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
REVOKE ALL ON DATABASE {{template}} FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT CREATE, USAGE ON SCHEMA public TO {{template_owner}};
