#!/usr/bin/env bash
# Smoke test of the INSTALLED Debian package postgresql-15-execlog: a
# throwaway cluster run by the system's PostgreSQL 15 with the packaged
# library preloaded, CREATE EXTENSION from the packaged scripts, and one
# execution that runs to success through the workers.
#
#   bash scripts/package_smoke.sh     # as root, after installing the .deb
#
# Ends with one line "N passed, N failed" (.ci/run adds it to its totals)
# and exits non-zero on any failure.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export PATH="/usr/lib/postgresql/15/bin:$PATH"

passed=0
failed=0
# check NAME EXPECTED ACTUAL: one counted comparison
check() {
	if [ "$2" = "$3" ]; then
		echo "ok - $1"
		passed=$((passed + 1))
	else
		echo "not ok - $1: expected \"$2\", got \"$3\""
		failed=$((failed + 1))
	fi
}

lib=/usr/lib/postgresql/15/lib/execlog.so
check "the library comes from the package" "postgresql-15-execlog" \
	"$(dpkg-query -S "$lib" 2>/dev/null | cut -d: -f1)"
check "the install script comes from the package" "postgresql-15-execlog" \
	"$(dpkg-query -S /usr/share/postgresql/15/extension/execlog--0.2.sql 2>/dev/null | cut -d: -f1)"

dir=$(mktemp -d /tmp/execlog-smoke.XXXXXX)
trap 'stop_cluster "$dir"; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_cluster "$dir" "$port" "shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 1"

sql() { psql_at "$dir" "$port" -At -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
check "CREATE EXTENSION execlog" "" "$(sql 'CREATE EXTENSION execlog')"
check "installed version" "0.2" "$(sql "SELECT extversion FROM pg_extension WHERE extname = 'execlog'")"
check "define an automation" "" "$(sql "CREATE ROLE smoke_runner NOLOGIN;
	INSERT INTO execlog.accounts (name) VALUES ('smoke');
	INSERT INTO execlog.automations (account_id, name, run_as)
	SELECT id, 'smoke', 'smoke_runner' FROM execlog.accounts WHERE name = 'smoke';
	INSERT INTO execlog.steps (automation_id, position, name, kind, config)
	SELECT id, 1, 'answer', 'sql', '{\"query\": \"SELECT 6 * 7 AS answer\"}'
	FROM execlog.automations WHERE name = 'smoke';")"
id=$(sql "SELECT execlog.start('smoke')")
status=
for _ in $(seq 1 300); do
	status=$(sql "SELECT status FROM execlog.executions WHERE id = '$id'")
	case "$status" in success | failed | rejected | partially_executed | cancelled) break ;; esac
	sleep 0.1
done
check "the execution runs to success" "success" "$status"
check "the step's output" '[{"answer": 42}]' \
	"$(sql "SELECT output FROM execlog.execution_steps WHERE execution_id = '$id'")"
if [ "$failed" -gt 0 ]; then
	tail -30 "$dir/server.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
