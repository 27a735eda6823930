# Upgrades: for every released version (test/releases), a cluster runs that
# release's binaries and fills a database through its API (executions in
# every status, tasks, alerts, a schedule, a watch, exported contexts, the
# event log); then the server restarts on this tree's binaries.  The
# workers wait for the update (one log line each), the API refuses with a
# hint, ALTER EXTENSION execlog UPDATE keeps every row and sequence, paused
# executions resume, failed ones retry, new ones run -- and the upgraded
# catalog equals a fresh install's exactly (normalised binary-upgrade
# schema dump of everything of the extension, its member objects, its
# configuration tables and the roles it creates).
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Temp qw(tempfile);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# released versions, and where test.sh installed each (EXECLOG_RELEASES)
my @released;
open(my $rf, '<', "$ENV{EXECLOG_SRC}/test/releases") or die "test/releases: $!";
while (<$rf>)
{
	next if /^\s*(#|$)/;
	my ($v) = split;
	push @released, $v;
}
close $rf;
my %install = map { split /=/, $_, 2 } split ' ', ($ENV{EXECLOG_RELEASES} // '');

# this tree's install: the pg_config first in PATH (test.sh puts it there)
my ($new_install) = grep { -x "$_/pg_config" } split /:/, $ENV{PATH};
$new_install = dirname($new_install);

# ---- normalised catalog of the extension in one database

# The rows of execlog.daily_stats (shards summed) that differ from the same
# aggregate computed from executions, and how many finished executions
# there are (issue 13: the update fills the rollup, the triggers keep it).
sub rollup_differs
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
WITH r AS (
	SELECT account_id, automation_id, day, status, bucket, sum(executions) AS n, sum(duration_us) AS us
	  FROM execlog.daily_stats GROUP BY 1, 2, 3, 4, 5 HAVING sum(executions) <> 0 OR sum(duration_us) <> 0),
c AS (
	SELECT account_id, automation_id, (finished_at AT TIME ZONE 'UTC')::date, status,
		   execlog._duration_bucket(started_at, finished_at), count(*)::numeric,
		   coalesce(sum((extract(epoch FROM finished_at - started_at) * 1000000)::bigint), 0)::numeric
	  FROM execlog.executions
	 WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled')
	 GROUP BY 1, 2, 3, 4, 5)
SELECT (SELECT count(*) FROM ((TABLE r EXCEPT TABLE c) UNION ALL (TABLE c EXCEPT TABLE r)) d)
	   || ' of ' || (SELECT count(*) FROM execlog.executions
					  WHERE status IN ('success', 'partially_executed', 'failed', 'rejected', 'cancelled'))});
}

sub catalog
{
	my ($node, $db) = @_;
	my ($out, $err);
	my $ok = IPC::Run::run(
		[
			'pg_dump', '--schema-only', '--binary-upgrade',
			'-h', $node->host, '-p', $node->port, '-d', $db
		],
		'>', \$out, '2>', \$err);
	die "pg_dump $db failed: $err" unless $ok;

	# entries start at "-- Name: x; Type: T; Schema: S; Owner: O"
	my %entries;
	my ($key, @lines);
	my $keep = sub {
		return unless defined $key;
		my $body = join("\n", @lines);
		$entries{$key} = (exists $entries{$key} ? "$entries{$key}\n" : '') . $body
		  if $body ne '';
	};
	my $in_catalog_update = 0;
	for my $line (split /\n/, $out)
	{
		if ($line =~ /^-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: (.*?);/)
		{
			$keep->();
			my ($name, $type, $schema) = ($1, $2, $3);
			@lines = ();
			$key = undef;
			# sequence positions are data, compared above
			$key = "$type $schema $name"
			  if ($schema eq 'execlog' && $type ne 'SEQUENCE SET')
			  || ($name eq 'execlog' && ($type eq 'EXTENSION' || $type eq 'SCHEMA'))
			  || ($type eq 'ACL' && $name eq 'SCHEMA execlog')
			  || ($type eq 'COMMENT' && $name =~ /^(EXTENSION|SCHEMA) execlog$/)
			  || ($schema eq '-' && $name =~ /^execlog/);
			next;
		}
		next unless defined $key;
		# physical details that differ between an upgraded and a fresh
		# database without being part of the catalog users see
		if ($in_catalog_update || $line =~ /^UPDATE pg_catalog\.pg_/)
		{
			$in_catalog_update = $line !~ /;\s*$/;
			next;
		}
		next if $line =~ /^\s*$/ || $line =~ /^--/ || $line =~ /^\\(un)?restrict /;
		next if $line =~ /^SELECT pg_catalog\.binary_upgrade_/;
		# a session setting pg_dump emits before the first table with an
		# access method (partitioned tables have none), wherever that is
		next if $line =~ /^SET default_table_access_method /;
		next if $line =~ /pg\.dropped\./;
		$line =~ s/,\s*$//;
		push @lines, $line;
	}
	$keep->();

	my $members = $node->safe_psql($db, q{
SELECT pg_catalog.pg_describe_object(classid, objid, objsubid)
  FROM pg_catalog.pg_depend
 WHERE refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'execlog')
   AND deptype = 'e'
 ORDER BY 1});
	my $config = $node->safe_psql($db, q{
SELECT c::pg_catalog.regclass || ' ' || coalesce(cond, '')
  FROM pg_catalog.pg_extension, unnest(extconfig, extcondition) AS u(c, cond)
 WHERE extname = 'execlog' ORDER BY 1});
	return join("\n",
		(map { "== $_\n$entries{$_}" } sort keys %entries),
		"== extension members\n$members", "== configuration tables\n$config") . "\n";
}

# roles the install script creates, with their attributes and memberships
sub execlog_roles
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
SELECT r.rolname || ' ' || r.rolcanlogin || ' ' || r.rolinherit || ' ' ||
       coalesce((SELECT string_agg(m.rolname, ',' ORDER BY m.rolname)
                   FROM pg_catalog.pg_auth_members am
                   JOIN pg_catalog.pg_roles m ON m.oid = am.roleid
                  WHERE am.member = r.oid), '')
  FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'execlog%' ORDER BY 1});
}

sub same_catalog
{
	my ($got, $want, $what) = @_;
	if ($got eq $want)
	{
		pass($what);
		return;
	}
	my ($fh1, $f1) = tempfile();
	my ($fh2, $f2) = tempfile();
	print $fh1 $got;
	print $fh2 $want;
	close $fh1;
	close $fh2;
	my $diff = `diff -u '$f2' '$f1'`;
	fail($what);
	diag("differences (- fresh install, + upgraded):\n" . substr($diff, 0, 20000));
}

# every execlog table: row count and a digest of the columns it had before
# the update (updated_at left out: an upgrade may touch rows)
sub table_columns
{
	my ($node) = @_;
	my %cols;
	for my $row (split /\n/, $node->safe_psql('postgres', q{
SELECT c.relname || ' ' || string_agg(a.attname, ',' ORDER BY a.attnum)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'execlog'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')
   AND NOT c.relispartition AND a.attname <> 'updated_at'
 GROUP BY c.relname ORDER BY 1}))
	{
		my ($t, $c) = split / /, $row;
		$cols{$t} = [ split /,/, $c ];
	}
	return \%cols;
}

# one query: "<table> <rows> <digest>" per table
sub table_digests_sql
{
	my ($cols) = @_;
	return join("\nUNION ALL\n", map {
		my $t = $_;
		my $obj = join(', ', map { "'$_', t.\"$_\"" } @{ $cols->{$t} });
		qq{SELECT '$t' || ' ' || count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '-')
  FROM (SELECT jsonb_build_object($obj) AS x FROM execlog."$t" t) s}
	} sort keys %$cols);
}

# digests from the output of table_digests_sql
sub parse_digests
{
	my ($out) = @_;
	my %d = map { my ($t, $rest) = split / /, $_, 2; ($t => $rest) } grep { /\S/ } split /\n/, $out;
	return \%d;
}

sub table_digests
{
	my ($node, $cols) = @_;
	return parse_digests($node->safe_psql('postgres', table_digests_sql($cols)));
}

my $sequences_sql = q{
SELECT s.relname || ' ' || coalesce(q.last_value::text, '-')
  FROM pg_catalog.pg_class s JOIN pg_catalog.pg_sequences q
    ON q.schemaname = 'execlog' AND q.sequencename = s.relname
 WHERE s.relnamespace = 'execlog'::pg_catalog.regnamespace AND s.relkind = 'S'
 ORDER BY 1};

sub sequences
{
	my ($node) = @_;
	return $node->safe_psql('postgres', $sequences_sql);
}

sub wait_for
{
	my ($node, $sql, $what) = @_;
	ok($node->poll_query_until('postgres', $sql), $what)
	  or diag($node->safe_psql('postgres',
		'SELECT id, automation_id, status, attempt, error FROM execlog.executions ORDER BY id'));
}

for my $v (@released)
{
	if (!(defined $install{$v} && -x "$install{$v}/bin/postgres"))
	{
		# A checkout without the release's commit (a shallow clone) cannot
		# build its binaries: say so loudly, and still prove the catalog
		# with the release's frozen install script and this tree's library.
		diag("release $v could not be built (is the checkout shallow?): "
			  . "only the catalog of an empty database updated from $v is compared");
		catalog_only($v);
		next;
	}

	my $node = PostgreSQL::Test::Cluster->new("upgrade_$v", install_path => $install{$v});
	$node->init;
	my $host = $node->host;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog, pg_cron'
cron.database_name = 'postgres'
cron.host = '$host'
execlog.database = 'postgres'
execlog.workers = 2
log_min_messages = warning
});
	$node->start;

	# ---- fill a database with release $v
	$node->safe_psql('postgres', q{
CREATE EXTENSION execlog;
CREATE EXTENSION pg_cron;
CREATE ROLE runner NOLOGIN;
INSERT INTO execlog.accounts (name) VALUES ('acme');
CREATE TABLE public.effects (execution_id bigint, note text);
CREATE TABLE public.switch (v int);
INSERT INTO public.switch VALUES (0);
CREATE TABLE public.orders (id int, amount int);
CREATE TABLE public.sales (id int, region text) PARTITION BY LIST (region);
CREATE TABLE public.sales_eu PARTITION OF public.sales FOR VALUES IN ('eu');
GRANT SELECT, INSERT ON public.effects TO runner;
GRANT SELECT ON public.switch TO runner;
INSERT INTO execlog.connections (account_id, name, base_url, auth)
VALUES (1, 'erp', 'http://127.0.0.1:9/api', '{"type": "bearer", "token": "upgrade-secret"}');

INSERT INTO execlog.automations (account_id, name, run_as) VALUES
  (1, 'ok', 'runner'), (1, 'wait', 'runner'), (1, 'partial', 'runner');
INSERT INTO execlog.automations (account_id, name, run_as, max_retries, on_failure) VALUES
  (1, 'bad', 'runner', 0,
   '{"task": {"assignee": "runner", "title": "fix {{ $.payload.n }}"},
     "alert": {"channel": "email", "target": "ops@example.com", "message": "bad {{ $.payload.n }} failed"}}');
INSERT INTO execlog.automations (account_id, name, run_as, max_retries) VALUES (1, 'flaky', 'runner', 2);
INSERT INTO execlog.automations (account_id, name, run_as, throttle) VALUES (1, 'gate', 'runner', 1);
INSERT INTO execlog.automations (account_id, name, run_as, time_limit) VALUES (1, 'slow', 'runner', '2 seconds');

INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error) VALUES
  ((SELECT id FROM execlog.automations WHERE name = 'ok'), 1, 'note', 'sql',
   '{"query": "INSERT INTO public.effects VALUES ($1, ''ok'') RETURNING note", "args": ["{{ $.execution.id }}"]}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'wait'), 1, 'hold', 'pause', '{}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'wait'), 2, 'note', 'sql',
   '{"query": "INSERT INTO public.effects VALUES ($1, ''resumed'') RETURNING note", "args": ["{{ $.execution.id }}"]}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'partial'), 1, 'boom', 'sql', '{"query": "SELECT 1/0"}', 'continue'),
  ((SELECT id FROM execlog.automations WHERE name = 'partial'), 2, 'fine', 'sql', '{"query": "SELECT 1 AS one"}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'bad'), 1, 'boom', 'sql', '{"query": "SELECT 1/0"}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'flaky'), 1, 'first', 'sql',
   '{"query": "INSERT INTO public.effects VALUES ($1, ''flaky first'') RETURNING note", "args": ["{{ $.execution.id }}"]}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'flaky'), 2, 'div', 'sql',
   '{"query": "SELECT 1 / v AS r FROM public.switch"}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'gate'), 1, 'hold', 'pause', '{}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'slow'), 1, 'nap', 'pause', '{"for": "1 hour"}', 'stop'),
  ((SELECT id FROM execlog.automations WHERE name = 'ok'), 2, 'feedback', 'feedback',
   '{"fields": {"quotes": [{"n": "{{ $.execution.id }}"}]}}', 'stop');
});
	$node->safe_psql('postgres', q{
SELECT execlog.start('ok', '{"n": 1}');
SELECT execlog.start('wait');
SELECT execlog.start('wait');
SELECT execlog.start('partial');
SELECT execlog.start('bad', '{"n": 7}');
SELECT execlog.start('flaky');
SELECT execlog.start('gate');
SELECT execlog.start('gate');
SELECT execlog.start('slow');
SELECT execlog.schedule('ok', '0 0 1 1 *', '{"from": "cron"}');
SELECT execlog.watch('public.orders', 'ok', 'NEW.amount > 10');
INSERT INTO public.orders VALUES (1, 50), (2, 5);
SELECT execlog.watch('public.sales', 'partial');
});
	# in another database, watches whose tables were dropped or renamed
	# (another table taking the old name), which the update must tell apart
	# by their row triggers, not by name
	$node->safe_psql('postgres', 'CREATE DATABASE dangling');
	$node->safe_psql('dangling', q{
CREATE EXTENSION execlog;
INSERT INTO execlog.accounts (name) VALUES ('acme');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'w'), (1, 'r');
CREATE TABLE public.gone (id int);
CREATE TABLE public.kept (id int);
CREATE TABLE public.moved (id int);
CREATE TABLE public.orders (id int, amount int);
SELECT execlog.watch('public.gone', 'w');
SELECT execlog.watch('public.kept', 'w');
SELECT execlog.watch('public.moved', 'w', 'NEW.id > 0');
SELECT execlog.watch('public.orders', 'r', 'NEW.amount > 10');
DROP TABLE public.gone;
CREATE TABLE public.gone (id int);
ALTER TABLE public.moved RENAME TO moved_now;
CREATE TABLE public.moved (id int);
ALTER TABLE public.orders RENAME TO orders_old;
});
	wait_for($node, q{
SELECT count(*) FILTER (WHERE status = 'paused') = 3
   AND count(*) FILTER (WHERE status = 'success') = 2
   AND count(*) FILTER (WHERE status = 'failed') = 2
   AND count(*) FILTER (WHERE status = 'partially_executed') = 1
   AND count(*) FILTER (WHERE status = 'queued') = 1
   AND count(*) FILTER (WHERE status = 'rejected') = 1
  FROM execlog.executions}, "release $v: executions reached their statuses");
	# one of the paused 'wait' executions is cancelled
	$node->safe_psql('postgres', q{
SELECT execlog.cancel(min(e.id)) FROM execlog.executions e
  JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'wait'});
	$node->safe_psql('postgres', q{
CREATE SCHEMA exported;
SELECT * FROM execlog.merge_event_log();
SELECT * FROM execlog.export_contexts('exported');
});

	# two executions left pending: restart without workers and start them
	$node->stop;
	$node->append_conf('postgresql.conf', "execlog.workers = 0\n");
	$node->start;
	$node->safe_psql('postgres', q{SELECT execlog.start('ok') FROM generate_series(1, 2)});
	is($node->safe_psql('postgres', q{
SELECT string_agg(status::text || '=' || n, ' ' ORDER BY status)
  FROM (SELECT status, count(*) AS n FROM execlog.executions GROUP BY status) s}),
		'pending=2 queued=1 paused=2 success=2 partially_executed=1 failed=2 rejected=1 cancelled=1',
		"release $v: executions in every status");
	ok($node->safe_psql('postgres', 'SELECT count(*) FROM execlog.tasks') >= 1
		  && $node->safe_psql('postgres', 'SELECT count(*) FROM execlog.alerts') >= 1,
		"release $v: a task and an alert were created");

	my $cols = table_columns($node);
	my $before = table_digests($node, $cols);
	my $seq_before = sequences($node);
	$node->stop;

	# ---- the same data directory on this tree's binaries, workers back on
	$node->{_install_path} = $new_install;
	$node->append_conf('postgresql.conf', "execlog.workers = 2\n");
	my $log_offset = -s $node->logfile;
	$node->start;

	ok($node->poll_query_until('postgres', qq{
SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'execlog worker'}),
		'the new workers run');
	my $waits = qr/waits: execlog schema version \Q$v\E is older than the library \([0-9.]+\): run ALTER EXTENSION execlog UPDATE/;
	ok( $node->poll_query_until('postgres', q{SELECT true}) && wait_log($node, $log_offset, $waits, 2),
		'each worker says once that the schema must be updated');
	my ($rc, $out, $err) = $node->psql('postgres', q{SELECT execlog.start('ok')});
	like($err, qr/execlog schema version \Q$v\E is older than the library .*\n.*HINT:\s+Run ALTER EXTENSION execlog UPDATE/s,
		'the API refuses against the old schema, with the hint');
	sleep 1;
	is($node->safe_psql('postgres', q{SELECT count(*) FROM execlog.executions WHERE status = 'pending'}),
		'2', 'the workers leave the pending executions alone meanwhile');
	my $log = slurp_file($node->logfile, $log_offset);
	my @lines = ($log =~ /$waits/g);
	is(scalar(@lines), 2, 'no more than one such line per worker');
	unlike(join("\n", grep { !/060_upgrade\.pl/ } split /\n/, $log),
		qr/ERROR|FATAL|PANIC|terminated by signal/, 'no errors while waiting (but for the refused call)');

	# ---- the update, and the rows as it left them: read in its
	# transaction, before the workers (woken by its commit) go on
	my $after = parse_digests($node->safe_psql('postgres',
		"BEGIN;\nALTER EXTENSION execlog UPDATE;\n" . table_digests_sql($cols) . ";\n$sequences_sql;\nCOMMIT;"));
	my $target = $node->safe_psql('postgres',
		q{SELECT default_version FROM pg_available_extensions WHERE name = 'execlog'});
	is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'execlog'}),
		$target, "updated from $v to $target");
	# issue 13: the history tables are partitioned, their rows (same ids,
	# digests above) in the first partition
	is($node->safe_psql('postgres', q{
SELECT string_agg(c.relname || '=' || c.relkind::text, ' ' ORDER BY c.relname) FROM pg_class c
 WHERE c.oid IN ('execlog.executions'::regclass, 'execlog.execution_steps'::regclass, 'execlog.transitions'::regclass)}),
		'execution_steps=p executions=p transitions=p', 'the history tables are partitioned');
	is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM execlog.executions) = (SELECT count(*) FROM execlog.executions_p0)
   AND (SELECT count(*) FROM execlog.execution_steps) = (SELECT count(*) FROM execlog.execution_steps_p0)
   AND (SELECT count(*) FROM execlog.transitions) = (SELECT count(*) FROM execlog.transitions_p0)
   AND (SELECT count(*) FROM execlog.executions_p0) > 0}),
		't', 'the existing rows moved into partition 0 of each table');
	for my $t (sort keys %$before)
	{
		is($after->{$t}, $before->{$t}, "table $t keeps every row");
	}
	# sequences that existed before the update (it may add others)
	my %seq_after = %$after;
	is(join("\n", map { my ($n) = split / /; "$n " . ($seq_after{$n} // 'gone') } split /\n/, $seq_before),
		$seq_before, 'sequences are where they were');
	like(rollup_differs($node), qr/^0 of [1-9]/, 'the update fills the daily rollup from the finished executions');

	# ---- then everything goes on
	wait_for($node, q{
SELECT count(*) = 0 FROM execlog.executions WHERE status = 'pending'},
		'the workers go on by themselves: pending executions ran');
	$node->safe_psql('postgres', q{
SELECT execlog.resume(e.id, '{"ok": true}') FROM execlog.executions e
  JOIN execlog.automations a ON a.id = e.automation_id
 WHERE a.name = 'wait' AND e.status = 'paused'});
	$node->safe_psql('postgres', q{UPDATE public.switch SET v = 1});
	$node->safe_psql('postgres', q{
SELECT execlog.retry(e.id) FROM execlog.executions e
  JOIN execlog.automations a ON a.id = e.automation_id
 WHERE a.name = 'flaky' AND e.status = 'failed'});
	my $new = $node->safe_psql('postgres', q{SELECT execlog.start('ok', '{"n": 2}')});
	wait_for($node, qq{
SELECT count(*) = 1 FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id
 WHERE a.name = 'wait' AND e.status = 'success'}, 'the paused execution resumed and succeeded');
	wait_for($node, q{
SELECT e.status = 'success' AND e.attempt = 2 FROM execlog.executions e
  JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'flaky'},
		'the failed execution was retried and succeeded');
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM public.effects f JOIN execlog.executions e ON e.id = f.execution_id
  JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'flaky'}),
		'1', 'the retry resumed after the step that had succeeded');
	wait_for($node, "SELECT status = 'success' FROM execlog.executions WHERE id = $new",
		'a new execution runs');
	# the throttle slot: the paused gate execution ends, the queued one runs
	$node->safe_psql('postgres', q{
SELECT execlog.resume(e.id) FROM execlog.executions e
  JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'gate' AND e.status = 'paused'});
	wait_for($node, q{
SELECT count(*) FILTER (WHERE e.status = 'success') = 1 AND count(*) FILTER (WHERE e.status = 'paused') = 1
  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'gate'},
		'the queued execution of the throttled automation took the free slot');
	# the watch and the schedule made with the old release still start executions
	$node->safe_psql('postgres', q{INSERT INTO public.orders VALUES (3, 99)});
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM execlog.executions WHERE trigger_kind = 'data' AND payload ->> 'id' = '3'}),
		'1', 'the watch of the old release fires');
	# watches are identified by OID now: the old watch of a partitioned table
	# fires for rows of its partitions, renaming a watched table keeps its watch
	is($node->safe_psql('postgres', q{
SELECT string_agg(tr.config ->> 'table' || '=' || tr.watched_table::text, ' ' ORDER BY tr.id)
  FROM execlog.triggers tr WHERE tr.kind = 'data'}),
		'public.orders=orders public.sales=sales', 'the old watches were converted to their tables\' OIDs');
	$node->safe_psql('postgres', q{INSERT INTO public.sales VALUES (4, 'eu')});
	is($node->safe_psql('postgres', q{
SELECT triggered_by FROM execlog.executions WHERE trigger_kind = 'data' AND payload ->> 'id' = '4'}),
		'public.sales', 'the old watch of a partitioned table fires for a row of its partition');
	$node->safe_psql('postgres', q{ALTER TABLE public.orders RENAME TO orders_renamed;
INSERT INTO public.orders_renamed VALUES (5, 99)});
	is($node->safe_psql('postgres', q{
SELECT triggered_by FROM execlog.executions WHERE trigger_kind = 'data' AND payload ->> 'id' = '5'}),
		'public.orders_renamed', 'the old watch goes on after its table is renamed');
	$node->safe_psql('postgres', q{SELECT execlog.unwatch('public.orders_renamed', 'ok');
SELECT execlog.unwatch('public.sales', 'partial');
INSERT INTO public.orders_renamed VALUES (6, 99)});
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM execlog.executions WHERE trigger_kind = 'data' AND payload ->> 'id' = '6'}),
		'0', 'unwatch takes the new name');
	wait_for($node, q{
SELECT count(*) = 0 FROM execlog.executions
 WHERE trigger_kind = 'data' AND status IN ('pending', 'queued', 'running')}, 'the executions the watches started ran');
	$node->safe_psql('dangling', 'ALTER EXTENSION execlog UPDATE');
	is($node->safe_psql('dangling', q{
SELECT string_agg(a.name || ':' || (tr.config ->> 'table') || '=' || tr.watched_table::text, ' ' ORDER BY tr.id)
  FROM execlog.triggers tr JOIN execlog.automations a ON a.id = tr.automation_id WHERE tr.kind = 'data'}),
		'w:public.kept=kept w:public.moved=moved_now r:public.orders=orders_old',
		'the update deleted the watch of a dropped table and kept those of renamed tables, by their row triggers');
	is($node->safe_psql('dangling', q{
SELECT string_agg(tgrelid::regclass::text || ' ' || tgname, ', ' ORDER BY tgrelid::regclass::text)
  FROM pg_trigger WHERE tgname LIKE 'execlog_watch_%'}),
		'kept execlog_watch_1, moved_now execlog_watch_1, orders_old execlog_watch_2',
		'no row trigger is left without a watch, none is on the tables that took the old names');
	$node->safe_psql('dangling', q{
INSERT INTO public.moved_now VALUES (1), (-1);
INSERT INTO public.orders_old VALUES (2, 50), (3, 5);
INSERT INTO public.moved VALUES (4);
INSERT INTO public.gone VALUES (5);
INSERT INTO public.kept VALUES (6)});
	is($node->safe_psql('dangling', q{
SELECT string_agg(a.name || ' ' || (e.payload ->> 'id') || ' ' || e.triggered_by, ', ' ORDER BY e.id)
  FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id}),
		'w 1 public.moved_now, r 2 public.orders_old, w 6 public.kept',
		'the watches of tables renamed under the old release fire again, with their conditions');
	$node->safe_psql('dangling', q{
SELECT execlog.unwatch('public.kept', 'w');
SELECT execlog.unwatch('public.moved_now', 'w');
SELECT execlog.unwatch('public.orders_old', 'r')});
	($rc, $out, $err) = $node->psql('dangling', 'DROP EXTENSION execlog');
	is($rc . $err, '0', 'once unwatched, nothing holds on to the extension: DROP EXTENSION without CASCADE');
	my $cmd = $node->safe_psql('postgres', q{SELECT command FROM cron.job WHERE jobname LIKE 'execlog schedule %'});
	$node->safe_psql('postgres', $cmd);
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM execlog.executions WHERE trigger_kind = 'schedule' AND payload ->> 'from' = 'cron'}),
		'1', 'the schedule of the old release starts its automation');
	$node->safe_psql('postgres', q{SELECT * FROM execlog.merge_event_log()});
	is($node->safe_psql('postgres', q{
SELECT count(*) FROM (
  (SELECT e.id, e.status FROM execlog.executions e EXCEPT SELECT instance_id, status FROM execlog.event_log)
  UNION ALL
  (SELECT instance_id, status FROM execlog.event_log EXCEPT SELECT e.id, e.status FROM execlog.executions e)) d}),
		'0', 'the event log equals a recomputation after the update');
	like(rollup_differs($node), qr/^0 of [1-9]/, 'the daily rollup equals a recomputation after the update');
	ok($node->safe_psql('postgres', q{SELECT count(*) FROM execlog.export_contexts('exported')}) > 0,
		'contexts export again into the schema exported before');

	# ---- the catalog: upgraded (with data, and empty) against fresh
	# (the merge above started the event-log queue, whose triggers a fresh
	# install has disabled: that is state, stop it again to compare)
	$node->safe_psql('postgres', q{SELECT execlog.disable_event_log()});
	$node->safe_psql('postgres', 'CREATE DATABASE emptyup');
	$node->safe_psql('emptyup', "CREATE EXTENSION execlog VERSION '$v'");
	$node->safe_psql('emptyup', 'ALTER EXTENSION execlog UPDATE');
	my $roles_upgraded = execlog_roles($node);
	$node->safe_psql('postgres', 'CREATE DATABASE fresh');
	$node->safe_psql('fresh', 'CREATE EXTENSION execlog');
	is(execlog_roles($node), $roles_upgraded, 'a fresh install creates no role the update did not');
	my $fresh = catalog($node, 'fresh');
	like($fresh, qr/CREATE TABLE execlog\.executions/, 'the catalog dump holds the extension\'s tables');
	same_catalog(catalog($node, 'emptyup'), $fresh, "empty database: $v + update = fresh $target");
	same_catalog(catalog($node, 'postgres'), $fresh, "database with data: $v + update = fresh $target");

	$log = slurp_file($node->logfile, $log_offset);
	unlike($log, qr/PANIC|TRAP|terminated by signal/, 'no crash in the log');
	$node->stop;
}

# catalog_only(version): an empty database created at that version from its
# frozen script and updated, against a fresh install, on this tree's binaries
sub catalog_only
{
	my ($v) = @_;
	my $node = PostgreSQL::Test::Cluster->new("catalog_$v");
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 0
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE DATABASE emptyup');
	$node->safe_psql('emptyup', "CREATE EXTENSION execlog VERSION '$v'");
	$node->safe_psql('emptyup', 'ALTER EXTENSION execlog UPDATE');
	my $roles_upgraded = execlog_roles($node);
	$node->safe_psql('postgres', 'CREATE DATABASE fresh');
	$node->safe_psql('fresh', 'CREATE EXTENSION execlog');
	is(execlog_roles($node), $roles_upgraded, 'a fresh install creates no role the update did not');
	my $fresh = catalog($node, 'fresh');
	like($fresh, qr/CREATE TABLE execlog\.executions/, 'the catalog dump holds the extension\'s tables');
	same_catalog(catalog($node, 'emptyup'), $fresh, "empty database: $v + update = fresh");
	$node->stop;
}

# wait_log(node, offset, regex, n): wait up to 30 s for n matches in the log
sub wait_log
{
	my ($node, $offset, $re, $n) = @_;
	for (1 .. 300)
	{
		my @m = (slurp_file($node->logfile, $offset) =~ /$re/g);
		return 1 if @m >= $n;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

done_testing();
