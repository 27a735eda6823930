# Exact crash recovery: an interrupted attempt is resumed like retry(), at the
# first step that did not succeed, through any number of crashes; the
# in-database effect of a step that succeeded happens once, ever.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('exact', "restart_after_crash = on\n");
$node->safe_psql('postgres', q{
CREATE TABLE public.effects (n int);
CREATE TABLE public.gate (fail boolean, nap boolean);
INSERT INTO public.gate VALUES (true, false);
GRANT INSERT, SELECT ON public.effects TO runner;
GRANT SELECT ON public.gate TO runner;
});
automation($node, 'exact', run_as => "'runner'", max_retries => 10, steps => [
	['effect', 'sql', '{"query": "INSERT INTO public.effects VALUES (1) RETURNING n"}'],
	['second', 'sql', '{"query": "SELECT 1 / (CASE WHEN fail THEN 0 ELSE 1 END), pg_sleep(CASE WHEN nap THEN 600 ELSE 0 END) FROM public.gate"}'],
]);

my $e = q1($node, q{SELECT execlog.start('exact')});
ok(wait_status($node, $e, "'failed'"), 'the first attempt fails at its second step');
is(q1($node, 'SELECT count(*) FROM public.effects'), '1', 'its first step made its effect');
$node->safe_psql('postgres', q{UPDATE public.gate SET fail = false, nap = true});
$node->safe_psql('postgres', "SELECT execlog.retry($e)");

my $crashes = 3;
for my $c (1 .. $crashes)
{
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e, step \"second\"%'"),
		"crash $c: the execution sleeps in its second step");
	my $pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e, step \"second\"%'");
	die "no worker pid: '$pid'" unless $pid =~ /^\d+$/;
	$node->safe_psql('postgres', q{UPDATE public.gate SET nap = false}) if $c == $crashes;
	kill 'KILL', $pid;
	ok($node->poll_query_until('postgres', "SELECT attempt = " . (2 + $c) . " FROM execlog.executions WHERE id = $e"),
		"crash $c: recovery makes attempt " . (2 + $c));
}
ok(wait_status($node, $e, "'success'"), 'the last attempt succeeds');
is(q1($node, 'SELECT count(*) FROM public.effects'), '1',
	"the first step's effect happened once through $crashes crashes");
is(q1($node, "SELECT reused_from FROM execlog.execution_steps WHERE execution_id = $e AND name = 'effect' AND attempt = (SELECT attempt FROM execlog.executions WHERE id = $e)"),
	'1', 'the last attempt reused the first step of attempt 1');
done_testing();
