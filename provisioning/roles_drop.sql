DROP ROLE IF EXISTS {{runtime}};
DROP ROLE IF EXISTS {{owner}};
