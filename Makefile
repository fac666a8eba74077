# dagd - build, test, install.
#
#   make            the daemon, dagctl and the plugins, into build/
#   make check      the whole test suite, built with ASan and UBSan into build/san/
#   make bench      the benchmarks (no pass or fail; figures only)
#   make demo       run an example DAG on a private daemon
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
PLUGINDIR  ?= $(LIBDIR)/dagd/plugins
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
UNITDIR    ?= $(PREFIX)/lib/systemd/system

BUILD ?= build
SAN   ?=
CC    ?= cc
VERSION = 0.1.0

PKGS     = libsystemd json-c sqlite3 libcurl
CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 \
	   -Wmissing-prototypes -Wstrict-prototypes -fno-strict-aliasing -D_GNU_SOURCE \
	   -DDAGD_VERSION='"$(VERSION)"' -DDAGD_PLUGINDIR='"$(PLUGINDIR)"' \
	   -Iplugins $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -ldl -lm
ifneq ($(SAN),)
override CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=address,undefined
endif

DAEMON_SRCS = \
	daemon/main.c \
	daemon/server.c \
	daemon/cmd.c \
	daemon/cmd-project.c \
	daemon/cmd-task.c \
	daemon/cmd-task-complete.c \
	daemon/cmd-events.c \
	daemon/cmd-daemon.c \
	daemon/engine.c \
	daemon/store.c \
	daemon/plugin.c \
	daemon/json-util.c \
	daemon/util.c \
	$(BUILD)/schema.c

CTL_SRCS = \
	ctl/dagctl.c \
	ctl/ctl-client.c \
	ctl/ctl-output.c \
	ctl/ctl-project.c \
	ctl/ctl-task.c \
	ctl/ctl-complete.c \
	ctl/ctl-apply.c \
	ctl/ctl-events.c \
	ctl/ctl-daemon.c

PLUGINS = local
TEST_PLUGINS =

SCHEMA = $(sort $(wildcard schema/*.sql))

DAEMON_OBJS = $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(BUILD)/%,$(DAEMON_SRCS))) $(BUILD)/schema.o
CTL_OBJS    = $(patsubst %.c,$(BUILD)/%.o,$(CTL_SRCS))
PLUGIN_SOS  = $(patsubst %,$(BUILD)/plugins/%.so,$(PLUGINS))

all: $(BUILD)/dagd $(BUILD)/dagctl $(PLUGIN_SOS)

$(BUILD)/%.o: %.c daemon/dagd.h ctl/dagctl.h plugins/executor.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/schema.c: $(SCHEMA) schema/embed.sh
	@mkdir -p $(dir $@)
	sh schema/embed.sh $(SCHEMA) > $@

$(BUILD)/schema.o: $(BUILD)/schema.c
	$(CC) $(CFLAGS) -Idaemon -c -o $@ $<

$(BUILD)/dagd: $(DAEMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/dagctl: $(CTL_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/plugins/%.so: plugins/%/*.c plugins/executor.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $(filter %.c,$^) $(shell pkg-config --libs libsystemd json-c)

-include tests/tests.mk

check:
	$(MAKE) BUILD=build/san SAN=1 all tests
	tests/run build/san

bench: all
	tests/bench/run $(BUILD)

demo: all
	tests/examples/demo $(BUILD)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PLUGINDIR) \
		$(DESTDIR)$(INCLUDEDIR)/dagd $(DESTDIR)$(DATADIR)/dagd/schema $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/dagd $(DESTDIR)$(SBINDIR)/dagd
	install -m 0755 $(BUILD)/dagctl $(DESTDIR)$(BINDIR)/dagctl
	install -m 0755 $(PLUGIN_SOS) $(DESTDIR)$(PLUGINDIR)/
	install -m 0644 plugins/executor.h $(DESTDIR)$(INCLUDEDIR)/dagd/executor.h
	install -m 0644 $(SCHEMA) $(DESTDIR)$(DATADIR)/dagd/schema/
	install -m 0644 units/dagd.socket units/dagd.service $(DESTDIR)$(UNITDIR)/

clean:
	rm -rf build

.PHONY: all check bench demo install clean tests

# libFuzzer targets (clang): build/fuzz/fuzz-line
FUZZ_BUILD = build/fuzz
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) SAN=1 CC=clang \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" $(FUZZ_BUILD)/fuzz-line

$(FUZZ_BUILD)/fuzz-line: tests/fuzz/fuzz-line.c $(filter-out $(BUILD)/daemon/main.o,$(DAEMON_OBJS))
	$(CC) $(CFLAGS) -Idaemon -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

.PHONY: fuzz
