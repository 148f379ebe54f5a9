#!/bin/sh
# Writes PgBouncer's configuration from the environment, then runs it in the foreground.
#
#   PGBOUNCER_DB_HOST, PGBOUNCER_DB_PORT (5432), PGBOUNCER_DB_NAME, PGBOUNCER_DB_USER,
#   PGBOUNCER_DB_PASSWORD      the PostgreSQL server and the one account cellsearch uses
#   PGBOUNCER_POOL_SIZE        server connections of the transaction-mode entry (20)
#   PGBOUNCER_LISTEN_POOL_SIZE server connections of the session-mode entry <db>_listen,
#                              where idle workers LISTEN (16; give the workers
#                              CELLSEARCH_MAX_LISTENERS at most this)
#   PGBOUNCER_MAX_CLIENT_CONN  client connections it accepts (4000; two per worker)
set -eu
: "${PGBOUNCER_DB_HOST:?}" "${PGBOUNCER_DB_NAME:?}" "${PGBOUNCER_DB_USER:?}" "${PGBOUNCER_DB_PASSWORD:?}"
port="${PGBOUNCER_DB_PORT:-5432}"
dir="${PGBOUNCER_RUN_DIR:-/run/pgbouncer}"
server="host=${PGBOUNCER_DB_HOST} port=${port} dbname=${PGBOUNCER_DB_NAME}"
umask 077
printf '"%s" "%s"\n' "${PGBOUNCER_DB_USER}" "${PGBOUNCER_DB_PASSWORD}" > "${dir}/userlist.txt"
cat > "${dir}/pgbouncer.ini" <<INI
[databases]
${PGBOUNCER_DB_NAME} = ${server} pool_mode=transaction pool_size=${PGBOUNCER_POOL_SIZE:-20}
${PGBOUNCER_DB_NAME}_listen = ${server} pool_mode=session pool_size=${PGBOUNCER_LISTEN_POOL_SIZE:-16}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${PGBOUNCER_PORT:-6432}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${dir}/userlist.txt
admin_users = ${PGBOUNCER_DB_USER}
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-4000}
server_reset_query = DISCARD ALL
logfile =
pidfile =
INI
exec pgbouncer "${dir}/pgbouncer.ini"
