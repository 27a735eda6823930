#!/usr/bin/env bash
# Set everything up and run the demo on a throwaway local cluster: execlog
# (and pg_cron) preloaded, two workers, in a temporary directory that is
# removed at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

dir=$(mktemp -d /tmp/execlog-demo.XXXXXX)
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"
port=${EXECLOG_DEMO_PORT:-54329}
cleanup() {
	run_as_user pg_ctl -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

run_as_user initdb -D "$dir/data" -A trust -U postgres >/dev/null
cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'execlog, pg_cron'
cron.database_name = 'postgres'
execlog.database = 'postgres'
execlog.workers = 2
CONF
run_as_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
run_as_user psql -X -q -h "$dir" -p "$port" -U postgres -d postgres \
	-v ON_ERROR_STOP=1 -f "$EXECLOG_ROOT/scripts/demo.sql"
