# execlog must be preloaded: CREATE EXTENSION without it fails with a hint,
# and with it the extension installs and execlog.* settings are reserved.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;

my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION execlog');
isnt($rc, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like($err, qr/execlog must be loaded via "shared_preload_libraries"/, 'error says why');
like($err, qr/HINT:\s+Add execlog to "shared_preload_libraries"/, 'error has a hint');

$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'execlog'
execlog.workers = 0
});
$node->restart;
($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION execlog');
is($rc, 0, 'CREATE EXTENSION works once preloaded') or diag($err);
is($node->safe_psql('postgres', 'SHOW execlog.workers'), '0', 'settings are defined');

# an unknown execlog.* setting is refused (the prefix is reserved)
($rc, $out, $err) = $node->psql('postgres', 'SET execlog.no_such_setting = 1');
isnt($rc, 0, 'unknown execlog.* settings are refused');

$node->stop;
done_testing();
