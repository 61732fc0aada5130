-- Created closed: database_open.sql revokes PUBLIC's defaults, then opens it.
CREATE DATABASE {{shared}} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' ALLOW_CONNECTIONS false;
