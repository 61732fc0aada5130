-- Unqualified names resolve to the tenant's own schema only.
ALTER ROLE {{runtime}} IN DATABASE {{shared}} SET search_path = {{schema}};
