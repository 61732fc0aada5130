-- Bounds every session of the runtime role starts with, from the tenant's
-- plan (`src/provision/limits.rs`): a statement, a transaction left idle and
-- a query's temporary files cannot grow without end. Set by a superuser:
-- `temp_file_limit` is a superuser setting, so the role cannot SET it or
-- change this default; the two timeouts it can SET in a session, which the
-- pool's reset (`DISCARD ALL`) takes back before the next request.
ALTER ROLE {{runtime}} SET statement_timeout = {{statement_timeout_ms}};
ALTER ROLE {{runtime}} SET idle_in_transaction_session_timeout = {{idle_in_transaction_ms}};
ALTER ROLE {{runtime}} SET temp_file_limit = {{temp_file_limit_kb}};
