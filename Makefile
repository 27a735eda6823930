# execlog: PGXS build
MODULE_big = execlog
EXTENSION = execlog
# Versions (README, "Releases and upgrades"): a released version's full
# install script is committed and never edited again (execlog--0.1.sql).
# The version under development is assembled from src/sql/*.sql, in name
# order, and its upgrade script from the previous release from
# src/sql/update/<from>--<to>/*.sql.
EXECLOG_VERSION = 0.2
DATA = execlog--0.1.sql
DATA_built = execlog--$(EXECLOG_VERSION).sql execlog--0.1--$(EXECLOG_VERSION).sql
# Sources are found through $(srcdir), so that a VPATH build (Debian's
# pg_buildext builds in build-<version>/) compiles them too; objects go to
# the build directory's src/.
OBJS = $(patsubst $(srcdir)/%.c,%.o,$(sort $(wildcard $(srcdir)/src/*.c)))
SHLIB_LINK += -lcurl
PG_CPPFLAGS = -I$(srcdir)/src -DEXECLOG_VERSION='"$(EXECLOG_VERSION)"'
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror=implicit-function-declaration

# pg_regress and isolation tests run on a private cluster with execlog
# preloaded (test/execlog.conf); workers are off there, so the status
# machine can be driven by hand.
# `make installcheck` runs both; `make prove_installcheck` runs the TAP
# suite (test/t/*.pl; PROVE_TESTS="t/010_engine.pl ..." picks some).
REGRESS = $(patsubst $(srcdir)/sql/%.sql,%,$(sort $(wildcard $(srcdir)/sql/*.sql)))
REGRESS_OPTS = --temp-config=$(srcdir)/test/execlog.conf --temp-instance=./tmp_check
ISOLATION = $(patsubst $(srcdir)/test/specs/%.spec,%,$(sort $(wildcard $(srcdir)/test/specs/*.spec)))
ISOLATION_OPTS = --temp-config=$(srcdir)/test/execlog.conf --temp-instance=./tmp_check_iso \
	--inputdir=$(srcdir)/test --outputdir=test/output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every module includes the shared headers
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# a VPATH build writes its objects to the build directory's src/
ifneq ($(VPATH),)
$(shell mkdir -p src test)
endif

# PostgreSQL's CFLAGS were chosen for gcc: with CC=clang drop the flags
# clang does not know, so that the build stays warning-free
ifneq ($(findstring clang,$(CC)),)
override CFLAGS := $(filter-out -Wimplicit-fallthrough=3 -Wno-format-truncation \
	-Wno-stringop-truncation -fexcess-precision=standard,$(CFLAGS)) \
	-Wimplicit-fallthrough -Wno-ignored-attributes
endif

execlog--$(EXECLOG_VERSION).sql: $(sort $(wildcard $(srcdir)/src/sql/*.sql))
	cat $^ > $@

execlog--0.1--$(EXECLOG_VERSION).sql: $(sort $(wildcard $(srcdir)/src/sql/update/0.1--$(EXECLOG_VERSION)/*.sql))
	cat $^ > $@

EXTRA_CLEAN = execlog-$(EXECLOG_VERSION).0.tar.gz

# TAP suite against the installed extension (pgvector's pattern); the tests
# run in test/, where ExeclogTest.pm and the test servers live.
.PHONY: prove_installcheck
prove_installcheck:
	rm -rf '$(abspath $(srcdir))/test/tmp_check'
	cd $(srcdir)/test && TESTDIR='$(abspath $(srcdir))/test' PATH="$(bindir):$$PATH" \
		EXECLOG_SRC='$(abspath $(srcdir))' PGPORT='6$(DEF_PGPORT)' \
		PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
		$(PROVE) $(PG_PROVE_FLAGS) -I . $(PROVE_FLAGS) $(if $(PROVE_TESTS),$(PROVE_TESTS),t/*.pl)

# Release tarball of the committed tree (PGXN takes a .zip or .tar.gz).
DIST_VERSION = $(EXECLOG_VERSION).0
.PHONY: dist
dist:
	git -C $(srcdir) archive --format=tar.gz --prefix=execlog-$(DIST_VERSION)/ \
		-o $(abspath .)/execlog-$(DIST_VERSION).tar.gz HEAD
