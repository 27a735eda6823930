# Issue 10, defect 3: a stored (legacy) sql step whose query holds a
# placeholder fails at run time with the write-time message; the payload
# never becomes SQL.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('query_placeholders');
my $a = automation($node, 'legacy', run_as => "'runner'", max_retries => 0);
# as a step written before 0.2 would be: past the steps trigger
$node->safe_psql('postgres', qq{
SET session_replication_role = replica;
INSERT INTO execlog.steps (automation_id, position, name, kind, config)
VALUES ($a, 1, 'x', 'sql', '{"query": "SELECT ''{{ \$.payload.a }}'' AS v"}');
});
my $e = q1($node, q{SELECT execlog.start('legacy', '{"a": "x'' || (SELECT current_user) || ''"}')});
ok(wait_status($node, $e, "'failed'"), 'the legacy step fails');
is(q1($node, "SELECT error FROM execlog.execution_steps WHERE execution_id = $e"),
	'placeholders are not allowed in the query of sql step "x"', 'with the write-time message');
is(q1($node, "SELECT output FROM execlog.execution_steps WHERE execution_id = $e"), '',
	'and nothing ran');
done_testing();
