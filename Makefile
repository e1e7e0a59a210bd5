EXTENSION = coherence
MODULE_big = coherence
OBJS = $(patsubst %.c,%.o,$(wildcard extension/*.c))
DATA = $(wildcard extension/*--*.sql)

TESTS = $(wildcard sql/*.sql)
REGRESS = $(patsubst sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(wildcard test/isolation/specs/*.spec))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=$(EXTENSION)

EXTRA_CLEAN = build

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every C file includes the shared headers; PGXS does not track that itself.
$(OBJS): extension/coherence.h extension/compat.h

# Everything below drives the C++ client and the two-command workflow; the
# extension itself builds, installs and tests the plain PGXS way above.
CLIENT_BUILD = build/client

.PHONY: client install-client test demo bench

client:
	cmake -S client -B $(CLIENT_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(CLIENT_BUILD) -j2

install: install-client
install-client: client
	cmake --install $(CLIENT_BUILD) >/dev/null

test:
	scripts/test.sh

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh
