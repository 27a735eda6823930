# Time limits, pauses, throttles and cancels, with workers running.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('limits', "execlog.workers = 4\n");

# ---- time limit: the running statement is aborted, the execution rejected
automation($node, 'slow', run_as => "'runner'", time_limit => "'1 second'", steps => [
	['first', 'sql', '{"query": "SELECT 1"}'],
	['sleep', 'sql', '{"query": "SELECT pg_sleep(600)"}'],
	['never', 'sql', '{"query": "SELECT 2"}'],
]);
my $e = q1($node, q{SELECT execlog.start('slow')});
ok(wait_status($node, $e, "'rejected'"), 'an execution past its time limit is rejected (the 600 s sleep was aborted)');
is(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"), 'time limit of 00:00:01 exceeded',
	'rejection says why');
is(q1($node, "SELECT string_agg(name || ':' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e"),
	'first:success,sleep:failed,never:skipped', 'running step failed, later steps skipped');

# ---- pause and resume; a timed pause resumes by itself
automation($node, 'approval', run_as => "'runner'", steps => [
	['ask', 'pause', '{}'],
	['use', 'sql', '{"query": "SELECT $1::text AS by", "args": ["{{ $.resume.by }}"]}'],
]);
$e = q1($node, q{SELECT execlog.start('approval')});
ok(wait_status($node, $e, "'paused'"), 'pause step pauses the execution');
is(q1($node, "SELECT status FROM execlog.execution_steps WHERE execution_id = $e AND name = 'ask'"), 'running',
	'the pause step waits');
$node->safe_psql('postgres', qq{SELECT execlog.resume($e, '{"by": "maria"}')});
ok(wait_status($node, $e, "'success'"), 'resumed execution finishes');
is(q1($node, "SELECT output FROM execlog.execution_steps WHERE execution_id = $e AND name = 'ask'"),
	'{"by": "maria"}', 'the pause step output is the resume payload');
is(q1($node, "SELECT output->0->>'by' FROM execlog.execution_steps WHERE execution_id = $e AND name = 'use'"),
	'maria', 'later steps see $.resume');

automation($node, 'nap', run_as => "'runner'", steps => [
	['nap', 'pause', '{"for": "300 milliseconds"}'],
	['after', 'sql', '{"query": "SELECT 1 AS done"}'],
]);
$e = q1($node, q{SELECT execlog.start('nap')});
ok(wait_status($node, $e, "'success'"), 'a timed pause resumes by itself');
is(q1($node, "SELECT string_agg(from_status || '>' || to_status, ' ' ORDER BY id) FROM execlog.transitions WHERE execution_id = $e AND from_status IS NOT NULL"),
	'pending>running running>paused paused>running running>success', 'pause visible in transitions');

automation($node, 'forgotten', run_as => "'runner'", time_limit => "'500 milliseconds'", steps => [
	['wait', 'pause', '{}'],
	['after', 'sql', '{"query": "SELECT 1"}'],
]);
$e = q1($node, q{SELECT execlog.start('forgotten')});
ok(wait_status($node, $e, "'rejected'"), 'a pause nobody resumes is rejected at the time limit');
is(q1($node, "SELECT string_agg(name || ':' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e"),
	'wait:failed,after:skipped', 'the waiting pause failed, later steps skipped');

# ---- cancel a running SQL step: the statement is interrupted, effects undone
$node->safe_psql('postgres', q{
CREATE TABLE public.marks (execution bigint);
GRANT ALL ON public.marks TO runner;
});
automation($node, 'long', run_as => "'runner'", steps => [
	['mark', 'sql', '{"query": "INSERT INTO public.marks VALUES ($1)", "args": ["{{ $.execution.id }}"]}'],
	['sleep', 'sql', '{"query": "SELECT pg_sleep(600)"}'],
]);
$e = q1($node, q{SELECT execlog.start('long')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e,%sleep%'"),
	'the long step is running');
$node->safe_psql('postgres', "SELECT execlog.cancel($e)");
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $e"), 'cancelled', 'cancel is immediate');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'execlog worker' AND state = 'active' AND query LIKE '%execution $e,%'"),
	'the worker stopped running the cancelled execution');
is(q1($node, "SELECT count(*) FROM public.marks WHERE execution = $e"), '0',
	'the effects of the cancelled execution were rolled back');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $e"), 'cancelled', 'it stays cancelled');

# ---- throttle: never more than 2 running or paused, under load, 4 workers
my $t;
$t = automation($node, 'throttled', run_as => "'postgres'", throttle => 2, steps => [
	['probe', 'sql', q{{"query": "SELECT count(*) AS active FROM execlog.executions e JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name = 'throttled' AND e.status IN ('running', 'paused')"}}],
	['work', 'sql', '{"query": "SELECT pg_sleep(0.02)"}'],
]);
$node->safe_psql('postgres', q{SELECT execlog.start('throttled') FROM generate_series(1, 60)});
is(q1($node, "SELECT count(*) FROM execlog.transitions t JOIN execlog.executions e ON e.id = t.execution_id WHERE e.automation_id = $t AND t.from_status IS NULL AND t.to_status = 'queued'"), '60',
	'executions of a throttled automation start queued');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 60 FROM execlog.executions WHERE automation_id = $t AND status = 'success'"),
	'all throttled executions finish');
is(q1($node, "SELECT max((output->0->>'active')::int) FROM execlog.execution_steps WHERE execution_id IN (SELECT id FROM execlog.executions WHERE automation_id = $t) AND name = 'probe'"),
	'2', 'at most 2 ran at once, and 2 did');

# ---- execlog.retention: old finished executions are pruned by the workers
my $old = q1($node, q{SELECT execlog.start('nap')});
ok(wait_status($node, $old, "'success'"), 'an execution to age');
$node->safe_psql('postgres', qq{UPDATE execlog.executions SET finished_at = now() - interval '2 days' WHERE id = $old});
$node->safe_psql('postgres', q{ALTER SYSTEM SET execlog.retention = '1d'; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM execlog.executions WHERE id = $old"),
	'with execlog.retention set, the workers prune finished executions older than that');
is(q1($node, "SELECT count(*) FROM execlog.transitions WHERE execution_id = $old"), '0', 'with their transitions');
cmp_ok(q1($node, "SELECT count(*) FROM execlog.executions"), '>', 60, 'younger executions stay');

$node->stop;
done_testing();
