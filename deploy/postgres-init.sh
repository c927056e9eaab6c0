#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d):
# Odoo's own role, with the one password compose gives it (ODOO_DB_PASSWORD). The
# gateway's task store lives in database "gateway", owned by POSTGRES_USER.
set -eu
psql -v ON_ERROR_STOP=1 -v odoo_password="$ODOO_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE odoo WITH LOGIN CREATEDB PASSWORD :'odoo_password';
SQL
