# Release metadata: META.json is valid against the PGXN Meta Spec 1.0.0
# (required keys, their types and allowed values), and every place that
# names the version agrees (Makefile, execlog.control, META.json,
# debian/changelog, CHANGELOG.md).
use strict;
use warnings;
use JSON::PP;
use Test::More;

my $root = $ENV{EXECLOG_SRC} // '..';
sub slurp { my ($f) = @_; open(my $fh, '<', "$root/$f") or die "$f: $!"; local $/; return <$fh>; }

my $meta = eval { JSON::PP->new->decode(slurp('META.json')) };
ok($meta, 'META.json is JSON') or diag($@);
$meta //= {};

my $semver = qr/^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+)?$/;
sub is_str { my ($v) = @_; return defined $v && !ref $v && length $v; }

# required keys (spec 1.0.0, "Structure": name, abstract, maintainer,
# license, provides, meta-spec, version)
for my $k (qw(name abstract maintainer license provides meta-spec version))
{
	ok(exists $meta->{$k}, "META.json has \"$k\"");
}
like($meta->{name} // '', qr{^[^\s/\\]{2,}$}, 'name: two or more characters, no slash, backslash or space');
ok(is_str($meta->{abstract}), 'abstract is a string');
like($meta->{version} // '', $semver, 'version is a semantic version');
my $m = $meta->{maintainer};
ok(is_str($m) || (ref $m eq 'ARRAY' && @$m && !grep { !is_str($_) } @$m),
	'maintainer is a string or a list of strings');
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd
	freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
	mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted
	unrestricted unknown);
is($meta->{license}, 'postgresql', 'license is "postgresql"');
ok($licenses{$meta->{license} // ''}, 'license is one of the spec\'s names');
is(ref $meta->{'meta-spec'}, 'HASH', 'meta-spec is an object');
is($meta->{'meta-spec'}{version}, '1.0.0', 'meta-spec version 1.0.0');
ok(!defined $meta->{'meta-spec'}{url} || is_str($meta->{'meta-spec'}{url}), 'meta-spec url is a string');

# provides: extension name => {file (exists), version (semver)}
is(ref $meta->{provides}, 'HASH', 'provides is an object');
my $p = ref $meta->{provides} eq 'HASH' ? $meta->{provides}{execlog} : undef;
is(ref $p, 'HASH', 'provides execlog');
$p //= {};
ok(is_str($p->{file}) && -f "$root/$p->{file}", 'provides execlog: file exists in the tree');
like($p->{version} // '', $semver, 'provides execlog: version is a semantic version');
is($p->{version}, $meta->{version}, 'provides execlog: same version as the distribution');
ok(!defined $p->{docfile} || -f "$root/$p->{docfile}", 'provides execlog: docfile exists');

# prereqs: phase => relationship => {name => version}
my %phases = map { $_ => 1 } qw(configure build test runtime develop);
my %rels = map { $_ => 1 } qw(requires recommends suggests conflicts);
my $pre = $meta->{prereqs} // {};
is(ref $pre, 'HASH', 'prereqs is an object');
my @bad;
for my $phase (sort keys %$pre)
{
	push @bad, "phase $phase" unless $phases{$phase} && ref $pre->{$phase} eq 'HASH';
	next unless ref $pre->{$phase} eq 'HASH';
	for my $rel (sort keys %{ $pre->{$phase} })
	{
		push @bad, "$phase.$rel" unless $rels{$rel} && ref $pre->{$phase}{$rel} eq 'HASH';
		next unless ref $pre->{$phase}{$rel} eq 'HASH';
		for my $name (sort keys %{ $pre->{$phase}{$rel} })
		{
			my $v = $pre->{$phase}{$rel}{$name};
			push @bad, "$phase.$rel.$name" unless is_str($v)
			  && $v =~ /^(?:0|(?:(?:[<>]=?|[=!]=)\s*)?[0-9]+\.[0-9]+\.[0-9]+(?:\s*,\s*(?:[<>]=?|[=!]=)\s*[0-9]+\.[0-9]+\.[0-9]+)*)$/;
		}
	}
}
is_deeply(\@bad, [], 'prereqs: known phases and relationships, version ranges');
like($pre->{runtime}{requires}{PostgreSQL} // '', qr/^15\.0\.0$/, 'runtime requires PostgreSQL 15.0.0');

# resources
my $r = $meta->{resources} // {};
is(ref $r, 'HASH', 'resources is an object');
ok(!defined $r->{homepage} || is_str($r->{homepage}), 'resources homepage is a string');
ok(!defined $r->{bugtracker} || (ref $r->{bugtracker} eq 'HASH'
	&& !grep { !/^(web|mailto|[xX]_.+)$/ } keys %{ $r->{bugtracker} }), 'resources bugtracker: web/mailto');
ok(!defined $r->{repository} || (ref $r->{repository} eq 'HASH'
	&& !grep { !/^(url|web|type|[xX]_.+)$/ } keys %{ $r->{repository} }), 'resources repository: url/web/type');
like($meta->{release_status} // 'stable', qr/^(stable|testing|unstable)$/, 'release_status');

# only keys of the spec, or custom x_ keys
my %known = map { $_ => 1 } qw(name abstract description version maintainer license provides
	prereqs release_status resources generated_by tags no_index meta-spec);
is_deeply([ grep { !$known{$_} && !/^[xX]_/ } sort keys %$meta ], [], 'no unknown top-level keys');

# one version everywhere
my ($mk) = slurp('Makefile') =~ /^EXECLOG_VERSION\s*=\s*(\S+)/m;
my ($ctl) = slurp('execlog.control') =~ /^default_version\s*=\s*'([^']+)'/m;
my ($deb) = slurp('debian/changelog') =~ /^execlog \(([^)-]+)/;
is($ctl, $mk, 'execlog.control default_version = Makefile EXECLOG_VERSION');
is($meta->{version}, "$mk.0", 'META.json version = EXECLOG_VERSION.0');
is($deb, "$mk.0", 'debian/changelog version = EXECLOG_VERSION.0');
like(slurp('CHANGELOG.md'), qr/^## \Q$mk\E\b/m, 'CHANGELOG.md has a section for the version');

done_testing();
