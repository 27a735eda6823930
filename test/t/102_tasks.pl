# People in the loop, with running workers (SPEC section 6): a task step
# pauses its execution until complete_task() resumes it (approve/reject
# decided by a condition on a later step), dismiss_task() fails the waiting
# step, the time spent waiting does not count against time_limit, an alert
# step creates its alert row with the resolved message, overdue tasks are
# escalated exactly once (also across a kill -9 of a worker), and
# my_tasks shows each role its tasks in its accounts only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

# alerts are counted one by one here: no storm control (TAP 100 tests it)
my $node = execlog_node('tasks', "restart_after_crash = on\nexeclog.alert_coalesce = 0\n");

# two accounts, an operator of each, both members of the group "approvers";
# a reader of acme
$node->safe_psql('postgres', q{
CREATE ROLE approvers NOLOGIN;
CREATE ROLE ops1 NOLOGIN IN ROLE execlog_operator, approvers;
CREATE ROLE ops2 NOLOGIN IN ROLE execlog_operator, approvers;
CREATE ROLE bi NOLOGIN IN ROLE execlog_reader, approvers;
INSERT INTO execlog.accounts (name) VALUES ('beta');
INSERT INTO execlog.account_members
SELECT id, 'ops1' FROM execlog.accounts WHERE name = 'acme'
UNION ALL SELECT id, 'bi' FROM execlog.accounts WHERE name = 'acme'
UNION ALL SELECT id, 'ops2' FROM execlog.accounts WHERE name = 'beta';
INSERT INTO execlog.channels (account_id, name, kind, config)
SELECT id, 'ops-slack', 'slack', '{"url": "http://127.0.0.1:9/services/T0/B0/secret"}'
  FROM execlog.accounts WHERE name = 'acme';
CREATE TABLE public.booked (invoice int);
GRANT INSERT, SELECT ON public.booked TO runner;
});

# as a role (SET ROLE to a non-superuser)
sub as_role
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE $role; $sql");
}

# the task an execution waits for (the id in its running task step's output)
sub task_of
{
	my ($e) = @_;
	return q1($node, "SELECT id FROM execlog.tasks WHERE execution_id = $e AND status = 'open' ORDER BY id LIMIT 1");
}

# ---- approval flow: task -> complete(approve) -> the booking step runs;
# reject -> its condition skips it.  An alert step reports the outcome.
automation($node, 'approve-invoice', run_as => "'runner'", time_limit => "'5 seconds'", steps => [
	['approval', 'task', '{"assignee": "approvers", "title": "approve invoice {{ $.payload.invoice }}", "body": "amount {{ $.payload.amount }}"}'],
	['book', 'sql', '{"query": "INSERT INTO public.booked VALUES ($1::int) RETURNING invoice", "args": ["{{ $.payload.invoice }}"]}',
		'stop', '$.steps.approval.output.outcome == "approve"'],
	['tell', 'alert', '{"channel": "ops-slack", "message": "invoice {{ $.payload.invoice }}: {{ $.steps.approval.output.outcome }} by {{ $.steps.approval.output.closed_by }}"}'],
	['note', 'task', '{"assignee": "approvers", "title": "file invoice {{ $.payload.invoice }}", "wait": false}'],
]);

my $ea = q1($node, q{SELECT execlog.start('approve-invoice', '{"invoice": 1, "amount": 900}')});
my $eb = q1($node, q{SELECT execlog.start('approve-invoice', '{"invoice": 2, "amount": 50}')});
ok(wait_status($node, $ea, "'paused'") && wait_status($node, $eb, "'paused'"),
	'a task step pauses its execution');
my $ta = task_of($ea);
my $tb = task_of($eb);
is(q1($node, "SELECT status || ' ' || coalesce(output::text, '') FROM execlog.execution_steps WHERE execution_id = $ea AND name = 'approval'"),
	qq(running {"task_id": $ta}), 'the waiting step is running with its task id');
is(q1($node, "SELECT assignee || '|' || title || '|' || body || '|' || step_position FROM execlog.tasks WHERE id = $ta"),
	'approvers|approve invoice 1|amount 900|1', 'the task row has the resolved title and body');
is(as_role('ops1', 'SELECT string_agg(title, \',\' ORDER BY id) FROM execlog.my_tasks'),
	'approve invoice 1,approve invoice 2', 'my_tasks shows the group\'s tasks to a member');
is(q1($node, "SELECT run_after IS NULL FROM execlog.executions WHERE id = $ea"), 't',
	'waiting for a task sets no wake-up time');

# wait past the time limit (5 s) before deciding: waiting does not count
ok($node->poll_query_until('postgres',
	"SELECT pg_catalog.clock_timestamp() > started_at + interval '6 seconds' FROM execlog.executions WHERE id = $ea"),
	'the task has been waited for longer than the time limit');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $ea"), 'paused',
	'an execution waiting for a task is not rejected at its time limit');

as_role('ops1', "SELECT execlog.complete_task($ta, 'checked', 'approve')");
as_role('ops1', "SELECT execlog.complete_task($tb, 'too small', 'reject')");
ok(wait_status($node, $ea, "'success','failed','rejected'") && wait_status($node, $eb, "'success','failed','rejected'"),
	'completed tasks resume their executions');
is(q1($node, "SELECT status || coalesce(' ' || error, '') FROM execlog.executions WHERE id = $ea"), 'success',
	'approved execution succeeds although it waited past its time limit');
is(q1($node, "SELECT string_agg(name || '=' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $ea"),
	'approval=success,book=success,tell=success,note=success', 'approve: the booking step runs');
is(q1($node, "SELECT string_agg(name || '=' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $eb"),
	'approval=success,book=skipped,tell=success,note=success', 'reject: the condition skips the booking step');
is(q1($node, "SELECT string_agg(invoice::text, ',') FROM public.booked"), '1', 'only the approved invoice was booked');
is(q1($node, "SELECT output FROM execlog.execution_steps WHERE execution_id = $ea AND name = 'approval'"),
	qq({"note": "checked", "outcome": "approve", "task_id": $ta, "closed_by": "ops1"}),
	'the task step\'s output is {task_id, outcome, note, closed_by}');
is(q1($node, "SELECT string_agg(coalesce(from_status::text, '-') || '>' || to_status || ':' || CASE WHEN by LIKE 'execlog worker%' THEN 'worker' ELSE by END, ' ' ORDER BY id) FROM execlog.transitions WHERE execution_id = $ea"),
	'->pending:postgres pending>running:worker running>paused:worker paused>running:ops1 running>success:worker',
	'transitions: paused by a worker, resumed by the role that completed the task');

# the alert step: one alert row with the resolved message, output {"alert_id"}
is(q1($node, "SELECT string_agg(channel || '|' || target || '|' || message || '|' || status, ',' ORDER BY id) FROM execlog.alerts WHERE execution_id IN ($ea, $eb)"),
	'slack|ops-slack|invoice 1: approve by ops1|pending,slack|ops-slack|invoice 2: reject by ops1|pending',
	'alert steps create alert rows with the resolved message');
is(q1($node, "SELECT (s.output ->> 'alert_id')::bigint = a.id FROM execlog.execution_steps s JOIN execlog.alerts a ON a.execution_id = s.execution_id WHERE s.execution_id = $ea AND s.name = 'tell'"),
	't', 'the alert step\'s output names its alert row');
# a task without wait: the execution went on, the task stays open
is(as_role('ops1', 'SELECT string_agg(title, \',\' ORDER BY id) FROM execlog.my_tasks'),
	'file invoice 1,file invoice 2', 'tasks of non-waiting task steps stay open in my_tasks');
is(q1($node, "SELECT output ->> 'outcome' IS NULL AND output ? 'task_id' FROM execlog.execution_steps WHERE execution_id = $ea AND name = 'note'"),
	't', 'a non-waiting task step succeeds at once with its task id');

# ---- dismiss: the waiting step fails, on_error decides
my $ec = q1($node, q{SELECT execlog.start('approve-invoice', '{"invoice": 3, "amount": 10}')});
ok(wait_status($node, $ec, "'paused'"), 'third execution waits');
my $tc = task_of($ec);
as_role('ops1', "SELECT execlog.dismiss_task($tc, 'duplicate')");
ok(wait_status($node, $ec, "'failed'"), 'a dismissed task fails the execution (on_error stop)');
is(q1($node, "SELECT error FROM execlog.executions WHERE id = $ec"),
	qq(step "approval" failed: task $tc was dismissed by "ops1"), 'the execution error names the dismissal');
is(q1($node, "SELECT string_agg(name || '=' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $ec"),
	'approval=failed,book=skipped,tell=skipped,note=skipped', 'later steps are skipped');
is(q1($node, "SELECT status || '|' || note || '|' || closed_by FROM execlog.tasks WHERE id = $tc"),
	'dismissed|duplicate|ops1', 'the task is dismissed with its note');

# with on_error = continue the execution goes on and ends partially executed
automation($node, 'optional-review', steps => [
	['review', 'task', '{"assignee": "approvers", "title": "optional review"}', 'continue'],
	['after', 'sql', '{"query": "SELECT 1 AS one"}'],
]);
my $ed = q1($node, q{SELECT execlog.start('optional-review')});
ok(wait_status($node, $ed, "'paused'"), 'optional review waits');
as_role('ops1', "SELECT execlog.dismiss_task(" . task_of($ed) . ")");
ok(wait_status($node, $ed, "'partially_executed'"), 'dismissed with on_error continue: partially executed');
is(q1($node, "SELECT string_agg(name || '=' || status, ',' ORDER BY position) FROM execlog.execution_steps WHERE execution_id = $ed"),
	'review=failed,after=success', 'the step after the dismissed task ran');

# an assignee placeholder that is not a role fails the step (nobody would see the task)
automation($node, 'assign-by-payload', steps => [
	['ask', 'task', '{"assignee": "{{ $.payload.who }}", "title": "look"}'],
]);
my $en = q1($node, q{SELECT execlog.start('assign-by-payload', '{"who": "nobody"}')});
ok(wait_status($node, $en, "'failed'"), 'an assignee that is not a role fails the execution');
is(q1($node, "SELECT error FROM execlog.executions WHERE id = $en"),
	'step "ask" failed: assignee "nobody" of task step "ask" is not a role', 'the error names the assignee');
my $ey = q1($node, q{SELECT execlog.start('assign-by-payload', '{"who": "ops1"}')});
ok(wait_status($node, $ey, "'paused'"), 'a placeholder assignee that is a role gets the task');
is(as_role('ops1', "SELECT count(*) FROM execlog.my_tasks WHERE execution_id = $ey"), '1',
	'the role sees the task assigned to it by a placeholder');
as_role('ops1', "SELECT execlog.complete_task(" . task_of($ey) . ")");
ok(wait_status($node, $ey, "'success'"), 'completed with the default outcome');

# placeholders in "due" and an alert's "target" are checked again once resolved
automation($node, 'by-payload', steps => [
	['mail', 'alert', '{"channel": "email", "target": "{{ $.payload.to }}", "message": "due {{ $.payload.due }}"}'],
	['ask', 'task', '{"assignee": "approvers", "title": "by payload", "due": "{{ $.payload.due }}", "wait": false}'],
]);
my %bad = (
	'{"to": "ops@example.com", "due": "soon"}' => 'step "ask" failed: "due" of task step "ask" is not an interval: "soon"',
	'{"to": "ops@example.com", "due": "2 years"}' => 'step "ask" failed: "due" of task step "ask" must be more than 0 and at most 1 year, not "2 years"',
	'{"to": "not an address", "due": "1 hour"}' => 'step "mail" failed: the target of alert step "mail" is not an e-mail address',
);
for my $p (sort keys %bad)
{
	my $x = q1($node, "SELECT execlog.start('by-payload', '$p')");
	ok(wait_status($node, $x, "'failed'"), "by-payload $p fails");
	is(q1($node, "SELECT error FROM execlog.executions WHERE id = $x"), $bad{$p}, "by-payload $p: clear error");
}
my $ok = q1($node, q{SELECT execlog.start('by-payload', '{"to": "ops@example.com", "due": "3 hours"}')});
ok(wait_status($node, $ok, "'success'"), 'resolved due and target that are valid succeed');
is(q1($node, "SELECT (due_at BETWEEN created_at + interval '3 hours' - interval '1 second' AND created_at + interval '3 hours' + interval '1 second')::text || '|' || (escalate IS NULL) FROM execlog.tasks WHERE execution_id = $ok"),
	'true|true', 'due_at = created_at + due; nowhere to escalate to');
is(q1($node, "SELECT channel || '|' || target || '|' || message FROM execlog.alerts WHERE execution_id = $ok"),
	'email|ops@example.com|due 3 hours', 'an alert step to a literal address');
as_role('ops1', "SELECT execlog.dismiss_task(" . task_of($ok) . ")");

# ---- my_tasks across two roles and two accounts
my $beta_auto = q1($node, q{
INSERT INTO execlog.automations (account_id, name, run_as)
SELECT id, 'beta-approve', 'runner' FROM execlog.accounts WHERE name = 'beta' RETURNING id});
$node->safe_psql('postgres', qq{
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES ($beta_auto, 1, 'approval', 'task', '{"assignee": "approvers", "title": "beta approval"}');});
my $ebeta = q1($node, "SELECT execlog.start($beta_auto)");
my $eacme = q1($node, q{SELECT execlog.start('approve-invoice', '{"invoice": 4, "amount": 1}')});
ok(wait_status($node, $ebeta, "'paused'") && wait_status($node, $eacme, "'paused'"), 'one task waits in each account');
my $tbeta = task_of($ebeta);
my $tacme = task_of($eacme);
is(as_role('ops1', 'SELECT string_agg(automation || \':\' || title, \',\' ORDER BY id) FROM execlog.my_tasks'),
	'approve-invoice:file invoice 1,approve-invoice:file invoice 2,approve-invoice:approve invoice 4',
	'ops1 sees the tasks of acme only');
is(as_role('ops2', 'SELECT string_agg(automation || \':\' || title, \',\' ORDER BY id) FROM execlog.my_tasks'),
	'beta-approve:beta approval', 'ops2 sees the tasks of beta only');
is(as_role('bi', 'SELECT count(*) FROM execlog.my_tasks'), '3', 'a reader of acme sees its group\'s tasks there');
my ($rc, $out, $err) = $node->psql('postgres', "SET ROLE ops2; SELECT execlog.complete_task($tacme, 'mine?', 'approve')");
like($err, qr/task $tacme does not exist/, 'an operator cannot complete another account\'s task');
($rc, $out, $err) = $node->psql('postgres', "SET ROLE bi; SELECT execlog.complete_task($tacme)");
like($err, qr/permission denied for function complete_task/, 'a reader cannot complete tasks');
($rc, $out, $err) = $node->psql('postgres', "SET ROLE ops1; SELECT execlog.dismiss_task($tbeta)");
like($err, qr/task $tbeta does not exist/, 'an operator cannot dismiss another account\'s task');
as_role('ops2', "SELECT execlog.complete_task($tbeta, NULL, 'approve')");
ok(wait_status($node, $ebeta, "'success'"), 'ops2 completes its account\'s task');
is(q1($node, "SELECT status FROM execlog.executions WHERE id = $eacme"), 'paused',
	'the other account\'s execution still waits');
as_role('ops1', "SELECT execlog.complete_task($tacme, NULL, 'reject')");
ok(wait_status($node, $eacme, "'success'"), 'ops1 completes its task');

# ---- escalation: due in the past -> exactly one alert per task, also
# across a kill -9 of a worker (crash restart) racing the escalation
automation($node, 'escalating', steps => [
	['approval', 'task', '{"assignee": "approvers", "title": "urgent {{ $.payload.n }}", "due": "1 hour", "escalate": "ops-slack"}'],
]);
automation($node, 'escalating-mail', on_failure => q{'{"alert": {"channel": "email", "target": "boss@example.com"}}'}, steps => [
	['approval', 'task', '{"assignee": "approvers", "title": "mail {{ $.payload.n }}", "due": "2 hours"}'],
]);
# an on_failure task with a due time escalates to the on_failure alert's channel
automation($node, 'fails-late', on_failure => q{'{"task": {"assignee": "approvers", "title": "fix it", "due": "1 hour"}, "alert": {"channel": "ops-slack", "message": "it failed"}}'},
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}']]);
my $ef = q1($node, q{SELECT execlog.start('fails-late')});
ok(wait_status($node, $ef, "'failed'"), 'fails-late fails');
is(q1($node, "SELECT (due_at > now() + interval '50 minutes') || '|' || escalate::text || '|' || (step_position IS NULL) FROM execlog.tasks WHERE execution_id = $ef"),
	'true|{"channel": "ops-slack"}|true', 'an on_failure task with "due" gets a due time and the on_failure channel to escalate to');
my @esc = map { q1($node, "SELECT execlog.start('escalating', '{\"n\": $_}')") } 1 .. 20;
my $em = q1($node, q{SELECT execlog.start('escalating-mail', '{"n": 0}')});
ok(wait_status($node, $_, "'paused'"), "escalating execution $_ waits") for (@esc, $em);
is(q1($node, "SELECT count(*) FROM execlog.tasks t JOIN execlog.executions e ON e.id = t.execution_id JOIN execlog.automations a ON a.id = e.automation_id WHERE a.name LIKE 'escalating%' AND t.due_at > now() + interval '50 minutes' AND t.escalated_at IS NULL"),
	'21', 'tasks are due later and not escalated');
is(q1($node, "SELECT count(*) FROM execlog.alerts WHERE execution_id IN (" . join(',', @esc, $em) . ")"), '0',
	'no escalation before the due time');

my $pid = q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'execlog worker' ORDER BY pid LIMIT 1");
$node->safe_psql('postgres', "UPDATE execlog.tasks SET due_at = now() - interval '1 minute' WHERE execution_id IN (" . join(',', @esc, $em, $ef) . ")");
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 22 FROM execlog.tasks WHERE execution_id IN (" . join(',', @esc, $em, $ef) . ") AND escalated_at IS NOT NULL"),
	'every overdue task is escalated, after a crash restart of the workers');
# the workers keep passing through their loop: run one more execution through them
automation($node, 'ping', steps => [['one', 'sql', '{"query": "SELECT 1"}']]);
for my $i (1 .. 3)
{
	my $p = q1($node, "SELECT execlog.start('ping')");
	ok(wait_status($node, $p, "'success'"), "workers run executions after the escalation ($i)");
}
is(q1($node, "SELECT count(*) || '/' || count(DISTINCT execution_id) FROM execlog.alerts WHERE execution_id IN (" . join(',', @esc, $em) . ")"),
	'21/21', 'exactly one escalation alert per overdue task');
is(q1($node, "SELECT channel || '|' || target || '|' || message FROM execlog.alerts WHERE execution_id = $esc[0]"),
	'slack|ops-slack|task ' . task_of($esc[0]) . ' "urgent 1" assigned to approvers is overdue: it was due at '
	  . q1($node, "SELECT due_at FROM execlog.tasks WHERE execution_id = $esc[0]"),
	'the escalation alert goes to the step\'s escalate channel and names the task');
is(q1($node, "SELECT channel || '|' || target || '|' || (channel_id IS NULL) FROM execlog.alerts WHERE execution_id = $em"),
	'email|boss@example.com|true', 'without escalate, the on_failure alert channel (here an address) is used');
is(q1($node, "SELECT string_agg(message, ',' ORDER BY id) FROM execlog.alerts WHERE execution_id = $ef"),
	'it failed,task ' . q1($node, "SELECT id FROM execlog.tasks WHERE execution_id = $ef") . ' "fix it" assigned to approvers is overdue: it was due at '
	  . q1($node, "SELECT due_at FROM execlog.tasks WHERE execution_id = $ef"),
	'the overdue on_failure task escalates once, after the failure alert');
is(as_role('ops1', "SELECT bool_and(overdue) || '/' || count(*) FROM execlog.my_tasks WHERE title LIKE 'urgent%' OR title LIKE 'mail%'"),
	'true/21', 'my_tasks marks the escalated tasks overdue; they stay open');
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE id IN (" . join(',', @esc, $em) . ") AND status = 'paused'"),
	'21', 'the executions still wait for their tasks');

# ---- completing after the crash still resumes
as_role('ops1', "SELECT execlog.complete_task(" . task_of($esc[0]) . ", 'late', 'approve')");
ok(wait_status($node, $esc[0], "'success'"), 'a task completed after escalation and a crash resumes its execution');

# ---- cancel while waiting: the task is dismissed with it
$node->safe_psql('postgres', "SET ROLE ops1; SELECT execlog.cancel($esc[1])");
is(q1($node, "SELECT status || '|' || note FROM execlog.tasks WHERE execution_id = $esc[1]"),
	'dismissed|the execution was cancelled', 'cancelling a waiting execution dismisses its task');
is(q1($node, "SELECT status || '|' || error FROM execlog.execution_steps WHERE execution_id = $esc[1]"),
	'failed|cancelled', 'and ends its task step');

$node->stop;
done_testing();
