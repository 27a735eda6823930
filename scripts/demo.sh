#!/usr/bin/env bash
# Set everything up and run the demo on a throwaway local cluster: execlog
# (and pg_cron) preloaded, two workers, in a temporary directory that is
# removed at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

dir=$(mktemp -d /tmp/execlog-demo.XXXXXX)
port=${EXECLOG_DEMO_PORT:-54329}
trap 'stop_cluster "$dir"; rm -rf "$dir"' EXIT
private_install "$EXECLOG_ROOT" "$dir/install"
chown -R "$EXECLOG_USER" "$dir"
start_cluster "$dir" "$port" "shared_preload_libraries = 'execlog, pg_cron'
cron.database_name = 'postgres'
execlog.database = 'postgres'
execlog.workers = 2"
psql_at "$dir" "$port" -v ON_ERROR_STOP=1 -f "$EXECLOG_ROOT/scripts/demo.sql"
