# firesync - keeps MySQL tables in step with Firestore collections. See README.md.
#
#   make            build ./firesync (optimised, -Werror)
#   make check      install missing Debian packages, build the ASan+UBSan variant, run every
#                   unit and integration test; the last line is "N passed, N failed"
#   make demo       the guided tour on a private MariaDB and the Firestore emulator
#   make fuzz       build the libFuzzer targets with clang (FUZZ_SECONDS=N runs each for N s)
#   make install    PREFIX=/usr/local DESTDIR= SYSCONFDIR=/etc
#   make deps       install the Debian packages firesync needs (only the missing ones)

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
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

# ---- everything else -----------------------------------------------------------------------

deps:
	@scripts/deps.sh

demo: deps
	$(MAKE) firesync $(ASAN)/tests/harness/svcctl
	scripts/demo.sh

$(FUZZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZCC) $(BASE) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ)/fuzz_%: $(FUZZ)/tests/fuzz/fuzz_%.o $(LIB_SRC:%.c=$(FUZZ)/%.o)
	$(FUZZCC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

fuzz: $(FUZZ_BIN)
	@if [ -n "$(FUZZ_SECONDS)" ]; then scripts/fuzz.sh $(FUZZ) $(FUZZ_SECONDS); fi

install: firesync
	install -D -m 0755 firesync $(DESTDIR)$(BINDIR)/firesync
	install -D -m 0644 config.example.toml $(DESTDIR)$(SYSCONFDIR)/firesync/config.example.toml

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/firesync $(DESTDIR)$(SYSCONFDIR)/firesync/config.example.toml

format:
	clang-format -i $(LIB_SRC) agent/main.c $(wildcard */*.h tests/*/*.[ch])

clean:
	rm -rf build firesync

-include $(shell find build -name '*.d' 2>/dev/null)
