#!/usr/bin/env bash
# Install what execlog needs on Debian 12, then build and install execlog.
#
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it
# installs only what is missing).  Needs root, or sudo, for apt-get and for
# "make install".
set -euo pipefail

EXECLOG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export EXECLOG_ROOT
PG_BIN=/usr/lib/postgresql/15/bin
export PG_BIN

# (debhelper, dpkg-dev, fakeroot, postgresql-server-dev-all: building the
# Debian package; prometheus-postgres-exporter: the exporter test; clang:
# the warning-free clang build)
PACKAGES=(postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev postgresql-15-cron
	libipc-run-perl make gcc python3 nginx-light wrk python3-aiosmtpd procps openssl
	postgresql-server-dev-all debhelper dpkg-dev fakeroot clang curl prometheus-postgres-exporter)

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "execlog: \"$*\" needs root; run this script as root or install sudo" >&2
		exit 1
	fi
}

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "execlog: installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts a cluster, nginx and the exporter on install; execlog's
	# scripts run their own.
	for service in nginx prometheus-postgres-exporter; do
		as_root systemctl stop "$service" >/dev/null 2>&1 || as_root service "$service" stop >/dev/null 2>&1 || true
	done
fi

# private_install DIR: build execlog from the tree at $1 and install it,
# with a copy of PostgreSQL 15, under DIR/usr (PostgreSQL is relocatable: its
# binaries find share/ and lib/ next to themselves).  Nothing outside DIR is
# touched, so several checkouts can be tested at once.  Sets PG_BIN.
private_install() {
	local src=$1 dir=$2
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
	cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
	cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
	# an execlog installed on the system (the .deb) must not leak into the copy
	rm -rf "$dir"/usr/share/postgresql/15/extension/execlog[.-]* "$dir/usr/lib/postgresql/15/lib/execlog.so" \
		"$dir/usr/lib/postgresql/15/lib/bitcode/execlog" "$dir/usr/lib/postgresql/15/lib/bitcode/execlog.index.bc"
	make -C "$src" -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	make -C "$src" -s install DESTDIR="$dir" PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
	PG_BIN="$dir/usr/lib/postgresql/15/bin"
	export PG_BIN
	export PATH="$PG_BIN:$PATH"
}

# The unprivileged user that runs servers and tests (PostgreSQL refuses root).
if [ "$(id -u)" = 0 ]; then
	EXECLOG_USER=postgres
else
	EXECLOG_USER=$(id -un)
fi
export EXECLOG_USER

# run_as_user CMD...: run a command as that user, keeping PATH.
run_as_user() {
	if [ "$(id -un)" = "$EXECLOG_USER" ]; then
		"$@"
	else
		su "$EXECLOG_USER" -s /bin/bash -c "$(printf '%q ' env PATH="$PATH" "$@")"
	fi
}

# start_cluster DIR PORT CONF: initdb a throwaway cluster in DIR/data (owned
# by the unprivileged user), append CONF to postgresql.conf, start it with
# its socket in DIR.  stop_cluster DIR stops it.  psql_at DIR PORT ... runs psql.
start_cluster() {
	local dir=$1 port=$2 conf=$3
	chown "$EXECLOG_USER" "$dir"
	run_as_user initdb -D "$dir/data" -A trust -U postgres >/dev/null
	cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
$conf
CONF
	run_as_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

stop_cluster() {
	run_as_user pg_ctl -D "$1/data" -m fast stop >/dev/null 2>&1 || true
}

psql_at() {
	local dir=$1 port=$2
	shift 2
	run_as_user psql -X -q -h "$dir" -p "$port" -U postgres -d postgres "$@"
}
