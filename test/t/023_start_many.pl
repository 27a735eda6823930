# execlog.start_many() (issue 13, point 5): the executions one statement
# enqueues are all run by the workers, each with its own payload, and a
# throttled automation's queued ones run within its throttle.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('start_many');

automation($node, 'bulk', run_as => "'runner'", steps => [
	['echo', 'sql', '{"query": "SELECT $1::int * 2 AS doubled", "args": ["{{ $.payload.n }}"]}'],
]);
automation($node, 'gate', run_as => "'runner'", throttle => 2, steps => [
	['wait', 'sql', '{"query": "SELECT pg_sleep(0.05) IS NULL AS slept"}'],
]);

# one transaction: start_many, then the commit wakes the workers
my $n = 500;
my @ids = split /\n/, $node->safe_psql('postgres',
	"SELECT execlog.start_many('bulk', ARRAY(SELECT jsonb_build_object('n', g) FROM generate_series(1, $n) g))");
is(scalar(@ids), $n, "start_many returns $n ids");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = $n FROM execlog.executions WHERE automation_id = (SELECT id FROM execlog.automations WHERE name = 'bulk')"
	  . " AND status NOT IN ('pending', 'running')"),
	"the workers end all $n executions");
is(q1($node, "SELECT status, count(*) FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id"
	  . " WHERE a.name = 'bulk' GROUP BY 1"),
	"success|$n", "all of them succeed");
# each ran with its own payload: output = 2 * payload.n, in the order of the ids
my $idlist = join(',', @ids);
is(q1($node, qq{
SELECT count(*) FROM unnest('{$idlist}'::bigint[]) WITH ORDINALITY AS i (id, k)
  JOIN execlog.executions e ON e.id = i.id
  JOIN execlog.execution_steps s ON s.execution_id = e.id AND s.name = 'echo'
 WHERE (e.payload ->> 'n')::int = i.k
   AND s.output = jsonb_build_array(jsonb_build_object('doubled', 2 * i.k))}),
	$n, 'each execution ran with its payload (element k of the array, output 2k)');
is(q1($node, q{
SELECT string_agg(DISTINCT path, ' ') FROM (
	SELECT string_agg(coalesce(from_status::text, '-') || '>' || to_status, ',' ORDER BY t.id) AS path
	  FROM execlog.transitions t JOIN execlog.executions e ON e.id = t.execution_id
	  JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE a.name = 'bulk' GROUP BY t.execution_id) p}),
	'->pending,pending>running,running>success', 'every one has the transitions of a started execution');

# a throttled automation: all queued, all run, never more than 2 at once
my $m = 12;
$node->safe_psql('postgres', "SELECT count(*) FROM execlog.start_many('gate', array_fill('{}'::jsonb, ARRAY[$m]))");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = $m FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id"
	  . " WHERE a.name = 'gate' AND e.status = 'success'"),
	"the workers run all $m throttled executions");
is(q1($node, q{
SELECT string_agg(DISTINCT path, ' ') FROM (
	SELECT string_agg(coalesce(from_status::text, '-') || '>' || to_status, ',' ORDER BY t.id) AS path
	  FROM execlog.transitions t JOIN execlog.executions e ON e.id = t.execution_id
	  JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE a.name = 'gate' GROUP BY t.execution_id) p}),
	'->queued,queued>running,running>success', 'each was queued first');
# the most running at once, from the transitions: +1 at each start, -1 at each end
cmp_ok(q1($node, q{
SELECT max(running) FROM (
	SELECT sum(CASE WHEN to_status = 'running' THEN 1 ELSE -1 END) OVER (ORDER BY t.id) AS running
	  FROM execlog.transitions t JOIN execlog.executions e ON e.id = t.execution_id
	  JOIN execlog.automations a ON a.id = e.automation_id
	 WHERE a.name = 'gate' AND (t.to_status = 'running' OR t.from_status = 'running')) r}),
	'<=', 2, 'never more than the throttle (2) running at once');

$node->stop;
done_testing();
