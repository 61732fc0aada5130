-- A tenant's role moves from its slug-derived name to its opaque one
-- (`reconcile`). Its password is a SCRAM verifier, which does not depend on
-- the role's name (an MD5 one would, and PostgreSQL would clear it).
ALTER ROLE {{from}} RENAME TO {{to}};
