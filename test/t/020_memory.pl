# Bounded memory: an sql step returning 2,000,000 rows keeps the worker's
# private memory under 100 MB (its result is read row by row and stops
# being kept at execlog.max_payload_bytes, default 1MB), the step succeeds
# with its output capped and the full row count in the marker, and the
# worker goes on (same pid, the next execution succeeds).
#
# The worker's private memory is Private_Clean + Private_Dirty of
# /proc/<pid>/smaps_rollup, sampled while the step runs and at its end.
# EXECLOG_MEMORY_ROWS sets another row count (the limit stays 100 MB).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ExeclogTest;

my $rows = $ENV{EXECLOG_MEMORY_ROWS} // 2_000_000;
my $limit_kb = 100 * 1024;

my $node = execlog_node('memory', "execlog.workers = 1\n");
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker'}), 'the worker runs');
my $pid = q1($node, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'});

# private_kb(): the worker's private memory in kB (undef once it is gone);
# in list context also its anonymous memory (heap, without the pages of
# shared memory that only it has touched) and its Rss
sub private_kb
{
	open(my $fh, '<', "/proc/$pid/smaps_rollup") or return undef;
	my %kb = (Private => 0, Anonymous => 0, Rss => 0);
	while (<$fh>)
	{
		$kb{Private} += $2 if /^Private_(Clean|Dirty):\s+(\d+) kB/;
		$kb{$1} = $2 if /^(Anonymous|Rss):\s+(\d+) kB/;
	}
	close $fh;
	return wantarray ? ($kb{Private}, $kb{Anonymous}, $kb{Rss}) : $kb{Private};
}

automation($node, 'small', run_as => "'runner'", steps => [
	['one', 'sql', '{"query": "SELECT 1 AS one"}'],
]);
automation($node, 'huge', run_as => "'runner'", steps => [
	['rows', 'sql', qq{{"query": "SELECT g, repeat('x', 100) FROM generate_series(1, $rows) g"}}],
	['after', 'sql', '{"query": "SELECT jsonb_array_length($1) AS n", "args": ["{{ $.steps.rows.output }}"]}'],
]);

# warm the worker up (plans, caches), then measure from there
my $e = q1($node, q{SELECT execlog.start('small')});
ok(wait_status($node, $e, "'success'"), 'a first execution succeeds');
my $before = private_kb();
ok(defined $before, "the worker's memory can be read");

$e = q1($node, q{SELECT execlog.start('huge')});
my ($max, $max_anon, $samples, $status) = (0, 0, 0, '');
for (my $i = 0; ; $i++)
{
	my ($kb, $anon) = private_kb();
	last unless defined $kb;
	$samples++;
	$max = $kb if $kb > $max;
	$max_anon = $anon if $anon > $max_anon;
	if ($i % 25 == 0)
	{
		$status = q1($node, "SELECT status FROM execlog.executions WHERE id = $e");
		last if $status !~ /^(pending|running)$/;
		last if $i > 200_000;
	}
	usleep(5_000);
}
my ($end, $end_anon, $end_rss) = private_kb();
$max = $end if defined $end && $end > $max;
diag("worker private memory: $before kB before, at most $max kB while running ($samples samples), "
	  . ($end // '?') . " kB at the end (anonymous: at most $max_anon kB, "
	  . ($end_anon // '?') . ' kB at the end; Rss at the end ' . ($end_rss // '?') . ' kB)');

is($status, 'success', 'the step returning 2,000,000 rows succeeds');
ok($samples > 10, 'the memory was sampled while the step ran');
cmp_ok($max, '<', $limit_kb, 'worker private memory stays under 100 MB while it runs');
ok(defined $end && $end < $limit_kb, 'worker private memory is under 100 MB at its end');

my $sel = "FROM execlog.execution_steps WHERE execution_id = $e AND name = 'rows'";
my ($n, $kept, $total, $bytes, $first, $len) = split /\|/, q1($node, qq{
SELECT jsonb_array_length(output),
       output -> -1 ->> 'rows_kept', output -> -1 ->> 'rows', output -> -1 ->> 'bytes',
       output -> 0 ->> 'g', octet_length(output::text) $sel});
is(q1($node, "SELECT output -> -1 ->> 'execlog_truncated' $sel"), 'true', 'the output ends with the truncation marker');
is($total, $rows, 'the marker gives the full row count');
cmp_ok($kept, '>', 0, 'the output keeps the first rows');
cmp_ok($kept, '<', 20_000, 'and only as many as fit');
is($n, $kept + 1, 'the output holds the rows it says it kept, and the marker');
is($first, '1', 'the rows kept are the first ones');
cmp_ok($bytes, '>', $rows * 100, 'the marker gives the JSON size of all rows');
cmp_ok($len, '<', 2 * 1024 * 1024, 'the stored output is about max_payload_bytes');
is(q1($node, "SELECT output -> 0 ->> 'n' FROM execlog.execution_steps WHERE execution_id = $e AND name = 'after'"),
	$kept + 1, 'a later step sees the capped output');

is(q1($node, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker'}), $pid,
	'the worker is the same process');
$e = q1($node, q{SELECT execlog.start('small')});
ok(wait_status($node, $e, "'success'"), 'the next execution succeeds');

$node->stop;
done_testing();
