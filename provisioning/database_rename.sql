-- Runs while the database is closed (database_close.sql) and its sessions
-- are gone; PostgreSQL waits up to 5 s for terminated ones to exit.
ALTER DATABASE {{from}} RENAME TO {{to}};
