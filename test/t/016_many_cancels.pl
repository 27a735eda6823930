# Many running executions cancelled in one transaction: every one of them
# is interrupted.  The committing backend used to remember at most 64
# cancels (the rest were dropped without a word); now the list grows, and
# the workers are signalled after the spinlock is released.
use strict;
use warnings;
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($server, $port) = http_server();
my $base = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 30);

# the state the server saw of each request, by Idempotency-Key
sub sleeping
{
	my $r = $http->get("$base/stats");
	die "stats: $r->{status}" unless $r->{success};
	return decode_json($r->{content})->{sleep};
}

sub wait_until
{
	my ($cond) = @_;
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		return 1 if $cond->();
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

my $node = execlog_node('many_cancels', "execlog.max_connections_per_host = 100\n");

my $n = 100;
automation($node, 'slow', run_as => "'runner'", steps => [
	['call', 'http', qq{{"url": "$base/sleep?s=600", "timeout": "20 minutes"}}],
]);
automation($node, 'canary', run_as => "'runner'", steps => [
	['call', 'http', qq{{"url": "$base/json"}}],
]);
my @ids = split /\n/, $node->safe_psql('postgres',
	"SELECT execlog.start('slow') FROM generate_series(1, $n)");
is(scalar(@ids), $n, "$n executions started");
my $list = join(',', @ids);

ok(wait_until(sub { my $s = sleeping(); (grep { ($s->{"execlog-$_-1"} // '') eq 'sleeping' } @ids) == $n }),
	"all $n requests are in flight");

# one transaction cancels them all
$node->safe_psql('postgres', "SELECT count(execlog.cancel(id)) FROM unnest('{$list}'::bigint[]) AS id");
is(q1($node, "SELECT count(*) FROM execlog.executions WHERE id IN ($list) AND status = 'cancelled'"),
	$n, "all $n executions are cancelled");
ok(wait_until(sub { my $s = sleeping(); (grep { ($s->{"execlog-$_-1"} // '') eq 'aborted' } @ids) == $n }),
	"the server sees all $n requests aborted");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM execlog.execution_steps WHERE execution_id IN ($list) AND status IN ('pending', 'running')"),
	'no step of a cancelled execution stays pending or running');
is(q1($node, "SELECT count(*) FROM execlog.execution_steps WHERE execution_id IN ($list) AND error LIKE 'request aborted: the execution is cancelled%'"),
	$n, 'every step row says why it failed');

my $e = q1($node, q{SELECT execlog.start('canary')});
ok(wait_status($node, $e, "'success'"), 'the workers go on: a canary execution succeeds');

$node->stop;
$server->kill_kill;
done_testing();
