-- Unqualified names resolve to the tenant's own schema only, for anyone
-- connecting as the runtime role (bulkhead's own connections also pin it at
-- connection start, which outranks this default: a role may change its own
-- defaults, so this one alone is not trusted).
ALTER ROLE {{runtime}} IN DATABASE {{shared}} SET search_path = {{schema}};
