# The hostile-user walk of issue 10, run as the non-superuser roles of two
# accounts (alpha and bravo: an admin, an operator and a reader each, and a
# role that belongs to no account):
#   - account isolation in every table and view, steps and triggers included
#     (their rows have no account_id: their RLS goes through the automation),
#     for reading and for every kind of write and API call;
#   - connections.auth and channels.config unreadable by all but the owner,
#     also through to_jsonb(row), RETURNING and WHERE-oracles;
#   - sql steps cannot SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION,
#     ALTER SYSTEM, COPY ... PROGRAM, DROP EXTENSION, LOAD, or signal the
#     workers, and see only their account;
#   - no secret in the server log with log_statement = 'all' and
#     log_min_messages = debug1;
#   - PUBLIC has no privilege on anything of execlog;
#   - the install script is safe against objects others pre-created.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($server, $port) = http_server();

my $node = execlog_node('security', "log_statement = 'all'\nlog_min_messages = debug1\n");
my $bearer   = 'st4tic-bearer-Jm3Rd';	# the test server's (test/http_server.py)
my $hook     = 'https://hooks.slack.com/services/T0ALPHA/B0ALPHA/h00kS3cretAlpha';
my $hmac     = 'hmac-s1gning-Kx8Qv';
my $bad_file = $node->basedir . '/copied_by_a_step';

# ---- two accounts, their roles, their definitions and some history
$node->safe_psql('postgres', q{
CREATE ROLE alpha_admin LOGIN IN ROLE execlog_admin;
CREATE ROLE alpha_oper LOGIN IN ROLE execlog_operator;
CREATE ROLE alpha_reader LOGIN IN ROLE execlog_reader;
CREATE ROLE bravo_admin LOGIN IN ROLE execlog_admin;
CREATE ROLE bravo_oper LOGIN IN ROLE execlog_operator;
CREATE ROLE bravo_reader LOGIN IN ROLE execlog_reader;
CREATE ROLE nobody LOGIN;
INSERT INTO execlog.accounts (name) VALUES ('alpha-acct'), ('bravo-acct');
INSERT INTO execlog.account_members
SELECT a.id, r FROM execlog.accounts a,
       unnest(ARRAY['_admin', '_oper', '_reader']) s, LATERAL (SELECT split_part(a.name, '-', 1) || s AS r) x
 WHERE a.name IN ('alpha-acct', 'bravo-acct');
});
my %acct = map { $_ => q1($node, "SELECT id FROM execlog.accounts WHERE name = '$_-acct'") } qw(alpha bravo);

# as_role(role, sql): (exit code, stdout, stderr) of psql connected as role
sub as_role
{
	my ($role, $sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql, extra_params => [ '-U', $role ]);
	return ($ret, $stdout, $stderr);
}

# the secrets are written with log_statement off: the log must then show
# only what execlog itself logs
for my $who (qw(alpha bravo))
{
	my $id = $acct{$who};
	my ($r, $o, $e) = as_role("${who}_admin", qq{
SET log_statement = 'none';
INSERT INTO execlog.connections (account_id, name, base_url, auth)
VALUES ($id, '$who-crm', 'http://127.0.0.1:$port/', '{"type": "bearer", "token": "$bearer"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
  ($id, '$who-slack', 'slack', '{"url": "$hook"}'),
  ($id, '$who-hook', 'webhook', '{"url": "http://127.0.0.1:$port/echo", "secret": "$hmac"}');
});
	# an admin cannot turn log_statement off: the superuser does it instead
	if ($r != 0)
	{
		local $ENV{PGOPTIONS} = '-c log_statement=none';
		$node->safe_psql('postgres', qq{
INSERT INTO execlog.connections (account_id, name, base_url, auth)
VALUES ($id, '$who-crm', 'http://127.0.0.1:$port/', '{"type": "bearer", "token": "$bearer"}');
INSERT INTO execlog.channels (account_id, name, kind, config) VALUES
  ($id, '$who-slack', 'slack', '{"url": "$hook"}'),
  ($id, '$who-hook', 'webhook', '{"url": "http://127.0.0.1:$port/echo", "secret": "$hmac"}');
});
	}
	my ($r2, $o2, $e2) = as_role("${who}_admin", qq{
INSERT INTO execlog.automations (account_id, name, run_as, on_failure)
VALUES ($id, '$who-job', '${who}_admin',
        '{"task": {"assignee": "${who}_oper", "title": "$who-task"}, "alert": {"channel": "$who-slack", "message": "$who-alert"}}');
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 1, '$who-step', 'sql', '{"query": "SELECT \$1::text AS who", "args": ["$who-output"]}'
  FROM execlog.automations WHERE name = '$who-job';
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
SELECT id, 2, '$who-call', 'http', '{"connection": "$who-crm", "path": "bearer"}'
  FROM execlog.automations WHERE name = '$who-job';
INSERT INTO execlog.steps (automation_id, position, name, kind, config, condition)
SELECT id, 3, '$who-fail', 'sql', '{"query": "SELECT 1/0"}', '\$.payload.fail == true'
  FROM execlog.automations WHERE name = '$who-job';
INSERT INTO execlog.triggers (automation_id, kind, config)
SELECT id, 'api', '{"note": "$who-trigger"}' FROM execlog.automations WHERE name = '$who-job';
});
	is($r2, 0, "$who\'s admin defines its automation") or diag($e2);
}
my %exec;
for my $who (qw(alpha bravo))
{
	my ($r, $o, $e) = as_role("${who}_oper", qq{
SELECT execlog.start('$who-job', '{"who": "$who-payload"}', '$who-acct');
SELECT execlog.start('$who-job', '{"who": "$who-payload", "fail": true}', '$who-acct');
});
	is($r, 0, "$who\'s operator starts executions") or diag($e);
	$exec{$who} = [ split /\n/, $o ];
}
for my $who (qw(alpha bravo))
{
	ok(wait_status($node, $exec{$who}[0], "'success'"), "$who\'s first execution succeeds");
	ok(wait_status($node, $exec{$who}[1], "'failed'"), "$who\'s second execution fails");
}
$node->poll_query_until('postgres', 'SELECT count(*) = 2 FROM execlog.tasks')
  or diag('tasks: ' . q1($node, 'SELECT count(*) FROM execlog.tasks'));
is(q1($node, q{SELECT count(*) FROM execlog.alerts}), '2', 'each failure made its alert');
$node->safe_psql('postgres', 'SELECT execlog.merge_event_log()');

# ---- reading: every table and view, as every role
my @relations = split /\n/, q1($node, q{
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'execlog' AND c.relkind IN ('r', 'v', 'p', 'm')
 ORDER BY 1});
cmp_ok(scalar(@relations), '>=', 20, 'the walk covers every table and view (' . scalar(@relations) . ')');

# each relation, as text: the columns the role may read (a column-level
# grant hides auth and config), all rows it sees
sub visible_text
{
	my ($role, $rel) = @_;
	my $cols = q1($node, qq{
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
  FROM pg_attribute
 WHERE attrelid = '$rel'::regclass AND attnum > 0 AND NOT attisdropped
   AND has_column_privilege('$role', '$rel'::regclass, attnum, 'SELECT')});
	return (1, '') if $cols eq '';
	my ($r, $o, $e) = as_role($role, "SELECT string_agg(t::text, ' ') FROM (SELECT $cols FROM $rel) t");
	return ($r, $r == 0 ? $o : $e);
}

for my $who (qw(alpha bravo))
{
	my $other = $who eq 'alpha' ? 'bravo' : 'alpha';
	for my $kind (qw(admin oper reader))
	{
		my $role = "${who}_$kind";
		my ($leaks, $seen, $readable) = (0, 0, 0);
		for my $rel (@relations)
		{
			my ($r, $text) = visible_text($role, $rel);
			next if $r != 0;
			$readable++;
			$seen++ if $text =~ /\Q$who\E-/;
			if ($text =~ /\Q$other\E-/)
			{
				$leaks++;
				diag("$role sees $other\'s rows in $rel");
			}
		}
		cmp_ok($readable, '>=', 15, "$role reads the tables and views ($readable)");
		cmp_ok($seen, '>=', 10, "$role sees its own account's rows in them ($seen)");
		is($leaks, 0, "$role sees no row of the other account in any table or view");
	}
}
for my $rel (@relations)
{
	my ($r, $o, $e) = as_role('nobody', "SELECT count(*) FROM $rel");
	if ($r == 0)
	{
		fail("a role of no account cannot read $rel");
		last;
	}
}
pass('a role with no execlog role reads nothing');
my ($nr, $no, $ne) = as_role('nobody', "SELECT execlog.start('alpha-job')");
like($ne, qr/permission denied for schema execlog/, 'nor calls anything');

# ---- writing: the other account's definitions and executions
my %aid = map { $_ => q1($node, "SELECT id FROM execlog.automations WHERE name = '$_-job'") } qw(alpha bravo);
my @writes = (
	[ "UPDATE execlog.automations SET max_retries = 9 WHERE id = $aid{alpha} RETURNING id" ],
	[ "DELETE FROM execlog.automations WHERE id = $aid{alpha} RETURNING id" ],
	[ "UPDATE execlog.steps SET config = '{\"query\": \"SELECT 2\"}' WHERE automation_id = $aid{alpha} RETURNING name" ],
	[ "DELETE FROM execlog.steps WHERE automation_id = $aid{alpha} RETURNING name" ],
	[ "UPDATE execlog.triggers SET config = '{}' WHERE automation_id = $aid{alpha} RETURNING id" ],
	[ "DELETE FROM execlog.triggers WHERE automation_id = $aid{alpha} RETURNING id" ],
	[ "UPDATE execlog.connections SET base_url = 'http://127.0.0.1:1/' WHERE account_id = $acct{alpha} RETURNING id" ],
	[ "DELETE FROM execlog.connections WHERE account_id = $acct{alpha} RETURNING id" ],
	[ "UPDATE execlog.channels SET name = 'x' WHERE account_id = $acct{alpha} RETURNING id" ],
	[ "DELETE FROM execlog.channels WHERE account_id = $acct{alpha} RETURNING id" ],
	[ "DELETE FROM execlog.executions WHERE account_id = $acct{alpha} RETURNING id" ],
	[ "UPDATE execlog.accounts SET name = 'x' WHERE id = $acct{alpha} RETURNING id" ],
	[ "DELETE FROM execlog.account_members WHERE account_id = $acct{alpha} RETURNING role_name" ],
);
for my $w (@writes)
{
	my ($r, $o, $e) = as_role('bravo_admin', $w->[0]);
	ok($r != 0 || $o eq '', "bravo's admin cannot: $w->[0]") or diag($o);
}
my @inserts = (
	"INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES ($aid{alpha}, 9, 'evil', 'sql', '{\"query\": \"SELECT 1\"}')",
	"INSERT INTO execlog.triggers (automation_id, kind, config) VALUES ($aid{alpha}, 'api', '{}')",
	"INSERT INTO execlog.automations (account_id, name) VALUES ($acct{alpha}, 'evil')",
	"INSERT INTO execlog.connections (account_id, name, base_url) VALUES ($acct{alpha}, 'evil', 'http://127.0.0.1:1/')",
	"INSERT INTO execlog.channels (account_id, name, kind, config) VALUES ($acct{alpha}, 'evil', 'email', '{\"to\": [\"a\@example.com\"]}')",
	"INSERT INTO execlog.account_members VALUES ($acct{alpha}, 'bravo_admin')",
	"INSERT INTO execlog.executions (account_id, automation_id) VALUES ($acct{alpha}, $aid{alpha})",
	"INSERT INTO execlog.transitions (execution_id, account_id, attempt, to_status, by) VALUES ($exec{alpha}[0], $acct{alpha}, 1, 'failed', 'x')",
	"UPDATE execlog.executions SET status = 'success' WHERE account_id = $acct{bravo}",
	"UPDATE execlog.transitions SET by = 'x'",
	"DELETE FROM execlog.transitions",
	"UPDATE execlog.execution_steps SET output = '{}'",
	"TRUNCATE execlog.event_log",
);
for my $w (@inserts)
{
	my ($r, $o, $e) = as_role('bravo_admin', $w);
	isnt($r, 0, "bravo's admin is refused: $w");
}
my $task_alpha = q1($node, "SELECT id FROM execlog.tasks WHERE account_id = $acct{alpha}");
for my $call (
	"SELECT execlog.retry($exec{alpha}[1])",
	"SELECT execlog.cancel($exec{alpha}[1])",
	"SELECT execlog.resume($exec{alpha}[1])",
	"SELECT execlog.start($aid{alpha})",
	"SELECT execlog.start('alpha-job', '{}', 'alpha-acct')",
	"SELECT execlog.complete_task($task_alpha)",
	"SELECT execlog.watch('execlog.tasks', 'alpha-job')",
	"SELECT execlog.unwatch('execlog.tasks', 'alpha-job')")
{
	for my $role (qw(bravo_oper bravo_admin))
	{
		my ($r, $o, $e) = as_role($role, $call);
		isnt($r, 0, "$role is refused: $call");
	}
}
for my $call ("SELECT execlog.start('bravo-job', '{}', 'bravo-acct')", "SELECT execlog.retry($exec{bravo}[1])")
{
	my ($r, $o, $e) = as_role('bravo_reader', $call);
	like($e, qr/permission denied/, "a reader cannot act: $call");
}
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE account_id = $acct{alpha}"), '2',
	"alpha's executions are untouched");
is(q1($node, "SELECT string_agg(name, ',' ORDER BY position) FROM execlog.steps WHERE automation_id = $aid{alpha}"),
	'alpha-step,alpha-call,alpha-fail', "alpha's steps are untouched");
is(q1($node, "SELECT status FROM execlog.tasks WHERE id = $task_alpha"), 'open', "alpha's task is still open");

# ---- secrets: connections.auth and channels.config
for my $role (qw(alpha_admin alpha_oper alpha_reader bravo_admin))
{
	for my $probe (
		'SELECT auth FROM execlog.connections',
		'SELECT to_jsonb(c) FROM execlog.connections c',
		'SELECT c FROM execlog.connections c',
		'SELECT count(*) FROM execlog.connections WHERE auth::text LIKE \'%bearer%\'',
		'SELECT id FROM execlog.connections ORDER BY auth',
		'UPDATE execlog.connections SET name = name RETURNING auth',
		'DELETE FROM execlog.connections WHERE auth->>\'token\' LIKE \'st4%\'',
		'SELECT config FROM execlog.channels',
		'SELECT to_jsonb(c) FROM execlog.channels c',
		'SELECT count(*) FROM execlog.channels WHERE config::text LIKE \'%hooks%\'',
		'UPDATE execlog.channels SET name = name RETURNING config',
		'SELECT row_to_json(c) FROM execlog.channels c')
	{
		my ($r, $o, $e) = as_role($role, $probe);
		ok($r != 0 && $e =~ /permission denied/, "$role: $probe is refused")
		  or diag("exit $r, out: $o");
	}
}
my ($sr, $so, $se) = as_role('alpha_admin',
	"UPDATE execlog.connections SET base_url = 'http://127.0.0.1:9/' WHERE name = 'alpha-crm'");
like($se, qr/were given for another host/, 'an admin cannot send the credentials to another host');

# ---- sql steps as a hostile admin
my @pids = sort split /\n/, q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'execlog%'");
is(scalar(@pids), 2, 'two workers run');
my @hostile = (
	[ 'set_role',     'SET ROLE postgres' ],
	[ 'reset_role',   'RESET ROLE' ],
	[ 'set_session',  'SET SESSION AUTHORIZATION postgres' ],
	[ 'set_local',    'SELECT set_config(\'role\', \'postgres\', false)' ],
	[ 'alter_system', 'ALTER SYSTEM SET log_statement = \'none\'' ],
	[ 'copy_program', "COPY (SELECT 1) TO PROGRAM 'touch $bad_file'" ],
	[ 'drop_ext',     'DROP EXTENSION execlog CASCADE' ],
	[ 'load',         "LOAD 'execlog'" ],
	[ 'terminate',    'SELECT ' . join(', ', map { "pg_terminate_backend($_)" } @pids) ],
	[ 'cancel',       'SELECT ' . join(', ', map { "pg_cancel_backend($_)" } @pids) ],
	[ 'signal_all',   "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()" ],
	[ 'superuser',    'ALTER ROLE alpha_admin SUPERUSER' ],
	[ 'grant',        'GRANT execlog_admin TO nobody' ],
	[ 'read_file',    "SELECT pg_read_file('postgresql.conf')" ],
);
my $steps = join(",\n", map {
	my ($name, $sql) = @{ $hostile[$_] };
	$sql =~ s/'/''/g;
	$sql =~ s/"/\\"/g;
	sprintf("(%s, %d, '%s', 'sql', '{\"query\": \"%s\"}', 'continue')", '(SELECT id FROM a)', $_ + 1, $name, $sql)
} 0 .. $#hostile);
my $n = scalar(@hostile);
my ($hr, $ho, $he) = as_role('alpha_admin', qq{
INSERT INTO execlog.automations (account_id, name) VALUES ($acct{alpha}, 'alpha-hostile');
WITH a AS (SELECT id FROM execlog.automations WHERE name = 'alpha-hostile')
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error) VALUES $steps;
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error)
SELECT id, $n + 1, 'peek', 'sql', '{"query": "SELECT count(*) AS other FROM execlog.executions WHERE account_id = $acct{bravo}"}', 'continue'
  FROM execlog.automations WHERE name = 'alpha-hostile';
INSERT INTO execlog.steps (automation_id, position, name, kind, config, on_error)
SELECT id, $n + 2, 'whoami', 'sql', '{"query": "SELECT current_user AS me, session_user IS NOT NULL AS s"}', 'continue'
  FROM execlog.automations WHERE name = 'alpha-hostile';
SELECT execlog.start('alpha-hostile', '{}', 'alpha-acct');
});
is($hr, 0, 'alpha\'s admin defines and starts a hostile automation') or diag($he);
my ($hid) = $ho =~ /(\d+)\s*$/;
ok(wait_status($node, $hid, "'partially_executed','success','failed'"), 'the hostile execution ends');
for my $h (@hostile)
{
	my $name = $h->[0];
	my $row = q1($node, "SELECT status || ' ' || coalesce(error, '') FROM execlog.execution_steps WHERE execution_id = $hid AND name = '$name'");
	if ($name eq 'signal_all')
	{
		# a non-superuser does not even see which processes are the workers
		like($row, qr/^(success|failed)/, 'a step that signals every process it can see ends');
	}
	elsif ($name eq 'terminate' || $name eq 'cancel')
	{
		# pg_terminate_backend of a superuser's process: refused (42501), the step fails
		like($row, qr/^failed .*(permission denied|must be a superuser)/i, "a step cannot signal the workers ($name)");
	}
	else
	{
		like($row, qr/^failed \S/, "a step cannot $name: $row");
	}
}
like(q1($node, "SELECT output::text FROM execlog.execution_steps WHERE execution_id = $hid AND name = 'peek'"),
	qr/"other": 0\b/, 'an sql step sees no row of the other account');
like(q1($node, "SELECT output::text FROM execlog.execution_steps WHERE execution_id = $hid AND name = 'whoami'"),
	qr/"me": "alpha_admin"/, 'an sql step runs as its run_as role');
ok(!-e $bad_file, 'COPY TO PROGRAM ran nothing');
is(q1($node, "SELECT count(*) FROM pg_extension WHERE extname = 'execlog'"), '1', 'the extension is still there');
is(q1($node, "SELECT rolsuper FROM pg_roles WHERE rolname = 'alpha_admin'"), 'f', 'alpha_admin is no superuser');
is(q1($node, "SELECT pg_has_role('nobody', 'execlog_admin', 'MEMBER')"), 'f', 'nobody was granted nothing');
is(join(',', sort split /\n/, q1($node, "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'execlog%'")),
	join(',', @pids), 'the workers were not signalled (same pids)');
my $canary = q1($node, "SELECT execlog.start('alpha-job', '{\"who\": \"alpha-canary\"}', 'alpha-acct')");
ok(wait_status($node, $canary, "'success'"), 'and still run executions');

# ---- PUBLIC has nothing
is(q1($node, q{
SELECT count(*) FROM (
  SELECT (aclexplode(coalesce(nspacl, acldefault('n', nspowner)))).grantee FROM pg_namespace WHERE nspname = 'execlog'
  UNION ALL
  SELECT (aclexplode(coalesce(relacl, acldefault('r', relowner)))).grantee FROM pg_class
   WHERE relnamespace = 'execlog'::regnamespace
  UNION ALL
  SELECT (aclexplode(coalesce(proacl, acldefault('f', proowner)))).grantee FROM pg_proc
   WHERE pronamespace = 'execlog'::regnamespace
  UNION ALL
  SELECT (aclexplode(coalesce(typacl, acldefault('T', typowner)))).grantee FROM pg_type
   WHERE typnamespace = 'execlog'::regnamespace AND typcategory <> 'A') g
 WHERE grantee = 0}), '0', 'PUBLIC has no privilege on the schema, a table, a sequence, a function or a type');
is(q1($node, q{
SELECT count(*) FROM pg_type
 WHERE typnamespace = 'execlog'::regnamespace AND has_type_privilege('nobody', oid, 'USAGE')}), '0',
	'a role with no grant may use no execlog type, row and array types included');

# ---- no secret in the server log (log_statement = all, debug1)
my $bravo_call = q1($node, "SELECT output::text FROM execlog.execution_steps WHERE execution_id = $exec{bravo}[0] AND name = 'bravo-call'");
like($bravo_call, qr/"status": 200/, 'the bearer connection was used (the server accepted the token)');
my $everything = q1($node, q{
SELECT string_agg(t, ' ') FROM (
  SELECT to_jsonb(s)::text AS t FROM execlog.execution_steps s
  UNION ALL SELECT to_jsonb(e)::text FROM execlog.executions e
  UNION ALL SELECT to_jsonb(a)::text FROM execlog.alerts a
  UNION ALL SELECT to_jsonb(t)::text FROM execlog.tasks t
  UNION ALL SELECT to_jsonb(l)::text FROM execlog.step_log l
  UNION ALL SELECT to_jsonb(l)::text FROM execlog.execution_log l) x});
is(scalar(grep { index($everything, $_) >= 0 } $bearer, $hook, $hmac), 0,
	'no secret in any execution, step, alert or task row or view');
$node->stop;
my $log = slurp_file($node->logfile);
like($log, qr/statement: SELECT execlog\.start/, 'the log holds the statements');
is(scalar(grep { index($log, $_) >= 0 } $bearer, $hook, $hmac, 'h00kS3cret'), 0, 'and no secret');
$node->start;

# ---- installing next to objects others pre-created
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
CREATE DATABASE hostile;
});
$node->safe_psql('hostile', q{GRANT CREATE ON SCHEMA public TO mallory;});
my ($mr, $mo, $me) = $node->psql('hostile', q{
CREATE TABLE public.mallory_log (who text, what text);
CREATE FUNCTION public.mallory_trap(text) RETURNS text LANGUAGE sql
	AS $$ INSERT INTO public.mallory_log VALUES (current_user, $1) RETURNING $1 $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
	AS $$ SELECT public.mallory_trap('now')::text::timestamptz $$;
CREATE FUNCTION public.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql
	AS $$ SELECT public.mallory_trap('format') $$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT public.mallory_trap('jsonb_build_object')::jsonb $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT public.mallory_trap('lower') $$;
CREATE FUNCTION public.mallory_cat(text, bigint) RETURNS text LANGUAGE sql
	AS $$ SELECT public.mallory_trap('||') $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.mallory_cat);
CREATE FUNCTION public.mallory_eq(text, text) RETURNS boolean LANGUAGE sql
	AS $$ SELECT public.mallory_trap('=') IS NULL $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.mallory_eq);
GRANT ALL ON public.mallory_log TO PUBLIC;
}, extra_params => [ '-U', 'mallory' ]);
is($mr, 0, 'mallory pre-creates functions and operators in public') or diag($me);
my ($ir, $io, $ie) = $node->psql('hostile', 'CREATE EXTENSION execlog');
is($ir, 0, 'execlog installs next to them') or diag($ie);
$node->safe_psql('hostile', q{
INSERT INTO execlog.accounts (name) VALUES ('x');
INSERT INTO execlog.automations (account_id, name) VALUES (1, 'x');
INSERT INTO execlog.steps (automation_id, position, name, kind, config) VALUES (1, 1, 's', 'sql', '{"query": "SELECT 1"}');
SELECT execlog.start('x');
UPDATE execlog.executions SET status = 'running';
UPDATE execlog.executions SET status = 'failed', error = 'e';
SELECT execlog.retry(1);
SELECT execlog.merge_event_log();
});
is($node->safe_psql("hostile", "SELECT count(*) FROM public.mallory_log"), "0",
	'neither the install nor the API nor the status trigger called any of them');
$node->safe_psql('hostile', 'DROP EXTENSION execlog');
$node->safe_psql('hostile', 'CREATE SCHEMA execlog AUTHORIZATION mallory');
($ir, $io, $ie) = $node->psql('hostile', 'CREATE EXTENSION execlog');
like($ie, qr/schema "execlog" already exists/, 'a pre-created schema execlog makes the install fail');
$node->safe_psql('hostile', 'DROP SCHEMA execlog');
$node->safe_psql('postgres', 'CREATE ROLE sneaky LOGIN');
$node->safe_psql('postgres', 'ALTER ROLE execlog_reader RENAME TO execlog_reader_old');
$node->safe_psql('postgres', 'CREATE ROLE execlog_reader LOGIN');
($ir, $io, $ie) = $node->psql('hostile', 'CREATE EXTENSION execlog');
like($ie, qr/role "execlog_reader" already exists and can log in/,
	'a pre-created execlog role that can log in makes the install fail');

$server->kill_kill;
done_testing();
