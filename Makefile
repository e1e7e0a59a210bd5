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

.PHONY: client install-client test demo bench test-matrix deb dist

client:
	cmake -S client -B $(CLIENT_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(CLIENT_BUILD) -j2

# make install installs the client too; WITH_CLIENT=no installs the
# extension alone (the Debian packaging installs the client with CMake).
WITH_CLIENT ?= yes
ifeq ($(WITH_CLIENT),yes)
install: install-client
endif
install-client: client
	cmake --install $(CLIENT_BUILD) >/dev/null

test:
	scripts/test.sh

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

# The version matrix beyond this machine (PostgreSQL 17 and 18 in Debian 13
# and testing chroots) and the Debian package test; see scripts/matrix.sh.
test-matrix:
	scripts/matrix.sh

# Debian packages of the extension, the client library and the CLI, in build/deb.
deb:
	scripts/deb.sh

# The PGXN release: a tarball of the committed tree at the current version.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
dist:
	scripts/check-version.sh
	@git diff --quiet HEAD || echo "dist: uncommitted changes are not in the tarball"
	mkdir -p build/dist
	git archive --format=tar.gz --prefix=$(EXTENSION)-$(EXTVERSION)/ -o build/dist/$(EXTENSION)-$(EXTVERSION).tar.gz HEAD
	@echo build/dist/$(EXTENSION)-$(EXTVERSION).tar.gz
