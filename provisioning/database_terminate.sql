-- Ends every session in one database (but this one), so that it can be renamed.
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = $1 AND pid <> pg_backend_pid();
