# firesync - keeps MySQL tables in step with Firestore collections. See README.md.
#
#   make            build ./firesync (optimised, -Werror)
#   make check      install missing Debian packages, build the ASan+UBSan variant, run every
#                   unit and integration test; the last line is "N passed, N failed"
#   make soak       the convergence test under faults for SOAK_MINUTES (default 30)
#   make demo       the guided tour on a private MariaDB and the Firestore emulator
#   make fuzz       build the libFuzzer targets with clang (FUZZ_SECONDS=N runs each for N s)
#   make install    PREFIX=/usr/local DESTDIR= SYSCONFDIR=/etc
#   make deps       install the Debian packages firesync needs (only the missing ones)

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/firesync
DESTDIR    ?=

CC      ?= cc
FUZZCC  ?= clang
PKGS    := libcurl libcjson libmariadb libuv openssl libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
          -Wpointer-arith -Wvla -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
BASE   := -std=c11 -D_GNU_SOURCE -I. $(WARN) $(PKG_CFLAGS) -MMD -MP
REL_CFLAGS  := $(BASE) -O2 -g
ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS := $(BASE) -O1 -g $(ASAN_FLAGS)
LIBS := $(PKG_LIBS) -lpthread -lm

MODULES   := common agent firestore mysql diff
LIB_SRC   := $(filter-out agent/main.c,$(wildcard $(addsuffix /*.c,$(MODULES))))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
HARN_SRC  := $(wildcard tests/harness/*.c tests/fake/*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)

REL  := build/rel
ASAN := build/asan
FUZZ := build/fuzz

REL_OBJ   := $(LIB_SRC:%.c=$(REL)/%.o)
ASAN_OBJ  := $(LIB_SRC:%.c=$(ASAN)/%.o)
HARN_OBJ  := $(filter-out $(ASAN)/tests/harness/svcctl.o,$(HARN_SRC:%.c=$(ASAN)/%.o))
UNIT_BIN  := $(UNIT_SRC:%.c=$(ASAN)/%)
INTEG_BIN := $(INTEG_SRC:%.c=$(ASAN)/%)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ)/%)

.PHONY: all check test-build deps demo fuzz install uninstall clean format
.DEFAULT_GOAL := all

all: firesync

firesync: $(REL)/agent/main.o $(REL)/libfiresync.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(LIBS)

$(REL)/libfiresync.a: $(REL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c -o $@ $<

# ---- sanitizer build and tests -------------------------------------------------------------

$(ASAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

$(ASAN)/libfiresync.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(ASAN)/firesync: $(ASAN)/agent/main.o $(ASAN)/libfiresync.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS)

$(ASAN)/tests/unit/%: $(ASAN)/tests/unit/%.o $(ASAN)/libfiresync.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(TEST_LIBS) $(LIBS)

$(ASAN)/tests/integration/%: $(ASAN)/tests/integration/%.o $(HARN_OBJ) $(ASAN)/libfiresync.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(TEST_LIBS) $(LIBS)

$(ASAN)/tests/harness/svcctl: $(ASAN)/tests/harness/svcctl.o $(HARN_OBJ) $(ASAN)/libfiresync.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS)

test-build: $(ASAN)/firesync $(UNIT_BIN) $(INTEG_BIN) $(ASAN)/tests/harness/svcctl

check: deps
	$(MAKE) test-build
	FIRESYNC_BIN=$(CURDIR)/$(ASAN)/firesync tests/run.sh $(ASAN)

# The convergence test's long run (tests/integration/test_converge.c): the random workload and
# faults for SOAK_MINUTES (default 30); SOAK_SEED replays a run.
SOAK_MINUTES ?= 30
SOAK_SEED    ?=
.PHONY: soak
soak: deps
	$(MAKE) test-build
	scripts/soak.sh $(SOAK_MINUTES) $(SOAK_SEED)

# ---- benchmarks ----------------------------------------------------------------------------
# `make bench` builds tests/bench/bench_*.c with the release flags (-O2), links them against the
# release library, and runs scripts/bench.sh: one table of figures against their aims. Speed and
# memory targets live here, never in timed unit tests; benchmarks print figures, not verdicts.

BENCH     := build/bench
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_OBJ := $(BENCH_SRC:%.c=$(REL)/%.o)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BENCH)/%)

.PHONY: bench
.SECONDARY: $(BENCH_OBJ) $(BENCH_HARN)

# Benchmarks that need real services start them through the test harness (svc.c, agent_util.c)
# and the fake Firestore server (fake_fs.c); every benchmark links them, built with -O2.
BENCH_HARN := $(REL)/tests/harness/svc.o $(REL)/tests/harness/agent_util.o \
              $(REL)/tests/fake/fake_fs.o

$(BENCH)/%: $(REL)/tests/bench/%.o $(BENCH_HARN) $(REL)/libfiresync.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(LIBS)

bench: $(BENCH_BIN)
	scripts/bench.sh $(BENCH)

# ---- everything else -----------------------------------------------------------------------

deps:
	@scripts/deps.sh

demo: deps
	$(MAKE) firesync $(ASAN)/tests/harness/svcctl
	scripts/demo.sh

$(FUZZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZCC) $(BASE) -Wno-unknown-warning-option -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ)/fuzz_%: $(FUZZ)/tests/fuzz/fuzz_%.o $(LIB_SRC:%.c=$(FUZZ)/%.o)
	$(FUZZCC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

fuzz: $(FUZZ_BIN)
	@if [ -n "$(FUZZ_SECONDS)" ]; then scripts/fuzz.sh $(FUZZ) $(FUZZ_SECONDS); fi

install: firesync
	install -D -m 0755 firesync $(DESTDIR)$(BINDIR)/firesync
	install -D -m 0644 config.example.toml $(DESTDIR)$(SYSCONFDIR)/firesync/config.example.toml
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	mkdir -p $(DESTDIR)$(UNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|/usr/local/share/doc/firesync|$(DOCDIR)|g' \
	    -e 's|/etc/firesync|$(SYSCONFDIR)/firesync|g' \
	    systemd/firesync.service.in > $(DESTDIR)$(UNITDIR)/firesync.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/firesync.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/firesync $(DESTDIR)$(SYSCONFDIR)/firesync/config.example.toml \
	      $(DESTDIR)$(UNITDIR)/firesync.service $(DESTDIR)$(DOCDIR)/README.md

format:
	clang-format -i $(LIB_SRC) agent/main.c $(wildcard */*.h tests/*/*.[ch])

clean:
	rm -rf build firesync

-include $(shell find build -name '*.d' 2>/dev/null)
