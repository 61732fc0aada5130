-- Sessions are cached by every serving instance (and served from that cache
-- while the control plane is away): whatever ends a session or changes what
-- it may do drops the cached entries at once, by NOTIFY on the channel the
-- routing caches already listen on.
--   session:<sha-256 hex>:<tenant id>
--                               a session ended (log-out, pruned, cascaded)
--                               or its times moved back
--   member:<tenant id>:<user>   a membership's role changed or it ended
--   user:<user id>              a user renamed or deleted
-- A session's last use moving forward (the once-a-minute touch) notifies
-- nothing.

CREATE FUNCTION bulkhead_notify_people() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('bulkhead_routing',
            'session:' || encode(OLD.id_hash, 'hex') || ':' || OLD.tenant_id::text);
    ELSIF TG_TABLE_NAME = 'memberships' THEN
        PERFORM pg_notify('bulkhead_routing',
            'member:' || OLD.tenant_id::text || ':' || OLD.user_id::text);
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('bulkhead_routing', 'user:' || OLD.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_ended
    AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_people();

CREATE TRIGGER sessions_moved_back
    AFTER UPDATE OF last_seen_at, expires_at, user_id, tenant_id ON sessions
    FOR EACH ROW
    WHEN (NEW.last_seen_at < OLD.last_seen_at
          OR NEW.expires_at <> OLD.expires_at
          OR NEW.user_id <> OLD.user_id
          OR NEW.tenant_id <> OLD.tenant_id)
    EXECUTE FUNCTION bulkhead_notify_people();

CREATE TRIGGER memberships_changed
    AFTER UPDATE OF role, user_id, tenant_id OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_people();

CREATE TRIGGER users_changed
    AFTER UPDATE OF email, display_name OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_people();
