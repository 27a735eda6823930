# Issue 10, defect 2: the workers' own statements cannot be captured by
# objects another role creates in public (a ||(text, bigint) operator),
# while an sql step still runs with its run_as role's own settings, and the
# worker's pinned search_path is back after the step.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('search_path');

$node->safe_psql('postgres', q{
CREATE TABLE public.captured (who name, at timestamptz DEFAULT now());
CREATE ROLE squatter NOLOGIN;
GRANT CREATE, USAGE ON SCHEMA public TO squatter;
GRANT INSERT ON public.captured TO squatter;
SET ROLE squatter;
CREATE FUNCTION public.squat(a text, b bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.captured (who) VALUES (current_user);
	RETURN a || b::text;
END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.squat);
RESET ROLE;
CREATE SCHEMA runner_home;
GRANT USAGE ON SCHEMA runner_home TO runner;
ALTER ROLE runner SET search_path = runner_home, public;
});

# a failure with on_failure follow-ups: the task and alert titles are
# built with 'execution ' || id
automation($node, 'fails', run_as => "'runner'", max_retries => 0,
	on_failure => q{'{"task": {"assignee": "ops"}, "alert": {"channel": "email", "target": "ops@example.com"}}'},
	steps => [['boom', 'sql', '{"query": "SELECT 1/0"}']]);
my $e = q1($node, q{SELECT execlog.start('fails')});
ok(wait_status($node, $e, "'failed'"), 'the failing execution fails');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM execlog.tasks WHERE execution_id = $e"), 'its follow-up task is created');
is(q1($node, "SELECT title FROM execlog.tasks WHERE execution_id = $e"), "execution $e failed",
	'the task title is built with the catalog operator');
is(q1($node, 'SELECT count(*) FROM public.captured'), '0',
	'no statement of the workers called the operator in public');

# the sql step sees its role's search_path; the worker's own is back after
automation($node, 'path', run_as => "'runner'",
	steps => [['p', 'sql', q{{"query": "SELECT pg_catalog.current_setting('search_path') AS path"}}]]);
$e = q1($node, q{SELECT execlog.start('path')});
ok(wait_status($node, $e, "'success'"), 'the path step succeeds');
is(q1($node, "SELECT output -> 0 ->> 'path' FROM execlog.execution_steps WHERE execution_id = $e"),
	'runner_home, public', 'an sql step runs with its run_as role\'s search_path');
$e = q1($node, q{SELECT execlog.start('fails')});
ok(wait_status($node, $e, "'failed'"), 'a second failure after the step');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM execlog.tasks WHERE execution_id = $e"), 'its task is created');
is(q1($node, 'SELECT count(*) FROM public.captured'), '0',
	'the worker\'s pinned path is restored after an sql step');

done_testing();
