# A table-driven corpus of bad inputs: API arguments, definitions, payloads
# and misbehaving HTTP servers (test/raw_http_server.py).  Each row asserts
# its clear error (SQLSTATE and message) or its documented result; none may
# give an internal error (XX000, "SPI_... failed", "cache lookup failed", a
# raw "timestamp out of range") or take a worker down.  At the end both
# workers are the processes that started, none exited, and a canary
# execution succeeds.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($out, $err) = ('', '');
my $raw = IPC::Run::start(
	[ 'python3', "$ENV{TESTDIR}/raw_http_server.py" ],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout(3600));
$raw->pump until $out =~ /PORT (\d+)/;
my $port = $1;
my $base = "http://127.0.0.1:$port";

my $node = execlog_node('bad_inputs');
$node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'execlog worker'}) or die;
my $pids = q1($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'execlog worker'});

# fixtures: an automation that succeeds, one that pauses, one with a
# response step, one executed to success, one paused, a closed task
automation($node, 'ok', run_as => "'runner'", steps => [['one', 'sql', '{"query": "SELECT 1 AS one"}']]);
automation($node, 'waits', run_as => "'runner'", steps => [['wait', 'pause', '{}']]);
automation($node, 'answers', run_as => "'runner'", max_retries => 0,
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}'], ['r', 'response', '{"body": {"a": 1}}']]);
$node->safe_psql('postgres', q{CREATE TABLE public.plain (id int); CREATE VIEW public.v AS SELECT 1 AS one;
CREATE TEMP TABLE tmp (a int);});
my $done = q1($node, q{SELECT execlog.start('ok')});
my $paused = q1($node, q{SELECT execlog.start('waits')});
my $resp = q1($node, q{SELECT execlog.start('answers')});
ok(wait_status($node, $done, "'success'") && wait_status($node, $paused, "'paused'")
	&& wait_status($node, $resp, "'failed'"), 'fixtures are ready');
my $task = q1($node, qq{INSERT INTO execlog.tasks (execution_id, account_id, title, status, closed_at)
	VALUES ($done, 1, 't', 'done', now()) RETURNING id});

my $inputs = 0;

# ---- rows run as SQL: [what, statement, SQLSTATE (undef: accepted), regex
# for the error message, or for the result when accepted]
my $auto = "INSERT INTO execlog.automations (account_id, name, run_as";
my $step = "INSERT INTO execlog.steps (automation_id, position, name, kind, config";
my $ok_id = "(SELECT id FROM execlog.automations WHERE name = 'ok')";
my $big = 'x' x 100000;
my @sql = (
	# API arguments
	['start: NULL name', q{SELECT execlog.start(NULL::text)}, '22004', qr/^automation name must not be null$/],
	['start: NULL id', q{SELECT execlog.start(NULL::bigint)}, '22004', qr/^automation id must not be null$/],
	['start: unknown name', q{SELECT execlog.start('nope')}, '42704', qr/^automation "nope" does not exist$/],
	['start: empty name', q{SELECT execlog.start('')}, '42704', qr/^automation "" does not exist$/],
	['start: hostile name', qq{SELECT execlog.start(E'ok\\n''; DROP TABLE public.plain; --')}, '42704', qr/^automation "ok\n'; DROP TABLE public.plain; --" does not exist$/],
	['start: 100 kB name', qq{SELECT execlog.start('$big')}, '42704', qr/^automation "(?:x{50000}){2}" does not exist$/],
	['start: unknown account', q{SELECT execlog.start('ok', '{}', 'nope')}, '42704', qr/^automation "ok" does not exist in account "nope"$/],
	['start: negative id', q{SELECT execlog.start(-1)}, '42704', qr/^automation -1 does not exist$/],
	['start: max bigint id', q{SELECT execlog.start(9223372036854775807)}, '42704', qr/^automation 9223372036854775807 does not exist$/],
	['start: id out of range', q{SELECT execlog.start(9223372036854775808)}, '42883', qr/^function execlog\.start\(numeric\) does not exist$/],
	['start: wrong type', q{SELECT execlog.start(true)}, '42883', qr/^function execlog\.start\(boolean\) does not exist$/],
	['start: array payload', q{SELECT execlog.start('ok', '[]')}, '22023', qr/^payload must be a JSON object, not an array$/],
	['start: number payload', q{SELECT execlog.start('ok', '17')}, '22023', qr/^payload must be a JSON object, not a number$/],
	['start: string payload', q{SELECT execlog.start('ok', '"x"')}, '22023', qr/^payload must be a JSON object, not a string$/],
	['start: JSON null payload', q{SELECT execlog.start('ok', 'null')}, '22023', qr/^payload must be a JSON object, not null$/],
	['start: malformed JSON payload', q[SELECT execlog.start('ok', '{"a": ')], '22P02', qr/^invalid input syntax for type json$/],
	['start: NUL in payload', q{SELECT execlog.start('ok', '{"a": "\u0000"}')}, '22P05', qr/^unsupported Unicode escape sequence$/],
	['start: payload nested 100,000 deep', q{SELECT execlog.start('ok', ('{"a":' || repeat('[', 100000) || repeat(']', 100000) || '}')::jsonb)}, '54001', qr/^stack depth limit exceeded$/],
	['start: SQL NULL payload means {}', q{SELECT execlog.start('ok', NULL) AS id \gset
SELECT payload FROM execlog.executions WHERE id = :id}, undef, qr/^\{\}$/],
	['start: disabled automation', q{UPDATE execlog.automations SET enabled = false WHERE name = 'waits'; SELECT execlog.start('waits')}, '55000', qr/^automation "waits" is disabled$/],
	['retry: NULL', q{SELECT execlog.retry(NULL)}, '22004', qr/^execution id must not be null$/],
	['retry: unknown', q{SELECT execlog.retry(-5)}, '42704', qr/^execution -5 does not exist$/],
	['retry: max bigint', q{SELECT execlog.retry(9223372036854775807)}, '42704', qr/^execution 9223372036854775807 does not exist$/],
	['retry: text id', q{SELECT execlog.retry('abc')}, '22P02', qr/^invalid input syntax for type bigint: "abc"$/],
	['retry: a success', qq{SELECT execlog.retry($done)}, '55000', qr/^execution $done cannot be retried: its status is "success"$/],
	['retry: NULL from_start', qq{SELECT execlog.retry($done, NULL)}, '55000', qr/^execution $done cannot be retried: its status is "success"$/],
	['retry: a response step', qq{SELECT execlog.retry($resp)}, '55000', qr/^execution $resp cannot be retried: automation "answers" has a response step$/],
	['cancel: NULL', q{SELECT execlog.cancel(NULL)}, '22004', qr/^execution id must not be null$/],
	['cancel: unknown', q{SELECT execlog.cancel(0)}, '42704', qr/^execution 0 does not exist$/],
	['cancel: a success', qq{SELECT execlog.cancel($done)}, '55000', qr/^execution $done cannot be cancelled: its status is "success"$/],
	['resume: NULL', q{SELECT execlog.resume(NULL)}, '22004', qr/^execution id must not be null$/],
	['resume: unknown', q{SELECT execlog.resume(12345)}, '42704', qr/^execution 12345 does not exist$/],
	['resume: not paused', qq{SELECT execlog.resume($done)}, '55000', qr/^execution $done cannot be resumed: its status is "success"$/],
	['resume: array payload', qq{SELECT execlog.resume($paused, '[1]')}, '22023', qr/^payload must be a JSON object, not an array$/],
	['resume: scalar payload', qq{SELECT execlog.resume($paused, 'true')}, '22023', qr/^payload must be a JSON object, not a boolean$/],
	['complete_task: NULL', q{SELECT execlog.complete_task(NULL)}, '22004', qr/^task id must not be null$/],
	['complete_task: unknown', q{SELECT execlog.complete_task(777)}, '42704', qr/^task 777 does not exist$/],
	['complete_task: closed', qq{SELECT execlog.complete_task($task)}, '55000', qr/^task $task cannot be completed: its status is "done"$/],
	['prune: NULL', q{SELECT execlog.prune(NULL)}, '22023', qr/^older_than must be an interval of zero or more, not NULL$/],
	['prune: negative', q{SELECT execlog.prune('-1 hour')}, '22023', qr/^older_than must be an interval of zero or more, not -01:00:00$/],
	['prune: 1000000 years', q{SELECT execlog.prune('1000000 years')}, '22023', qr/^older_than must be at most 100 years, not 1000000 years$/],
	['prune: 100 years is allowed', q{SELECT execlog.prune('100 years')}, undef, qr/^0$/],
	['prune: not an interval', q{SELECT execlog.prune('soon')}, '22007', qr/^invalid input syntax for type interval: "soon"$/],
	['watch: NULL table', q{SELECT execlog.watch(NULL, 'ok')}, '22004', qr/^table must not be null$/],
	['watch: NULL automation', q{SELECT execlog.watch('public.plain', NULL)}, '22004', qr/^automation name must not be null$/],
	['watch: unknown table', q{SELECT execlog.watch('nosuchtable', 'ok')}, '42P01', qr/^relation "nosuchtable" does not exist$/],
	['watch: a catalog', q{SELECT execlog.watch('pg_class', 'ok')}, '42809', qr/^system catalog "pg_class" cannot be watched$/],
	['watch: execlog table', q{SELECT execlog.watch('execlog.executions', 'ok')}, '42809', qr/^table "executions" of execlog cannot be watched$/],
	['watch: a view', q{SELECT execlog.watch('public.v', 'ok')}, '42809', qr/^"v" is not a table$/],
	['watch: unknown automation', q{SELECT execlog.watch('public.plain', 'nope')}, '42704', qr/^automation "nope" does not exist$/],
	['watch: bad condition', q{SELECT execlog.watch('public.plain', 'ok', 'NEW.nope > 1')}, '42703', qr/^column new\.nope does not exist$/],
	['watch: condition with a statement', q{SELECT execlog.watch('public.plain', 'ok', 'true) EXECUTE FUNCTION pg_catalog.now(); --')}, '42601', qr/syntax error/],
	['unwatch: not watched', q{SELECT execlog.unwatch('public.plain', 'ok')}, '42704', qr/^automation "ok" does not watch table public\.plain$/],
	['schedule: no pg_cron', q{SELECT execlog.schedule('ok', '* * * * *')}, '0A000', qr/^schedules need the pg_cron extension in this database$/],
	['schedule: NULLs', q{SELECT execlog.schedule(NULL, NULL)}, '22004', qr/^automation name must not be null$/],
	['unschedule: none', q{SELECT execlog.unschedule('ok')}, '42704', qr/^automation "ok" has no schedule$/],
	['flatten: an array', q{SELECT execlog.flatten('[1]')}, '22023', qr/^cannot flatten a JSON array$/],
	['export_contexts: unknown schema', q{SELECT execlog.export_contexts('nosuch')}, '3F000', qr/^schema "nosuch" does not exist$/],
	['export_contexts: NULL schema', q{SELECT execlog.export_contexts(NULL)}, '22004', qr/^target schema must not be null$/],

	# automations
	['automation: empty name', "$auto) VALUES (1, '', 'runner')", '23514', qr/violates check constraint "automations_name_check"/],
	['automation: NULL name', "$auto) VALUES (1, NULL, 'runner')", '23502', qr/null value in column "name"/],
	['automation: unknown account', "$auto) VALUES (999, 'x', 'runner')", '23503', qr/violates foreign key constraint "automations_account_id_fkey"/],
	['automation: duplicate name', "$auto) VALUES (1, 'ok', 'runner')", '23505', qr/duplicate key value violates unique constraint "automations_account_id_name_key"/],
	['automation: unknown run_as', "$auto) VALUES (1, 'x', 'nosuchrole')", '42704', qr/^role "nosuchrole" does not exist$/],
	['automation: negative max_retries', "$auto, max_retries) VALUES (1, 'x', 'runner', -1)", '23514', qr/"automations_(max_retries_check|auto_retries_within_budget)"/],
	['automation: huge max_retries', "$auto, max_retries) VALUES (1, 'x', 'runner', 1000000)", '23514', qr/"automations_(max_retries_check|auto_retries_within_budget)"/],
	['automation: max_retries past integer', "$auto, max_retries) VALUES (1, 'x', 'runner', 2147483648)", '22003', qr/^integer out of range$/],
	['automation: time_limit 1000000 years', "$auto, time_limit) VALUES (1, 'x', 'runner', '1000000 years')", '23514', qr/"automations_time_limit_check"/],
	['automation: negative time_limit', "$auto, time_limit) VALUES (1, 'x', 'runner', '-1 hour')", '23514', qr/"automations_time_limit_check"/],
	['automation: zero time_limit', "$auto, time_limit) VALUES (1, 'x', 'runner', '0')", '23514', qr/"automations_time_limit_check"/],
	['automation: negative retry_delay', "$auto, retry_delay) VALUES (1, 'x', 'runner', '-1 second')", '23514', qr/"automations_retry_delay_check"/],
	['automation: retry_delay 1000 years', "$auto, retry_delay) VALUES (1, 'x', 'runner', '1000 years')", '23514', qr/"automations_retry_delay_check"/],
	['automation: zero throttle', "$auto, throttle) VALUES (1, 'x', 'runner', 0)", '23514', qr/"automations_throttle_check"/],
	['automation: negative throttle', "$auto, throttle) VALUES (1, 'x', 'runner', -3)", '23514', qr/"automations_throttle_check"/],
	['automation: negative auto_retries', "$auto, auto_retries) VALUES (1, 'x', 'runner', -1)", '23514', qr/"automations_auto_retries_check"/],
	['automation: auto_retries past max_retries', "$auto, auto_retries, max_retries) VALUES (1, 'x', 'runner', 5, 2)", '23514', qr/"automations_auto_retries_within_budget"/],
	['on_failure: an array', "$auto, on_failure) VALUES (1, 'x', 'runner', '[]')", '22023', qr/^on_failure of automation "x" must be a JSON object$/],
	['on_failure: a string', "$auto, on_failure) VALUES (1, 'x', 'runner', '\"alert\"')", '22023', qr/^on_failure of automation "x" must be a JSON object$/],
	['on_failure: unknown key', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"page\": {}}')", '22023', qr/^unknown key "page" in on_failure of automation "x"$/],
	['on_failure: unknown channel with target', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"alert\": {\"channel\": \"pigeon\", \"target\": \"x\"}}')", '22023', qr/^on_failure\.alert of automation "x" has a "target" but channel "pigeon" is not "email"$/],
	['on_failure: unknown channel', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"alert\": {\"channel\": \"pigeon\"}}')", '42704', qr/^channel "pigeon" of on_failure\.alert of automation "x" does not exist in its account$/],
	['on_failure: a URL', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"alert\": {\"channel\": \"slack\", \"target\": \"https://hooks.slack.com/x\"}}')", '22023', qr/^on_failure\.alert of automation "x" cannot hold a URL$/],
	['on_failure: bad address', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"alert\": {\"channel\": \"email\", \"target\": \"not an address\"}}')", '22023', qr/^on_failure\.alert\.target of automation "x" is not an e-mail address$/],
	['on_failure: alert a string', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"alert\": \"email\"}')", '22023', qr/^on_failure\.alert of automation "x" must be a JSON object$/],
	['on_failure: message an object', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"alert\": {\"channel\": \"email\", \"target\": \"a\@example.com\", \"message\": {}}}')", '22023', qr/^on_failure\.alert\.message of automation "x" must be a string$/],
	['on_failure: task key unknown', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"task\": {\"owner\": \"x\"}}')", '22023', qr/^unknown key "owner" in on_failure\.task of automation "x"$/],
	['on_failure: assignee a number', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"task\": {\"assignee\": 17}}')", '22023', qr/^on_failure\.task\.assignee of automation "x" must be a string$/],
	['on_failure: negative due', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"task\": {\"assignee\": \"ops\", \"due\": \"-1 hour\"}}')", '22023', qr/^on_failure\.task\.due of automation "x" must be positive$/],
	['on_failure: due 1000000 years', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"task\": {\"assignee\": \"ops\", \"due\": \"1000000 years\"}}')", '22023', qr/^on_failure\.task\.due of automation "x" must be at most 1 year, not 1000000 years$/],
	['on_failure: due not an interval', "$auto, on_failure) VALUES (1, 'x', 'runner', '{\"task\": {\"assignee\": \"ops\", \"due\": \"soon\"}}')", '22023', qr/^on_failure\.task\.due of automation "x" is not an interval$/],

	# steps
	['step: unknown kind', "$step) VALUES ($ok_id, 2, 'x', 'teleport', '{}')", '22023', qr/^unknown step kind "teleport"$/],
	['step: config an array', "$step) VALUES ($ok_id, 2, 'x', 'sql', '[]')", '22023', qr/^config of step "x" must be a JSON object$/],
	['step: malformed JSON', "$step) VALUES ($ok_id, 2, 'x', 'sql', '{not json}')", '22P02', qr/^invalid input syntax for type json$/],
	['step: NUL in config', "$step) VALUES ($ok_id, 2, 'x', 'sql', '{\"query\": \"SELECT 1\\u0000\"}')", '22P05', qr/^unsupported Unicode escape sequence$/],
	['step: unknown automation', "$step) VALUES (999, 2, 'x', 'sql', '{\"query\": \"SELECT 1\"}')", '23503', qr/"steps_automation_id_fkey"/],
	['step: position 0', "$step) VALUES ($ok_id, 0, 'x', 'sql', '{\"query\": \"SELECT 1\"}')", '23514', qr/"steps_position_check"/],
	['step: negative position', "$step) VALUES ($ok_id, -1, 'x', 'sql', '{\"query\": \"SELECT 1\"}')", '23514', qr/"steps_position_check"/],
	['step: duplicate position', "$step) VALUES ($ok_id, 1, 'x', 'sql', '{\"query\": \"SELECT 1\"}')", '23505', qr/"steps_automation_id_position_key"/],
	['step: duplicate name', "$step) VALUES ($ok_id, 2, 'one', 'sql', '{\"query\": \"SELECT 1\"}')", '23505', qr/"steps_automation_id_name_key"/],
	['step: empty name', "$step) VALUES ($ok_id, 2, '', 'sql', '{\"query\": \"SELECT 1\"}')", '23514', qr/"steps_name_check"/],
	['step: bad on_error', "$step, on_error) VALUES ($ok_id, 2, 'x', 'sql', '{\"query\": \"SELECT 1\"}', 'explode')", '22023', qr/^on_error of step "x" must be "stop" or "continue", not "explode"$/],
	['step: bad condition', "$step, condition) VALUES ($ok_id, 2, 'x', 'sql', '{\"query\": \"SELECT 1\"}', '\$\$\$')", '42601', qr/^syntax error at or near "\$" of jsonpath input$/],
	['sql step: no query', "$step) VALUES ($ok_id, 2, 'x', 'sql', '{}')", '22023', qr/^sql step "x" needs a "query" string in its config$/],
	['sql step: query a number', "$step) VALUES ($ok_id, 2, 'x', 'sql', '{\"query\": 17}')", '22023', qr/^sql step "x" needs a "query" string in its config$/],
	['sql step: args a string', "$step) VALUES ($ok_id, 2, 'x', 'sql', '{\"query\": \"SELECT \$1\", \"args\": \"a\"}')", '22023', qr/^"args" of sql step "x" must be an array$/],
	['sql step: placeholder in query', "$step) VALUES ($ok_id, 2, 'x', 'sql', '{\"query\": \"SELECT {{ \$.payload.x }}\"}')", '22023', qr/^placeholders are not allowed in the query of sql step "x"$/],
	['http step: no url', "$step) VALUES ($ok_id, 2, 'x', 'http', '{}')", '22023', qr/^http step "x" needs a "url" or a "connection" in its config$/],
	['http step: url a number', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": 17}')", '22023', qr/^http step "x" needs a "url" or a "connection" in its config$/],
	['http step: CONNECT', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"method\": \"CONNECT\"}')", '22023', qr/^HTTP method "CONNECT" is not allowed in step "x"$/],
	['http step: TRACE', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"method\": \"TRACE\"}')", '22023', qr/^HTTP method "TRACE" is not allowed in step "x"$/],
	['http step: method with a space', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"method\": \"GE T\"}')", '22023', qr/^invalid HTTP method in step "x"$/],
	['http step: method a number', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"method\": 5}')", '22023', qr/^invalid HTTP method in step "x"$/],
	['http step: method a placeholder', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"method\": \"{{ \$.payload.m }}\"}')", '22023', qr/^invalid HTTP method in step "x"$/],
	['http step: headers an array', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"headers\": []}')", '22023', qr/^"headers" of http step "x" must be an object$/],
	['http step: expect a number', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"expect\": 200}')", '22023', qr/^"expect" of http step "x" must be an array of status codes$/],
	['http step: timeout not an interval', "$step) VALUES ($ok_id, 2, 'x', 'http', '{\"url\": \"http://x/\", \"timeout\": \"soon\"}')", '22023', qr/^"timeout" of http step "x" must be an interval, such as "5 seconds"$/],
	['pause step: for not an interval', "$step) VALUES ($ok_id, 2, 'x', 'pause', '{\"for\": \"soon\"}')", '22023', qr/^"for" of pause step "x" must be an interval, such as "10 minutes"$/],
	['pause step: for a placeholder', "$step) VALUES ($ok_id, 2, 'x', 'pause', '{\"for\": \"{{ \$.payload.d }}\"}')", '22023', qr/^"for" of pause step "x" must be an interval, such as "10 minutes"$/],
	['pause step: negative for', "$step) VALUES ($ok_id, 2, 'x', 'pause', '{\"for\": \"-1 hour\"}')", '22023', qr/^"for" of pause step "x" must be between 0 and 1 year, not -1 hour$/],
	['pause step: for 1000000 years', "$step) VALUES ($ok_id, 2, 'x', 'pause', '{\"for\": \"1000000 years\"}')", '22023', qr/^"for" of pause step "x" must be between 0 and 1 year, not 1000000 years$/],
	['feedback step: no fields', "$step) VALUES ($ok_id, 2, 'x', 'feedback', '{}')", '22023', qr/^feedback step "x" needs a "fields" object in its config$/],
	['feedback step: fields an array', "$step) VALUES ($ok_id, 2, 'x', 'feedback', '{\"fields\": []}')", '22023', qr/^feedback step "x" needs a "fields" object in its config$/],
	['feedback step: empty key', "$step) VALUES ($ok_id, 2, 'x', 'feedback', '{\"fields\": {}, \"key\": \"\"}')", '22023', qr/^"key" of feedback step "x" must be a non-empty string, not ""$/],
	['feedback step: key a number', "$step) VALUES ($ok_id, 2, 'x', 'feedback', '{\"fields\": {}, \"key\": 17}')", '22023', qr/^"key" of feedback step "x" must be a non-empty string, not 17$/],

	# triggers
	['trigger: unknown kind', "INSERT INTO execlog.triggers (automation_id, kind) VALUES ($ok_id, 'telepathy')", '23514', qr/"triggers_kind_check"/],
	['trigger: second manual', "INSERT INTO execlog.triggers (automation_id, kind) VALUES ($ok_id, 'manual')", '23505', qr/"triggers_one_manual"/],
	['trigger: config an array', "INSERT INTO execlog.triggers (automation_id, kind, config) VALUES ($ok_id, 'api', '[]')", '23514', qr/"triggers_config_check"/],
	['trigger: unknown automation', "INSERT INTO execlog.triggers (automation_id, kind) VALUES (999, 'api')", '23503', qr/"triggers_automation_id_fkey"/],
	['trigger: manual changes kind', "UPDATE execlog.triggers SET kind = 'api' WHERE automation_id = $ok_id AND kind = 'manual'", '55000', qr/^the manual trigger of an automation cannot change its kind$/],
	['trigger: manual deleted', "DELETE FROM execlog.triggers WHERE automation_id = $ok_id AND kind = 'manual'", '55000', qr/^the manual trigger of an automation cannot be deleted$/],

	# connections and channels
	['connection: ftp URL', "INSERT INTO execlog.connections (account_id, name, base_url) VALUES (1, 'c', 'ftp://x')", '23514', qr/"connections_base_url_check"/],
	['connection: URL without host', "INSERT INTO execlog.connections (account_id, name, base_url) VALUES (1, 'c', 'http://')", '23514', qr/"connections_base_url_check"/],
	['connection: auth an array', "INSERT INTO execlog.connections (account_id, name, base_url, auth) VALUES (1, 'c', 'http://x', '[]')", '23514', qr/"connections_auth_check"/],
	['channel: unknown kind', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'pigeon', '{}')", '22023', qr/^unknown channel kind "pigeon"$/],
	['channel: slack without url', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'slack', '{}')", '22023', qr/^slack channel "ch" needs "url": an http or https URL$/],
	['channel: slack file URL', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'slack', '{\"url\": \"file:///etc/passwd\"}')", '22023', qr/^slack channel "ch" needs "url": an http or https URL$/],
	['channel: email to a string', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'email', '{\"to\": \"ops\@example.com\"}')", '22023', qr/^e-mail channel "ch" needs "to": a non-empty array of addresses$/],
	['channel: email bad address', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'email', '{\"to\": [\"nope\"]}')", '22023', qr/^element 1 of "to" of e-mail channel "ch" is not an e-mail address$/],
	['channel: email no address', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'email', '{\"to\": []}')", '22023', qr/^e-mail channel "ch" needs "to": a non-empty array of addresses$/],
	['channel: webhook header with newline', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'webhook', '{\"url\": \"http://x\", \"headers\": {\"A\": \"b\\nc\"}}')", '22023', qr/^header "A" of webhook channel "ch" is not a valid header$/],
	['channel: webhook secret a number', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'webhook', '{\"url\": \"http://x\", \"secret\": 17}')", '22023', qr/^"secret" of webhook channel "ch" must be a non-empty string$/],
	['channel: config an array', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'teams', '[]')", '22023', qr/^config of channel "ch" must be a JSON object$/],
	['channel: config NULL', "INSERT INTO execlog.channels (account_id, name, kind, config) VALUES (1, 'ch', 'teams', NULL)", '22023', qr/^config of channel "ch" must be a JSON object$/],
);

my $internal = qr/SPI_\w+ failed|cache lookup failed|timestamp out of range|unrecognized|unexpected/;
for my $row (@sql)
{
	my ($what, $stmt, $state, $re) = @$row;
	my ($rc, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\n$stmt",
		extra_params => ['-v', 'ON_ERROR_STOP=1']);
	$inputs++;
	if (!defined $state)
	{
		is($rc, 0, "$what: accepted") or diag($stderr);
		like($stdout, $re, "$what: documented result");
		next;
	}
	my ($got, $msg) = $stderr =~ /ERROR:  ([0-9A-Z]{5}): ([^\n]*(?:\n(?!(?:DETAIL|HINT|LOCATION|CONTEXT|SCHEMA|TABLE|COLUMN|CONSTRAINT|LINE|psql|QUERY)\b)[^\n]*)*)/;
	if (!defined $got)
	{
		fail("$what: refused") or diag("rc $rc, stdout: $stdout, stderr: $stderr");
		next;
	}
	is($got, $state, "$what: SQLSTATE $state") or diag($msg);
	like($msg, $re, "$what: message");
	unlike($msg, $internal, "$what: not an internal error");
}

# ---- rows that a worker runs: [what, kind, config, payload, status, regex
# for the execution's error (undef: none)]; each gets an automation of one
# step and no retry.
$node->safe_psql('postgres', q{
CREATE TABLE public.fx (id int);
GRANT ALL ON public.fx TO runner;
CREATE PROCEDURE public.committer() LANGUAGE plpgsql AS $$BEGIN COMMIT; END$$;
CREATE FUNCTION public.rec(n int) RETURNS int LANGUAGE plpgsql AS $$BEGIN RETURN public.rec(n - 1); END$$;
INSERT INTO execlog.connections (account_id, name, base_url, auth) VALUES
  (1, 'c_kerberos', 'http://127.0.0.1:9', '{"type": "kerberos"}'),
  (1, 'c_notoken', 'http://127.0.0.1:9', '{"type": "bearer"}'),
  (1, 'c_tokennum', 'http://127.0.0.1:9', '{"type": "bearer", "token": 17}'),
  (1, 'c_nopass', 'http://127.0.0.1:9', '{"type": "basic", "username": "u"}'),
  (1, 'c_nourl', 'http://127.0.0.1:9', '{"type": "oauth2_client_credentials"}'),
  (1, 'c_fileurl', 'http://127.0.0.1:9', '{"type": "oauth2_client_credentials", "token_url": "file:///x", "client_id": "a", "client_secret": "b"}'),
  (1, 'c_newline', E'http://127.0.0.1:9\n/', NULL);
});
my $dead = 'http://127.0.0.1:9';
my $s = qr/^step "st" failed: /;
my @run = (
	# sql steps
	['sql: COMMIT', 'sql', '{"query": "COMMIT"}', '{}', 'failed', qr/${s}an sql step cannot control transactions$/],
	['sql: SAVEPOINT', 'sql', '{"query": "SAVEPOINT a"}', '{}', 'failed', qr/${s}an sql step cannot control transactions$/],
	['sql: division by zero', 'sql', '{"query": "SELECT 1/0"}', '{}', 'failed', qr/${s}division by zero$/],
	['sql: syntax error', 'sql', '{"query": "SELEC 1"}', '{}', 'failed', qr/${s}syntax error at or near "SELEC"$/],
	['sql: unknown table', 'sql', '{"query": "SELECT * FROM public.nope"}', '{}', 'failed', qr/${s}relation "public\.nope" does not exist$/],
	['sql: arg of the wrong type', 'sql', '{"query": "SELECT $1::int", "args": ["abc"]}', '{}', 'failed', qr/${s}invalid input syntax for type integer: "abc"$/],
	['sql: object arg for an integer', 'sql', '{"query": "SELECT $1::int", "args": [{"a": 1}]}', '{}', 'failed', qr/${s}invalid input syntax for type integer/],
	['sql: a parameter past the args', 'sql', '{"query": "SELECT $1::int + $2::int", "args": [1]}', '{}', 'failed', qr/${s}query of sql step "st" uses \$2, but "args" has 1 value$/],
	['sql: a parameter and no args', 'sql', '{"query": "SELECT $1::text"}', '{}', 'failed', qr/${s}query of sql step "st" uses \$1, but "args" has 0 values$/],
	['sql: COPY from the client', 'sql', '{"query": "COPY public.fx FROM STDIN"}', '{}', 'failed', qr/${s}an sql step cannot run COPY to or from the client$/],
	['sql: COPY from a program', 'sql', q{{"query": "COPY public.fx FROM PROGRAM 'id'"}}, '{}', 'failed', qr/${s}must be superuser or have privileges of the pg_execute_server_program role/],
	['sql: VACUUM', 'sql', '{"query": "VACUUM public.fx"}', '{}', 'failed', qr/${s}VACUUM cannot run inside a transaction block$/],
	['sql: SET ROLE', 'sql', '{"query": "SET ROLE postgres"}', '{}', 'failed', qr/${s}cannot set parameter "role" within security-definer function$/],
	['sql: RESET SESSION AUTHORIZATION', 'sql', '{"query": "RESET SESSION AUTHORIZATION"}', '{}', 'failed', qr/${s}cannot set parameter "session_authorization"/],
	['sql: PREPARE', 'sql', '{"query": "PREPARE p AS SELECT 1"}', '{}', 'failed', qr/${s}cannot execute PREPARE within security-restricted operation$/],
	['sql: LISTEN', 'sql', '{"query": "LISTEN x"}', '{}', 'failed', qr/${s}cannot execute LISTEN within security-restricted operation$/],
	['sql: temporary table', 'sql', '{"query": "CREATE TEMP TABLE t1 (a int)"}', '{}', 'failed', qr/${s}cannot create temporary table within security-restricted operation$/],
	['sql: placeholder matching nothing', 'sql', '{"query": "SELECT $1::text", "args": ["{{ $.payload.nope }}"]}', '{}', 'failed', qr/${s}placeholder "\{\{ \$\.payload\.nope \}\}" matched nothing$/],
	['sql: placeholder not jsonpath', 'sql', '{"query": "SELECT $1::text", "args": ["{{ $$$ }}"]}', '{}', 'failed', qr/${s}could not resolve placeholder "\{\{ \$\$\$ \}\}": syntax error/],
	['sql: unclosed placeholder is text', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $.payload.x"]}', '{}', 'success', undef],
	['sql: empty query gives no rows', 'sql', '{"query": ""}', '{}', 'success', undef],
	['sql: two statements give the last result', 'sql', '{"query": "SELECT 1; SELECT 2"}', '{}', 'success', undef],
	['sql: a 300 MB value is stored truncated', 'sql', q{{"query": "SELECT repeat('x', 300000000) AS big"}}, '{}', 'success', undef],
	['sql: a 5 MB placeholder argument', 'sql', '{"query": "SELECT length($1::text) AS n", "args": ["{{ $.payload.big }}"]}',
		'{"big": "' . ('y' x 5000000) . '"}', 'success', undef],
	['sql: a 50 MB payload', 'sql', '{"query": "SELECT 1 AS one"}', '{"big": "' . ('z' x 50000000) . '"}', 'success', undef],
	['sql: a payload nested 5,000 deep', 'sql', '{"query": "SELECT length($1::text) AS n", "args": ["{{ $.payload }}"]}',
		'{"a": ' . ('[' x 5000) . (']' x 5000) . '}', 'success', undef],
	['sql: hostile argument text', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $.payload.v }}"]}',
		q<{"v": "'); DROP TABLE public.fx; --\n\"quoted\""}>, 'success', undef],
	# feedback and response steps
	['feedback: key made empty by a placeholder', 'feedback', '{"fields": {"a": 1}, "key": "{{ $.payload.k }}"}', '{"k": ""}', 'failed', qr/${s}"key" of a feedback step must not be empty$/],
	['feedback: key made a number by a placeholder', 'feedback', '{"fields": {"a": 1}, "key": "{{ $.payload.k }}"}', '{"k": 17}', 'failed', qr/${s}"key" of a feedback step must be a string$/],
	['response: placeholder matching nothing', 'response', '{"body": "{{ $.payload.nope }}"}', '{}', 'failed', qr/${s}placeholder "\{\{ \$\.payload\.nope \}\}" matched nothing$/],
	# http configs that only the run can judge
	['http: negative timeout', 'http', qq{{"url": "$dead/", "timeout": "-5 seconds"}}, '{}', 'failed', qr/${s}"timeout" of http step "st" must be positive$/],
	['http: timeout 1000000 years is capped', 'http', qq{{"url": "$dead/", "timeout": "1000000 years"}}, '{}', 'failed', qr/${s}could not connect to 127\.0\.0\.1:9: Connection refused$/],
	['http: file URL', 'http', '{"url": "file:///etc/passwd"}', '{}', 'failed', qr/${s}URL scheme "file" is not allowed in http step "st"$/],
	['http: gopher URL from a placeholder', 'http', '{"url": "{{ $.payload.u }}"}', '{"u": "gopher://x/"}', 'failed', qr/${s}URL scheme "gopher" is not allowed in http step "st"$/],
	['http: not a URL', 'http', '{"url": "not a url"}', '{}', 'failed', qr/${s}invalid URL "not a url" in http step "st"$/],
	['http: CR/LF in a header', 'http', qq{{"url": "$dead/", "headers": {"X-A": "a\\r\\nInjected: 1"}}}, '{}', 'failed', qr/${s}value of header "X-A" in http step "st" contains a line break$/],
	['http: header name with a space', 'http', qq{{"url": "$dead/", "headers": {"Bad Name": "a"}}}, '{}', 'failed', qr/${s}invalid header name "Bad Name" in http step "st"$/],
	['http: expect a string', 'http', qq{{"url": "$dead/", "expect": ["ok"]}}, '{}', 'failed', qr/${s}"expect" of http step "st" must list HTTP status codes \(100 to 599\)$/],
	['http: expect 99999', 'http', qq{{"url": "$dead/", "expect": [99999]}}, '{}', 'failed', qr/${s}"expect" of http step "st" must list HTTP status codes \(100 to 599\)$/],
	['http: unknown connection', 'http', '{"connection": "nope", "path": "/x"}', '{}', 'failed', qr/${s}connection "nope" does not exist$/],
	['http: unknown auth type', 'http', '{"connection": "c_kerberos", "path": "/x"}', '{}', 'failed', qr/${s}unknown auth type "kerberos" of connection "c_kerberos"$/],
	['http: bearer without token', 'http', '{"connection": "c_notoken", "path": "/x"}', '{}', 'failed', qr/${s}auth of connection "c_notoken" needs a "token" string$/],
	['http: bearer token a number', 'http', '{"connection": "c_tokennum", "path": "/x"}', '{}', 'failed', qr/${s}auth of connection "c_tokennum" needs a "token" string$/],
	['http: basic without password', 'http', '{"connection": "c_nopass", "path": "/x"}', '{}', 'failed', qr/${s}auth of connection "c_nopass" needs a "password" string$/],
	['http: oauth2 without token_url', 'http', '{"connection": "c_nourl", "path": "/x"}', '{}', 'failed', qr/${s}auth of connection "c_nourl" needs a "token_url" string$/],
	['http: oauth2 file token_url', 'http', '{"connection": "c_fileurl", "path": "/x"}', '{}', 'failed', qr/${s}URL scheme "file" is not allowed in http step "st"$/],
	['http: base_url with a newline', 'http', '{"connection": "c_newline", "path": "/x"}', '{}', 'failed', qr/${s}invalid URL "http:\/\/127\.0\.0\.1:9\n\/x" in http step "st"$/],
	# misbehaving HTTP servers
	['server: bad status line', 'http', qq{{"url": "$base/bad-status"}}, '{}', 'failed', qr/${s}invalid HTTP response from 127\.0\.0\.1:$port$/],
	['server: HTTP/0.9 answer', 'http', qq{{"url": "$base/http09"}}, '{}', 'failed', qr/${s}invalid HTTP response from 127\.0\.0\.1:$port$/],
	['server: 1 MB header line', 'http', qq{{"url": "$base/huge-header"}}, '{}', 'failed', qr/${s}header too large in the response from 127\.0\.0\.1:$port$/],
	['server: 20,000 header lines', 'http', qq{{"url": "$base/many-headers"}}, '{}', 'failed', qr/${s}request to 127\.0\.0\.1:$port failed: Too large response headers/],
	['server: NUL in a header', 'http', qq{{"url": "$base/nul-header"}}, '{}', 'failed', qr/${s}invalid HTTP response from 127\.0\.0\.1:$port$/],
	['server: slow drip', 'http', qq{{"url": "$base/drip", "timeout": "3 seconds"}}, '{}', 'failed', qr/${s}timed out after 3000 ms$/],
	['server: connection reset', 'http', qq{{"url": "$base/reset"}}, '{}', 'failed', qr/${s}request to 127\.0\.0\.1:$port failed: Recv failure: Connection reset by peer$/],
	['server: closes without answering', 'http', qq{{"url": "$base/empty"}}, '{}', 'failed', qr/${s}127\.0\.0\.1:$port closed the connection without answering$/],
	['server: invalid chunked encoding', 'http', qq{{"url": "$base/bad-chunked"}}, '{}', 'failed', qr/${s}request to 127\.0\.0\.1:$port failed: Illegal or missing hexadecimal sequence in chunked-encoding$/],
	['server: body shorter than Content-Length', 'http', qq{{"url": "$base/short-body"}}, '{}', 'failed', qr/${s}request to 127\.0\.0\.1:$port failed: transfer closed with 995 bytes remaining to read$/],
	['server: Content-Length not a number', 'http', qq{{"url": "$base/bad-length"}}, '{}', 'failed', qr/${s}invalid HTTP response from 127\.0\.0\.1:$port$/],
	['server: body longer than Content-Length is cut', 'http', qq{{"url": "$base/long-body"}}, '{}', 'success', undef],
	['server: redirect to file://', 'http', qq{{"url": "$base/redirect-file"}}, '{}', 'failed', qr/${s}redirect to "file:\/\/\/etc\/passwd" refused: only http and https URLs can be fetched$/],
	['server: endless redirects', 'http', qq{{"url": "$base/redirect-loop"}}, '{}', 'failed', qr/${s}too many redirects \(more than 5\)$/],
	['server: status 999', 'http', qq{{"url": "$base/status-999"}}, '{}', 'failed', qr/${s}999 Odd$/],
	['server: invalid UTF-8 body', 'http', qq{{"url": "$base/not-utf8"}}, '{}', 'success', undef],
	['server: gzip that is not', 'http', qq{{"url": "$base/gzip-lie"}}, '{}', 'success', undef],
	['server: JSON that is not', 'http', qq{{"url": "$base/json-lie"}}, '{}', 'success', undef],
	['server: nobody listening', 'http', qq{{"url": "$dead/"}}, '{}', 'failed', qr/${s}could not connect to 127\.0\.0\.1:9: Connection refused$/],
	# conditions, placeholders and odd values: [..., output regex, condition]
	['condition raising a jsonpath error is unknown: skipped', 'sql', '{"query": "SELECT 1 AS one"}', '{"a": "abc"}', 'success', undef, qr/^$/, '$.payload.a.double() > 1'],
	['strict condition on a missing key is unknown: skipped', 'sql', '{"query": "SELECT 1 AS one"}', '{}', 'success', undef, qr/^$/, 'strict $.payload.nope > 1'],
	['condition that is no predicate', 'sql', '{"query": "SELECT 1 AS one"}', '{"a": 1}', 'failed', qr/${s}single boolean result is expected$/, undef, '$.payload.a'],
	['placeholder raising a jsonpath error', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $.payload.a.double() }}"]}', '{"a": "abc"}', 'failed', qr/${s}could not resolve placeholder "\{\{ \$\.payload\.a\.double\(\) \}\}": string argument of jsonpath item method \.double\(\) is not a valid representation of a double precision number$/],
	['strict placeholder on a missing key', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ strict $.payload.nope }}"]}', '{}', 'failed', qr/${s}could not resolve placeholder "\{\{ strict \$\.payload\.nope \}\}": JSON object does not contain key "nope"$/],
	['placeholder inside a placeholder', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ {{ $.payload.a }} }}"]}', '{"a": 1}', 'failed', qr/${s}could not resolve placeholder "\{\{ \{\{ \$\.payload\.a \}\}": syntax error/],
	['placeholder with an unknown variable', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $x }}"]}', '{}', 'failed', qr/${s}could not resolve placeholder "\{\{ \$x \}\}": could not find jsonpath variable "x"$/],
	['placeholder with an invalid date', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $.payload.a.datetime() }}"]}', '{"a": "2020-13-45"}', 'failed', qr/${s}could not resolve placeholder .*datetime format is not recognized/],
	['placeholder matching several values gives the first', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $.payload.a[*] }}"]}', '{"a": [7, 8, 9]}', 'success', undef, qr/^\[\{"v": "7"\}\]$/],
	['placeholder JSON null binds SQL NULL', 'sql', '{"query": "SELECT $1::text IS NULL AS v", "args": ["{{ $.payload.a }}"]}', '{"a": null}', 'success', undef, qr/^\[\{"v": true\}\]$/],
	['feedback field matching nothing', 'feedback', '{"fields": {"x": "{{ $.payload.nope }}"}}', '{}', 'failed', qr/${s}placeholder "\{\{ \$\.payload\.nope \}\}" matched nothing$/],
	['argument past integer', 'sql', '{"query": "SELECT $1::int AS v", "args": [99999999999999999999]}', '{}', 'failed', qr/${s}value "99999999999999999999" is out of range for type integer$/],
	['JSON array for an SQL array', 'sql', '{"query": "SELECT $1::int[] AS v", "args": [[1, 2]]}', '{}', 'failed', qr/${s}malformed array literal: "\[1, 2\]"$/],
	['boolean for an integer', 'sql', '{"query": "SELECT $1::int AS v", "args": [true]}', '{}', 'failed', qr/${s}invalid input syntax for type integer: "true"$/],
	['NaN, infinities and bytea in the rows', 'sql', q{{"query": "SELECT 'NaN'::float8 AS n, 'infinity'::timestamptz AS t, '\\\\x00ff'::bytea AS b"}}, '{}', 'success', undef, qr/^\[\{"b": "\\\\x00ff", "n": "NaN", "t": "infinity"\}\]$/],
	['two columns of one name keep the last', 'sql', '{"query": "SELECT 1 AS a, 2 AS a"}', '{}', 'success', undef, qr/^\[\{"a": 2\}\]$/],
	['RAISE with SQLSTATE XX000 is the step\'s own error', 'sql', q{{"query": "DO $$BEGIN RAISE EXCEPTION 'custom %', 1 USING ERRCODE = 'XX000'; END$$"}}, '{}', 'failed', qr/${s}custom 1$/],
	['terminating its own worker', 'sql', '{"query": "SELECT pg_terminate_backend(pg_backend_pid())"}', '{}', 'failed', qr/${s}must be a superuser to terminate superuser process$/],
	['cancelling its own worker', 'sql', '{"query": "SELECT pg_cancel_backend(pg_backend_pid())"}', '{}', 'failed', qr/${s}must be a superuser to cancel superuser query$/],
	['a procedure that commits', 'sql', '{"query": "CALL public.committer()"}', '{}', 'failed', qr/${s}invalid transaction termination$/],
	['infinite recursion', 'sql', '{"query": "SELECT public.rec(1000000)"}', '{}', 'failed', qr/${s}stack depth limit exceeded$/],
	['SET TRANSACTION ISOLATION LEVEL', 'sql', '{"query": "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"}', '{}', 'failed', qr/${s}SET TRANSACTION ISOLATION LEVEL must be called before any query$/],
	['DISCARD ALL', 'sql', '{"query": "DISCARD ALL"}', '{}', 'failed', qr/${s}cannot execute DISCARD within security-restricted operation$/],
	['a cursor WITH HOLD', 'sql', '{"query": "DECLARE c CURSOR WITH HOLD FOR SELECT 1"}', '{}', 'failed', qr/${s}cannot create a cursor WITH HOLD within security-restricted operation$/],
	['LOAD', 'sql', q{{"query": "LOAD 'plpgsql'"}}, '{}', 'failed', qr/${s}access to library "plpgsql" is not allowed$/],
	['DROP ROLE of its own role', 'sql', '{"query": "DROP ROLE runner"}', '{}', 'failed', qr/${s}permission denied to drop role$/],
	['ALTER SYSTEM', 'sql', q{{"query": "ALTER SYSTEM SET work_mem = '1MB'"}}, '{}', 'failed', qr/${s}ALTER SYSTEM cannot run inside a transaction block$/],
	['CREATE DATABASE', 'sql', '{"query": "CREATE DATABASE x"}', '{}', 'failed', qr/${s}CREATE DATABASE cannot run inside a transaction block$/],
	['set_config of search_path in a step', 'sql', q{{"query": "SELECT set_config('search_path', 'evil', false) AS v"}}, '{}', 'success', undef, qr/^\[\{"v": "evil"\}\]$/],
);

my %exec;
my $n = 0;
for my $row (@run)
{
	my ($what, $kind, $config, $payload, $status, $re, $out_re, $condition) = @$row;
	$n++;
	my $name = "run$n";
	automation($node, $name, run_as => "'runner'", max_retries => 0,
		steps => [['st', $kind, $config, 'stop', $condition]]);
	# the payload goes through a file: it may be 50 MB
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/payload$n.json";
	open(my $fh, '>', $file) or die;
	print $fh $payload;
	close $fh;
	my ($rc, $id, $stderr) = $node->psql('postgres',
		"SELECT execlog.start('$name', pg_catalog.convert_from(pg_catalog.pg_read_binary_file('$file'), 'UTF8')::jsonb)");
	die "$what: $stderr" if $rc != 0;
	unlink $file;
	$exec{$name} = $id;
}
for my $i (1 .. $n)
{
	my ($what, $kind, $config, $payload, $status, $re, $out_re) = @{ $run[ $i - 1 ] };
	my $id = $exec{"run$i"};
	$inputs++;
	ok(wait_status($node, $id, "'success','failed','partially_executed','rejected','cancelled'"), "$what: finishes");
	my ($got, $error) = split /\|/, q1($node, "SELECT status || '|' || coalesce(error, '') FROM execlog.executions WHERE id = $id"), 2;
	is($got, $status, "$what: $status");
	if (defined $re)
	{
		like($error, $re, "$what: error");
		unlike($error, $internal, "$what: not an internal error");
	}
	else
	{
		is($error, '', "$what: no error");
	}
	if (defined $out_re)
	{
		like(q1($node, "SELECT coalesce(output::text, '') FROM execlog.execution_steps WHERE execution_id = $id AND position = 1"),
			$out_re, "$what: output");
	}
}

# documented results of the accepted rows
my %id_of = map { $run[ $_ - 1 ][0] => $exec{"run$_"} } 1 .. $n;
my %output = map { $_ => q1($node,
	"SELECT output::text FROM execlog.execution_steps WHERE execution_id = $id_of{$_} AND position = 1") } keys %id_of;
is($output{'sql: unclosed placeholder is text'}, '[{"v": "{{ $.payload.x"}]', 'an unclosed placeholder is kept as text');
is($output{'sql: empty query gives no rows'}, '[]', 'an empty query gives no rows');
is($output{'sql: two statements give the last result'}, '[{"?column?": 2}]', 'two statements give the result of the last');
like($output{'sql: a 300 MB value is stored truncated'}, qr/"rows": 1, "bytes": 300000\d+, "rows_kept": 0, "execlog_truncated": true/,
	'a 300 MB value is stored as the truncation marker');
is($output{'sql: a 5 MB placeholder argument'}, '[{"n": 5000000}]', 'the step gets the whole 5 MB argument');
is($output{'sql: hostile argument text'}, q<[{"v": "'); DROP TABLE public.fx; --\n\"quoted\""}]>, 'hostile text is a value, not SQL');
is($output{'server: body longer than Content-Length is cut'} =~ /"body": "yyyyy"/ ? 1 : 0, 1, 'a body longer than its Content-Length is cut there');
like($output{'server: invalid UTF-8 body'}, qr/"body": \{"data": "Y2Fm6SD\/\/g==", "encoding": "base64"\}/, 'an invalid UTF-8 body is kept as base64');
like($output{'server: gzip that is not'}, qr/"body": "not gzip at all"/, 'a body wrongly said to be gzip is kept as sent');
like($output{'server: JSON that is not'}, qr/"body": "\{oops"/, 'a body wrongly said to be JSON is kept as text');
is(q1($node, q{SELECT count(*) FROM public.fx}), '0', 'public.fx was not dropped');
my $big_input = q1($node, "SELECT input->>'execlog_truncated' FROM execlog.execution_steps WHERE execution_id = $id_of{'sql: a 5 MB placeholder argument'}");
is($big_input, 'true', 'the 5 MB resolved input is stored truncated');
is(q1($node, "SELECT length(payload->>'big') FROM execlog.executions WHERE id = $id_of{'sql: a 50 MB payload'}"), '50000000',
	'a 50 MB trigger payload is kept whole (it is the execution\'s input)');

# hostile names all the way through
$node->safe_psql('postgres', q{
INSERT INTO execlog.automations (account_id, name, run_as) VALUES (1, E'ev"il\n''name', 'runner');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, E'st"ep\n''x', 'sql', '{"query": "SELECT $1::text AS v", "args": ["{{ $.payload.v }}"]}'
  FROM execlog.automations WHERE name = E'ev"il\n''name';
});
my $evil = q1($node, q{SELECT execlog.start(E'ev"il\n''name', '{"v": "x\"y"}')});
$inputs++;
ok(wait_status($node, $evil, "'success'"), 'an automation and a step named with quotes and a newline run');

# ---- the workers survived everything, a canary succeeds
is(q1($node, q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'execlog worker'}),
	$pids, 'the same two worker processes ran everything');
my $log = slurp_file($node->logfile);
unlike($log, qr/exited with exit code|terminated by signal|PANIC|TRAP:/, 'no worker exited, nothing crashed');
unlike($log, qr/(?:ERROR|WARNING):  [^\n]*(?:SPI_\w+ failed|cache lookup failed|timestamp out of range)/, 'no internal error in the log');
my $canary = q1($node, q{SELECT execlog.start('ok')});
ok(wait_status($node, $canary, "'success'"), 'a canary execution succeeds');
cmp_ok($inputs, '>=', 100, 'at least 100 bad inputs were tried');
diag("bad inputs tried: $inputs");
print STDERR "019_bad_inputs: $inputs bad inputs tried\n";

$node->stop;
$raw->kill_kill;
done_testing();
