#!/usr/bin/env bash
# Run every execlog test suite: pg_regress (sql/), isolation (test/specs/)
# and TAP (test/t/), each on private clusters, as an unprivileged user.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh regress    # one suite: regress, isolation or tap
#   TAP_TESTS="t/010_worker.pl" bash scripts/test.sh tap
#
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

suites=("${@:-regress isolation tap}")
suites=(${suites[*]})

# Work on a copy owned by the test user, so a root-owned checkout stays clean.
work=$(mktemp -d /tmp/execlog-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$EXECLOG_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=tmp_install --exclude=tmp_check --exclude=tmp_check_iso \
	--exclude=results --exclude=test/output_iso -cf - . | tar -C "$work" -xf -
private_install "$work" "$work/tmp_install"

# release_installs: for the upgrade test, build every released version
# (test/releases) from its commit into $work/release-<version>, and list
# them in EXECLOG_RELEASES as "<version>=<install path> ...".  A checkout
# without that history fails the upgrade test instead of skipping it.
EXECLOG_RELEASES=
release_installs() {
	local ver commit dir
	while read -r ver commit; do
		case "$ver" in '' | '#'*) continue ;; esac
		dir="$work/release-$ver"
		mkdir -p "$dir/src"
		if ! git -C "$EXECLOG_ROOT" archive "$commit" 2>/dev/null | tar -x -C "$dir/src"; then
			echo "execlog: cannot build release $ver: commit $commit is not in $EXECLOG_ROOT's history" >&2
			continue
		fi
		(private_install "$dir/src" "$dir") >"$dir/build.log" 2>&1 || {
			echo "execlog: building release $ver failed:" >&2
			tail -20 "$dir/build.log" >&2
			continue
		}
		EXECLOG_RELEASES="$EXECLOG_RELEASES $ver=$dir/usr/lib/postgresql/15"
	done <"$EXECLOG_ROOT/test/releases"
}
case " ${suites[*]} " in *" tap "*) release_installs ;; esac
chown -R "$EXECLOG_USER" "$work" 2>/dev/null || true
chmod 755 "$work"

passed=0
failed=0
status=0

# count_regress LOG: add pg_regress / isolation results ("... ok", "... FAILED").
count_regress() {
	local ok bad
	ok=$(grep -cE '\.\.\. +ok' "$1" || true)
	bad=$(grep -cE '\.\.\. +FAILED|\.\.\. +failed' "$1" || true)
	passed=$((passed + ok))
	failed=$((failed + bad))
	echo "== $2: $ok passed, $bad failed"
}

for suite in "${suites[@]}"; do
	case "$suite" in
	regress | isolation)
		target=installcheck
		if [ "$suite" = regress ]; then
			args=(ISOLATION=)
		else
			args=(REGRESS=)
		fi
		log="$work/$suite.log"
		if ! run_as_user make -C "$work" -s "$target" "${args[@]}" \
			PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config bindir="$PG_BIN" >"$log" 2>&1; then
			status=1
		fi
		cat "$log"
		count_regress "$log" "$suite"
		# keep the outputs in the checkout (ignored by git) for inspection
		rm -rf "$EXECLOG_ROOT/results" "$EXECLOG_ROOT/test/output_iso"
		[ -d "$work/results" ] && cp -r "$work/results" "$EXECLOG_ROOT/results"
		[ -d "$work/test/output_iso" ] && cp -r "$work/test/output_iso" "$EXECLOG_ROOT/test/output_iso"
		for d in "$work/regression.diffs" "$work/test/output_iso/regression.diffs"; do
			if [ -s "$d" ]; then
				echo "---- $d (first 200 lines)"
				head -200 "$d"
			fi
		done
		if [ "$status" != 0 ] && ! grep -qE '\.\.\. +(ok|FAILED|failed)' "$log"; then
			# the suite did not even start: count it as one failure
			failed=$((failed + 1))
		fi
		;;
	tap)
		log="$work/tap.log"
		tests=${TAP_TESTS:-$(cd "$work/test" && ls t/*.pl 2>/dev/null | tr "\n" " " || true)}
		if [ -z "$tests" ]; then
			echo "== tap: no tests"
			continue
		fi
		# the Makefile's prove_installcheck (pgvector's pattern), against
		# the private installation
		if ! run_as_user env EXECLOG_RELEASES="$EXECLOG_RELEASES" make -C "$work" -s prove_installcheck PROVE_TESTS="$tests" PROVE_FLAGS=-v \
			PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config bindir="$PG_BIN" >"$log" 2>&1; then
			status=1
		fi
		grep -vE '^\s*ok [0-9]+' "$log" | grep -vE '^\s*#' || true
		ok=$(grep -cE '^\s*ok [0-9]+' "$log" || true)
		bad=$(grep -cE '^\s*not ok [0-9]+' "$log" || true)
		dubious=$(grep -cE 'Dubious|Parse errors|No subtests run|Bad plan' "$log" || true)
		passed=$((passed + ok))
		failed=$((failed + bad + dubious))
		echo "== tap: $ok passed, $((bad + dubious)) failed"
		if [ "$status" != 0 ]; then
			for f in "$work"/test/tmp_check/log/*; do
				[ -f "$f" ] || continue
				echo "---- $f (last 60 lines)"
				tail -60 "$f"
			done
		fi
		;;
	*)
		echo "unknown suite \"$suite\" (regress, isolation, tap)" >&2
		exit 2
		;;
	esac
done

if [ "$failed" -gt 0 ]; then
	status=1
fi
echo "$passed passed, $failed failed"
exit "$status"
