#!/bin/sh
# Runs once, on the first start of the PostgreSQL volume: n8n's own role and
# database, separate from restoreflow's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pw="$N8N_DB_PASSWORD" <<'SQL'
CREATE ROLE n8n LOGIN PASSWORD :'pw';
CREATE DATABASE n8n OWNER n8n;
SQL
