-- Runs inside the shared database: the schema with everything in it, then every
-- privilege and default privilege either role still holds here.
DROP SCHEMA IF EXISTS {{schema}} CASCADE;
DROP OWNED BY {{owner}}, {{runtime}};
