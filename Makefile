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
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
SHLIB_LINK += -lcurl
PG_CPPFLAGS = -Isrc -DEXECLOG_VERSION='"$(EXECLOG_VERSION)"'
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror=implicit-function-declaration

# pg_regress and isolation tests run on a private cluster with execlog
# preloaded (test/execlog.conf); workers are off there, so the status
# machine can be driven by hand.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=test/execlog.conf --temp-instance=./tmp_check
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --temp-config=test/execlog.conf --temp-instance=./tmp_check_iso \
	--inputdir=test --outputdir=test/output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every module includes the shared headers
$(OBJS): $(wildcard src/*.h)

execlog--$(EXECLOG_VERSION).sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

execlog--0.1--$(EXECLOG_VERSION).sql: $(sort $(wildcard src/sql/update/0.1--$(EXECLOG_VERSION)/*.sql))
	cat $^ > $@
