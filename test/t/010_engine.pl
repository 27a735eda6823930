# The workers run executions end to end: every step kind, placeholders,
# conditions, on_error, retries that resume at the failed step, run_as,
# automatic retries, follow-up tasks, and bad input that fails only its step.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('engine');

$node->safe_psql('postgres', q{
CREATE TABLE public.side_effects (id serial PRIMARY KEY, execution bigint, what text);
CREATE TABLE public.gate (open boolean);
INSERT INTO public.gate VALUES (false);
GRANT ALL ON public.side_effects, public.side_effects_id_seq, public.gate TO runner;
});

# ---- every step kind, placeholders keep their type, conditions skip
my $a = automation($node, 'kinds', run_as => "'runner'", steps => [
	['calc', 'sql', '{"query": "SELECT $1::int * 2 AS doubled, $2::text AS who", "args": ["{{ $.payload.n }}", "{{ $.payload.who }}"]}'],
	['typed', 'sql', '{"query": "SELECT $1::int + 0 AS v", "args": ["{{ $.steps.calc.output[0].doubled }}"]}'],
	['big_only', 'sql', '{"query": "SELECT 1"}', 'stop', '$.payload.n > 100'],
	['feedback', 'feedback', '{"fields": {"doubled": "{{ $.steps.calc.output[0].doubled }}", "note": "n={{ $.payload.n }}"}}'],
	['answer', 'response', '{"body": {"result": "{{ $.steps.calc.output[0].doubled }}", "execution": "{{ $.execution.id }}"}}'],
]);
my $e = q1($node, q{SELECT execlog.start('kinds', '{"n": 21, "who": "maria"}')});
ok(wait_status($node, $e, "'success'"), 'multi-kind execution succeeds');
is(q1($node, "SELECT string_agg(name || '=' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e"),
	'calc=success,typed=success,big_only=skipped,feedback=success,answer=success',
	'steps ran in order, condition false skipped the step');
is(q1($node, "SELECT output FROM execlog.execution_steps WHERE execution_id = $e AND name = 'calc'"),
	'[{"who": "maria", "doubled": 42}]', 'sql output is the rows as a JSON array');
is(q1($node, "SELECT input -> 'args' FROM execlog.execution_steps WHERE execution_id = $e AND name = 'typed'"),
	'[42]', 'a whole-string placeholder keeps the JSON type (number)');
is(q1($node, "SELECT context FROM execlog.executions WHERE id = $e"),
	'{"celonis_postaction_feedback": {"note": "n=21", "doubled": 42}}',
	'feedback merged into context.celonis_postaction_feedback');
is(q1($node, "SELECT response FROM execlog.executions WHERE id = $e"),
	qq({"result": 42, "execution": $e}), 'response step stored in executions.response');
is(q1($node, "SELECT steps FROM execlog.execution_log WHERE id = $e"), '4',
	'execution_log counts executed steps');
is(q1($node, "SELECT string_agg(coalesce(from_status::text, '-') || '>' || to_status, ' ' ORDER BY id) FROM execlog.transitions WHERE execution_id = $e"),
	'->pending pending>running running>success', 'transitions recorded');
like(q1($node, "SELECT by FROM execlog.transitions WHERE execution_id = $e AND to_status = 'success'"),
	qr/^execlog worker \d$/, 'worker changes are attributed to the worker');

# ---- placeholder paths: plain member paths (read without building the
# document) and the others (jsonpath) give the same values and types
automation($node, 'paths', steps => [
	['rows', 'sql', '{"query": "SELECT 7 AS seven"}'],
	['answer', 'response', '{"body": {"inner": "{{ $.payload.obj.inner }}", "arr": "{{ $.payload.arr }}", "nul": "{{ $.payload.nul }}", "lax": "{{ $.steps.rows.output.seven }}", "elem": "{{ $.payload.arr[1] }}", "attempt": "{{ $.execution.attempt }}", "ctx": "{{ $.context }}", "text": "a={{ $.payload.obj.inner }} b={{$.payload.arr}}"}}'],
]);
$e = q1($node, q{SELECT execlog.start('paths', '{"obj": {"inner": {"k": true}}, "arr": [1, "two"], "nul": null}')});
ok(wait_status($node, $e, "'success'"), 'placeholder paths: execution succeeds');
is(q1($node, "SELECT response FROM execlog.executions WHERE id = $e"),
	'{"arr": [1, "two"], "ctx": {}, "lax": 7, "nul": null, "elem": "two", "text": "a={\"k\": true} b=[1, \"two\"]", "inner": {"k": true}, "attempt": 1}',
	'placeholder paths: members, arrays, null, lax unwrapping and interpolation');
automation($node, 'nopath', steps => [['answer', 'response', '{"body": "{{ $.payload.obj.missing }}"}']]);
$e = q1($node, q{SELECT execlog.start('nopath', '{"obj": {"inner": 1}}')});
ok(wait_status($node, $e, "'failed'"), 'placeholder paths: a missing member fails the step');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"),
	qr/placeholder "\{\{ \$\.payload\.obj\.missing \}\}" matched nothing/,
	'placeholder paths: the error names the placeholder');

# ---- a watched table: a row meeting the condition starts the automation,
# which sees the row as its payload
$node->safe_psql('postgres', q{CREATE TABLE public.orders (id int PRIMARY KEY, amount int)});
automation($node, 'big_order', steps => [['echo', 'response', '{"body": {"order": "{{ $.payload.id }}", "amount": "{{ $.payload.amount }}"}}']]);
q1($node, q{SELECT execlog.watch('public.orders', 'big_order', 'NEW.amount >= 100')});
q1($node, q{INSERT INTO public.orders VALUES (1, 5), (2, 250)});
$e = q1($node, q{SELECT id FROM execlog.executions e WHERE trigger_kind = 'data'});
like($e, qr/^\d+$/, 'watch: one row of two met the condition');
ok(wait_status($node, $e, "'success'"), 'watch: the started execution runs');
is(q1($node, "SELECT response::text || ' ' || triggered_by FROM execlog.executions WHERE id = $e"),
	'{"order": 2, "amount": 250} public.orders', 'watch: the row is the payload, the table the trigger');

# ---- on_error stop / continue
automation($node, 'stops', run_as => "'runner'", steps => [
	['one', 'sql', '{"query": "SELECT 1 AS x"}'],
	['boom', 'sql', '{"query": "SELECT 1/0"}'],
	['never', 'sql', '{"query": "SELECT 2"}'],
]);
$e = q1($node, q{SELECT execlog.start('stops')});
ok(wait_status($node, $e, "'failed'"), 'a failing stop step fails the execution');
is(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"),
	'step "boom" failed: division by zero', 'execution error names the step');
is(q1($node, "SELECT string_agg(status::text, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e"),
	'success,failed,skipped', 'later steps are skipped');

automation($node, 'continues', run_as => "'runner'", steps => [
	['boom', 'sql', '{"query": "SELECT 1/0"}', 'continue'],
	['after', 'sql', '{"query": "SELECT 2 AS y"}'],
]);
$e = q1($node, q{SELECT execlog.start('continues')});
ok(wait_status($node, $e, "'partially_executed'"), 'a failing continue step gives partially_executed');
is(q1($node, "SELECT string_agg(status::text, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e"),
	'failed,success', 'later steps still run after a continue step failed');

# ---- retry resumes at the failed step; earlier side effects happen once
automation($node, 'gated', run_as => "'runner'", steps => [
	['record', 'sql', '{"query": "INSERT INTO public.side_effects (execution, what) VALUES ($1, $2) RETURNING id", "args": ["{{ $.execution.id }}", "record"]}'],
	['check', 'sql', '{"query": "SELECT 1 / count(*) AS ok FROM public.gate WHERE open"}'],
	['use', 'sql', '{"query": "SELECT $1::int AS recorded", "args": ["{{ $.steps.record.output[0].id }}"]}'],
]);
$e = q1($node, q{SELECT execlog.start('gated')});
ok(wait_status($node, $e, "'failed'"), 'gated execution fails while the gate is closed');
$node->safe_psql('postgres', q{UPDATE public.gate SET open = true});
is(q1($node, "SELECT execlog.retry($e)"), $e, 'retry returns the execution id');
ok(wait_status($node, $e, "'success'"), 'retried execution succeeds');
is(q1($node, "SELECT count(*) FROM public.side_effects WHERE execution = $e"), '1',
	'the step before the failed one ran once');
is(q1($node, "SELECT string_agg(name || ':' || status || ':' || coalesce(reused_from::text, '-'), ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $e AND attempt = 2"),
	'record:success:1,check:success:-,use:success:-', 'attempt 2 reused the output of attempt 1');
is(q1($node, "SELECT output->0->>'recorded' = (SELECT id::text FROM public.side_effects WHERE execution = $e) FROM execlog.execution_steps WHERE execution_id = $e AND attempt = 2 AND name = 'use'"),
	't', 'later steps see the kept output');
is(q1($node, "SELECT steps FROM execlog.execution_log WHERE id = $e"), '2',
	'reused steps are not counted as executed');

# from_start reruns everything
$node->safe_psql('postgres', q{UPDATE public.gate SET open = false});
my $e2 = q1($node, q{SELECT execlog.start('gated')});
ok(wait_status($node, $e2, "'failed'"), 'second gated execution fails');
$node->safe_psql('postgres', qq{UPDATE public.gate SET open = true; SELECT execlog.retry($e2, from_start => true)});
ok(wait_status($node, $e2, "'success'"), 'from_start retry succeeds');
is(q1($node, "SELECT count(*) FROM public.side_effects WHERE execution = $e2"), '2',
	'from_start ran the first step again');

# ---- automatic retries with doubling delay, from the same budget
$node->safe_psql('postgres', q{UPDATE public.gate SET open = false});
automation($node, 'auto', run_as => "'runner'", max_retries => 2, auto_retries => 2,
	retry_delay => "'100 milliseconds'", steps => [
	['check', 'sql', '{"query": "SELECT 1 / count(*) FROM public.gate WHERE open"}'],
]);
$e = q1($node, q{SELECT execlog.start('auto')});
ok($node->poll_query_until('postgres', "SELECT attempt = 3 AND status = 'failed' AND run_after IS NULL FROM execlog.executions WHERE id = $e"),
	'automatic retries run until the budget is spent');
is(q1($node, "SELECT count(*) FROM execlog.transitions WHERE execution_id = $e AND to_status = 'pending' AND from_status = 'failed'"),
	'2', 'two automatic retries were made');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT execlog.retry($e)");
like($err, qr/execution $e has reached its retry limit/, 'manual retry shares the budget');

# ---- on_failure creates a task and an alert when no retry is left
my $chan = q1($node, q{INSERT INTO execlog.channels (account_id, name, kind, config)
	SELECT id, 'ops-hook', 'webhook', '{"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}'
	  FROM execlog.accounts WHERE name = 'acme' RETURNING id});
automation($node, 'followup', run_as => "'runner'", max_retries => 0,
	on_failure => q{'{"task": {"assignee": "ops", "title": "fix {{ $.payload.ref }}"}, "alert": {"channel": "ops-hook", "message": "{{ $.payload.ref }} failed"}}'},
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}']]);
$e = q1($node, q{SELECT execlog.start('followup', '{"ref": "INV-7"}')});
ok(wait_status($node, $e, "'failed'"), 'followup execution fails');
is(q1($node, "SELECT assignee || '|' || title || '|' || status FROM execlog.tasks WHERE execution_id = $e"),
	'ops|fix INV-7|open', 'task created with placeholders resolved');
is(q1($node, "SELECT channel_id || '|' || channel || '|' || target || '|' || message || '|' || status FROM execlog.alerts WHERE execution_id = $e"),
	"$chan|webhook|ops-hook|INV-7 failed|pending", 'alert created for the named channel, with its kind and name (never its URL)');
automation($node, 'mailed', run_as => "'runner'", max_retries => 0,
	on_failure => q{'{"alert": {"channel": "email", "target": "maria@example.com"}}'},
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}']]);
my $m = q1($node, q{SELECT execlog.start('mailed')});
ok(wait_status($node, $m, "'failed'"), 'mailed execution fails');
is(q1($node, "SELECT coalesce(channel_id::text, 'none') || '|' || channel || '|' || target || '|' || message FROM execlog.alerts WHERE execution_id = $m"),
	"none|email|maria\@example.com|execution $m failed", 'a literal e-mail target makes an e-mail alert without a channel');
my $task = q1($node, "SELECT id FROM execlog.tasks WHERE execution_id = $e");
$node->safe_psql('postgres', "SELECT execlog.complete_task($task, 'done by hand')");
is(q1($node, "SELECT status || '|' || note FROM execlog.tasks WHERE id = $task"), 'done|done by hand', 'task completed');

# ---- run_as: steps run as the automation's role, never as the worker's superuser
automation($node, 'whoami', run_as => "'runner'", steps => [
	['who', 'sql', '{"query": "SELECT current_user AS u, session_user AS s"}'],
	['forbidden', 'sql', '{"query": "SELECT count(*) FROM pg_authid"}'],
]);
$e = q1($node, q{SELECT execlog.start('whoami')});
ok(wait_status($node, $e, "'failed'"), 'whoami finishes');
is(q1($node, "SELECT output->0->>'u' FROM execlog.execution_steps WHERE execution_id = $e AND name = 'who'"),
	'runner', 'sql step runs as run_as');
like(q1($node, "SELECT error FROM execlog.execution_steps WHERE execution_id = $e AND name = 'forbidden'"),
	qr/permission denied for table pg_authid/, 'run_as has no superuser rights');

# a SET in a step does not leak into the worker's session
automation($node, 'setter', run_as => "'runner'", steps => [
	['set', 'sql', '{"query": "SET search_path = nowhere"}'],
]);
$e = q1($node, q{SELECT execlog.start('setter')});
ok(wait_status($node, $e, "'success','failed'"), 'setter finishes');
$e = q1($node, q{SELECT execlog.start('kinds', '{"n": 1, "who": "x"}')});
ok(wait_status($node, $e, "'success'"), 'later executions are unaffected by a step SET');

# ---- bad input fails only its step, with a clear error; workers keep running
my @bad = (
	['unknown_fn', '{"query": "SELECT no_such_function()"}', qr/function no_such_function\(\) does not exist/],
	['syntax', '{"query": "SELEC 1"}', qr/syntax error at or near "SELEC"/],
	['nothing', '{"query": "SELECT $1", "args": ["{{ $.payload.missing }}"]}', qr/placeholder "\{\{ \$\.payload\.missing \}\}" matched nothing/],
	['badpath', '{"query": "SELECT $1", "args": ["{{ $$$ }}"]}', qr/could not resolve placeholder/],
	['oddtypes', q{{"query": "SELECT 'NaN'::numeric AS n, 'infinity'::timestamptz AS t, decode('00ff', 'hex') AS b, point(1,2) AS p"}}, undef],
);
for my $b (@bad)
{
	my ($name, $config, $re) = @$b;
	automation($node, "bad_$name", run_as => "'runner'", steps => [['s', 'sql', $config]]);
	$e = q1($node, "SELECT execlog.start('bad_$name')");
	ok(wait_status($node, $e, "'success','failed'"), "bad_$name finishes");
	if (defined $re)
	{
		like(q1($node, "SELECT error FROM execlog.execution_steps WHERE execution_id = $e"), $re, "bad_$name: clear error");
	}
	else
	{
		is(q1($node, "SELECT status FROM execlog.executions WHERE id = $e"), 'success', "bad_$name: odd types become JSON");
	}
}

# a run_as role dropped under the automation
$node->safe_psql('postgres', q{CREATE ROLE doomed NOLOGIN});
automation($node, 'orphan', run_as => "'doomed'", steps => [['s', 'sql', '{"query": "SELECT 1"}']]);
$node->safe_psql('postgres', q{DROP ROLE doomed});
$e = q1($node, q{SELECT execlog.start('orphan')});
ok(wait_status($node, $e, "'failed'"), 'dropped run_as role fails the execution');
like(q1($node, "SELECT error FROM execlog.executions WHERE id = $e"), qr/role "doomed" does not exist/,
	'error names the missing role');

# everything above left both workers alive
is(q1($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'execlog worker'"), '2',
	'both workers still run');

$node->stop;
done_testing();
