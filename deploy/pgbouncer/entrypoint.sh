#!/bin/sh
# The one user PgBouncer lets in, with the password PostgreSQL has for it (docker-compose.yml's).
set -eu
printf '"%s" "%s"\n' "${DB_USER:-coco}" "${DB_PASSWORD:?DB_PASSWORD is required}" > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
