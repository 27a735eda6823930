# OAuth2 tokens are shared by all workers (issue 12): four workers claiming
# one execution at a time, 40 calls through a connection whose token
# endpoint answers slowly, make one token request in all; after the
# server revokes its tokens, one more.  A failing token endpoint fails the
# waiting requests of every worker with its error, without a request per
# worker.  The token is in no table.
use strict;
use warnings;
use JSON::PP;
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ExeclogTest;

my ($server, $port) = http_server();
my $base = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 30);
sub stats { return decode_json($http->get("$base/stats")->{content}) }

my $node = execlog_node('oauth_shared', "execlog.workers = 4\nexeclog.batch_size = 1\n");
$node->safe_psql('postgres', qq{
INSERT INTO execlog.connections (account_id, name, base_url, auth) VALUES
  (1, 'oauth', '$base', '{"type": "oauth2_client_credentials", "token_url": "$base/oauth/token?delay=1",
     "client_id": "execlog-client", "client_secret": "cl1ent-s3cret-Xq7Zp"}'),
  (1, 'oauth-bad', '$base', '{"type": "oauth2_client_credentials", "token_url": "$base/oauth/token?delay=1",
     "client_id": "execlog-client", "client_secret": "wrong-secret-Zz9"}');
});
is(q1($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'execlog%'"), '4', 'four workers');
automation($node, 'call', steps => [ [ 'call', 'http', '{"connection": "oauth", "path": "/protected"}' ] ]);
automation($node, 'bad', steps => [ [ 'call', 'http', '{"connection": "oauth-bad", "path": "/protected"}' ] ]);

sub run_many
{
	my ($name, $n) = @_;
	my $first = q1($node, "SELECT min(id) FROM (SELECT execlog.start('$name') AS id FROM generate_series(1, $n)) s");
	$node->poll_query_until('postgres',
		"SELECT count(*) = $n FROM execlog.executions WHERE id >= $first AND status NOT IN ('pending', 'running')")
	  or die "executions of $name did not end";
	return $first;
}

my $first = run_many('call', 40);
is(q1($node, "SELECT string_agg(DISTINCT status::text, ',') FROM execlog.executions WHERE id >= $first"),
	'success', '40 calls succeed');
cmp_ok(q1($node, "SELECT count(DISTINCT by) FROM execlog.transitions WHERE execution_id >= $first AND to_status = 'success'"), '>=', 2,
	'more than one worker ran them');
is(stats()->{token_requests}, 1, 'one token request for all workers');

$http->post("$base/admin/revoke");
$first = run_many('call', 40);
is(q1($node, "SELECT string_agg(DISTINCT status::text, ',') FROM execlog.executions WHERE id >= $first"),
	'success', 'after the revocation, 40 more calls succeed (refreshed on 401)');
cmp_ok(stats()->{protected_401}, '>=', 1, 'the revoked token was refused');
is(stats()->{token_requests}, 2, 'one new token for all workers');

my $before = stats()->{token_requests};
$first = run_many('bad', 8);
is(q1($node, "SELECT string_agg(DISTINCT e.status::text, ',') FROM execlog.executions e WHERE id >= $first"),
	'failed', 'calls through a connection whose token is refused fail');
like(q1($node, "SELECT DISTINCT error FROM execlog.execution_steps WHERE execution_id >= $first"),
	qr/^could not get an OAuth2 token from .*status 401$/, 'with the token endpoint\'s answer');
# four workers claim one call each and all wait for one fetch, which fails
# them all; the next four try once more (the old code: one per call)
my $bad_requests = stats()->{token_requests} - $before;
cmp_ok($bad_requests, '<=', 4, "a refused token request fails the calls of every worker that waited ($bad_requests requests for 8 calls)");

my $tokens = join('|', map { quotemeta } @{ stats()->{tokens} });
my $dump = q1($node, q{
SELECT string_agg(t, ' ') FROM (
  SELECT to_jsonb(s)::text AS t FROM execlog.execution_steps s
  UNION ALL SELECT to_jsonb(e)::text FROM execlog.executions e) x});
unlike($dump, qr/$tokens/, 'no access token in any table');

$server->kill_kill;
done_testing();
