-- Created closed (ALLOW_CONNECTIONS false) so that nobody can connect before
-- database_lockdown.sql has revoked PUBLIC's default CONNECT and TEMP.
-- WAL_LOG copies the template block by block through the WAL: fast for small
-- templates and no checkpoint storm under concurrent creation.
CREATE DATABASE {{database}} OWNER {{owner}} TEMPLATE {{template}} STRATEGY WAL_LOG
    ALLOW_CONNECTIONS false;
