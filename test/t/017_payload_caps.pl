# execlog.max_payload_bytes caps every stored payload column: step input
# (placeholders resolved), step output and executions.response, with the
# marker {"execlog_truncated": true, "bytes", "bytes_kept", "text"}.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my $node = execlog_node('caps', "execlog.workers = 2\nexeclog.max_payload_bytes = '2kB'\n");

automation($node, 'big', run_as => "'runner'", steps => [
	['echo', 'sql', '{"query": "SELECT length($1::text) AS n", "args": ["{{ $.payload.big }}"]}'],
	['answer', 'response', '{"body": {"big": "{{ $.payload.big }}", "quotes": "{{ $.payload.quotes }}"}}'],
]);

# 100,000 letters and 20,000 double quotes (each stored as \" and quoted again in the marker)
my $e = q1($node, q{SELECT execlog.start('big', jsonb_build_object('big', repeat('x', 100000), 'quotes', repeat('"', 20000)))});
ok(wait_status($node, $e, "'success'"), 'an execution with oversized payloads still succeeds');

is(q1($node, "SELECT output->0->>'n' FROM execlog.execution_steps WHERE execution_id = $e AND name = 'echo'"),
	'100000', 'the step itself got its whole input');
for my $col (['input', 'echo'], ['input', 'answer'], ['output', 'answer'])
{
	my ($c, $step) = @$col;
	my $sel = "FROM execlog.execution_steps WHERE execution_id = $e AND name = '$step'";
	is(q1($node, "SELECT $c->>'execlog_truncated' $sel"), 'true', "$step $c stored with the truncation marker");
	cmp_ok(q1($node, "SELECT ($c->>'bytes')::int $sel"), '>', 100000, "$step $c marker gives the full size");
	cmp_ok(q1($node, "SELECT length($c\::text) $sel"), '<=', 2048, "$step $c stored within max_payload_bytes");
	is(q1($node, "SELECT ($c->>'bytes_kept')::int = octet_length($c->>'text') AND ($c->>'bytes_kept')::int > 0 $sel"),
		't', "$step $c keeps the start of the payload, as many bytes as it says");
}
is(q1($node, "SELECT response->>'execlog_truncated' FROM execlog.executions WHERE id = $e"), 'true',
	'executions.response stored with the truncation marker');
cmp_ok(q1($node, "SELECT length(response::text) FROM execlog.executions WHERE id = $e"), '<=', 2048,
	'executions.response stored within max_payload_bytes');
like(q1($node, "SELECT response->>'text' FROM execlog.executions WHERE id = $e"), qr/^\{"big": "xxx/,
	'the marker keeps the start of the response');

# small payloads are stored as they are
$e = q1($node, q{SELECT execlog.start('big', '{"big": "small", "quotes": "q"}')});
ok(wait_status($node, $e, "'success'"), 'a small execution succeeds');
is(q1($node, "SELECT response FROM execlog.executions WHERE id = $e"), '{"big": "small", "quotes": "q"}',
	'a small response is stored whole');
is(q1($node, "SELECT input FROM execlog.execution_steps WHERE execution_id = $e AND name = 'echo'"),
	'{"args": ["small"], "query": "SELECT length($1::text) AS n"}', 'a small input is stored whole');

$node->stop;
done_testing();
