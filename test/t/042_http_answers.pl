# Broken HTTP answers get messages that say what happened: a first line
# that is not a status line, a header line of 1 MB (test/raw_http_server.py).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'python3', "$ENV{TESTDIR}/raw_http_server.py" ],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$h->pump until $out =~ /PORT (\d+)/;
my $port = $1;

my $node = execlog_node('answers');
for my $case (['bad', 'bad-status'], ['big', 'huge-header'])
{
	my ($name, $path) = @$case;
	automation($node, $name, max_retries => 0, steps => [
		['call', 'http', qq{{"method": "GET", "url": "http://127.0.0.1:$port/$path"}}]]);
}
my $e = q1($node, q{SELECT execlog.start('bad')});
ok(wait_status($node, $e, "'failed'"), 'a bad status line fails the execution');
is(q1($node, "SELECT error FROM execlog.execution_steps WHERE execution_id = $e"),
	"invalid HTTP response from 127.0.0.1:$port", 'it is reported as an invalid HTTP response, not a redirect');

$e = q1($node, q{SELECT execlog.start('big')});
ok(wait_status($node, $e, "'failed'"), 'a 1 MB header line fails the execution');
is(q1($node, "SELECT error FROM execlog.execution_steps WHERE execution_id = $e"),
	"header too large in the response from 127.0.0.1:$port", 'it is reported as a header too large, not out of memory');

$node->stop;
$h->kill_kill;
done_testing();
