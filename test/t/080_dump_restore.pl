# pg_dump -Fc + pg_restore, and a plain SQL dump through psql, into a fresh
# cluster with execlog preloaded: every row of every execlog table comes
# back, sequences continue, the status machine still holds for ordinary
# writers, paused executions resume, failed ones retry, workers go on;
# history partitions made after the install come back with their rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $src = execlog_node('source');
automation($src, 'ok', run_as => "'runner'", steps => [['one', 'sql', '{"query": "SELECT 1 AS one"}']]);
automation($src, 'bad', run_as => "'runner'", max_retries => 3,
	on_failure => q{'{"task": {"title": "look"}}'},
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}']]);
automation($src, 'wait', run_as => "'runner'", steps => [['ask', 'pause', '{}'], ['after', 'sql', '{"query": "SELECT 2 AS two"}']]);
my @ok = split /\n/, q1($src, q{SELECT execlog.start('ok') FROM generate_series(1, 5)});
my $bad = q1($src, q{SELECT execlog.start('bad')});
my $paused = q1($src, q{SELECT execlog.start('wait')});
ok(wait_status($src, $_, "'success'"), "source: $_ succeeds") for @ok;
ok(wait_status($src, $bad, "'failed'"), 'source: a failed execution');
ok(wait_status($src, $paused, "'paused'"), 'source: a paused execution');
# a watch on a partitioned table (created after others, so that its OID
# differs in the restored clusters): watches are identified by OID
$src->safe_psql('postgres', q{
CREATE TABLE public.shift (id int); DROP TABLE public.shift;
CREATE TABLE public.orders (id int, region text) PARTITION BY LIST (region);
CREATE TABLE public.orders_eu PARTITION OF public.orders FOR VALUES IN ('eu');
SELECT execlog.watch('public.orders', 'ok');
INSERT INTO public.orders VALUES (1, 'eu');
});
my $watched = q1($src, q{SELECT id FROM execlog.executions WHERE trigger_kind = 'data'});
ok(wait_status($src, $watched, "'success'"), 'source: the watch started an execution');
my $src_oid = q1($src, q{SELECT watched_table::oid FROM execlog.triggers WHERE kind = 'data'});

# history partitions made outside the install script, as worker 0 makes
# them (its maintenance function, run here so that no clock is waited
# for): three intervals pass, the ids move on to partition 3, which is not
# a member of the extension and is dumped whole, with its rows
for my $k (1 .. 3)
{
	$src->safe_psql('postgres', q{
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE execlog.executions SET created_at = created_at - interval '1 day';
COMMIT;
SELECT execlog._partitions_maintain('1 day');});
	my $id = q1($src, q{SELECT execlog.start('ok')});
	ok($id == $k * 1000000000 && wait_status($src, $id, "'success'"),
		"source: execution $id, first of partition $k, succeeds");
	push @ok, $id;
}
is(q1($src, q{SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
	WHERE c.relname ~ '^executions_p[0-9]+$'
	  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')}),
	'executions_p3 executions_p4 executions_p5', 'source: the partitions made later are not extension members');

my $tables = q1($src, q{SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'execlog' AND c.relkind IN ('r', 'p')});
sub counts
{
	my ($node) = @_;
	return join(',', map { "$_=" . q1($node, "SELECT count(*) FROM execlog.$_") } split / /, $tables);
}
sub seqs
{
	my ($node) = @_;
	return q1($node, q{SELECT string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value, 0), ',' ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'execlog'});
}
my $want = counts($src);
my $want_seqs = seqs($src);
ok(q1($src, 'SELECT count(*) FROM execlog.tasks') > 0, 'source has a task');

my $dir = PostgreSQL::Test::Utils::tempdir();
$src->command_ok(['pg_dump', '-Fc', '-f', "$dir/db.dump", '-d', $src->connstr('postgres')], 'pg_dump -Fc');
$src->command_ok(['pg_dump', '-f', "$dir/db.sql", '-d', $src->connstr('postgres')], 'pg_dump plain');

for my $format ('custom', 'plain')
{
	my $dst = PostgreSQL::Test::Cluster->new("dst_$format");
	$dst->init;
	$dst->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.database = 'postgres'
execlog.workers = 2
log_min_messages = warning
});
	$dst->start;
	$dst->safe_psql('postgres', 'CREATE ROLE runner NOLOGIN');
	if ($format eq 'custom')
	{
		$dst->command_ok(['pg_restore', '-d', $dst->connstr('postgres'), "$dir/db.dump"], 'pg_restore');
	}
	else
	{
		$dst->command_ok(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', "$dir/db.sql", '-d', $dst->connstr('postgres')],
			'plain dump through psql');
	}
	is(counts($dst), $want, "$format: every row of every execlog table");
	is(seqs($dst), $want_seqs, "$format: sequences");

	# the status machine holds for ordinary writers
	my ($ret, $out, $err) = $dst->psql('postgres', "UPDATE execlog.executions SET status = 'pending' WHERE id = $ok[0]");
	like($err, qr/cannot change status from "success" to "pending"/, "$format: the status machine is enforced");
	($ret, $out, $err) = $dst->psql('postgres', "INSERT INTO execlog.executions (automation_id, status) VALUES (1, 'success')");
	isnt($ret, 0, "$format: a new execution cannot start as success");

	# work goes on
	$dst->safe_psql('postgres', qq{SELECT execlog.resume($paused, '{}')});
	ok(wait_status($dst, $paused, "'success'"), "$format: the paused execution resumes");
	my $r = q1($dst, "SELECT execlog.retry($bad)");
	ok(wait_status($dst, $bad, "'failed'") && q1($dst, "SELECT attempt FROM execlog.executions WHERE id = $bad") == 2,
		"$format: the failed execution retries");
	# the watch names the restored table (its own OID) and fires
	is(q1($dst, q{SELECT watched_table::text || ' ' || (watched_table::oid <> } . $src_oid
		  . q{) FROM execlog.triggers WHERE kind = 'data'}), 'orders true',
		"$format: the watch names the restored table");
	$dst->safe_psql('postgres', q{INSERT INTO public.orders_eu VALUES (2, 'eu')});
	my $w = q1($dst, q{SELECT id FROM execlog.executions WHERE trigger_kind = 'data' AND payload ->> 'id' = '2'});
	ok($w && wait_status($dst, $w, "'success'"), "$format: the restored watch starts an execution for a partition's row");
	my $n = q1($dst, q{SELECT execlog.start('ok')});
	cmp_ok($n, '>', $ok[-1] > $paused ? $ok[-1] : $paused, "$format: new ids continue the sequence");
	ok(wait_status($dst, $n, "'success'"), "$format: a new execution succeeds");
	$dst->stop;
}
done_testing();
