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
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

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
	daemon/utf8.c \
	daemon/server.c \
	daemon/server-follow.c \
	daemon/server-retry.c \
	daemon/server-socket.c \
	daemon/cmd.c \
	daemon/cmd-project.c \
	daemon/cmd-task.c \
	daemon/cmd-task-complete.c \
	daemon/cmd-task-lifecycle.c \
	daemon/cmd-events.c \
	daemon/cmd-daemon.c \
	daemon/cmd-task-approve.c \
	daemon/cmd-pool.c \
	daemon/engine.c \
	daemon/event-record.c \
	daemon/engine-project.c \
	daemon/engine-task.c \
	daemon/engine-add.c \
	daemon/engine-batch.c \
	daemon/engine-queue.c \
	daemon/engine-dispatch.c \
	daemon/engine-spec.c \
	daemon/engine-sandbox.c \
	daemon/engine-load.c \
	daemon/engine-lifecycle.c \
	daemon/engine-attempts.c \
	daemon/engine-pools.c \
	daemon/engine-approval.c \
	daemon/engine-trigger.c \
	daemon/trigger.c \
	daemon/engine-inputs.c \
	daemon/engine-map.c \
	daemon/engine-def.c \
	daemon/engine-mem.c \
	daemon/engine-event.c \
	daemon/template.c \
	daemon/names.c \
	daemon/idset.c \
	daemon/jw.c \
	daemon/closest.c \
	daemon/store.c \
	daemon/store-load.c \
	daemon/store-attempts.c \
	daemon/store-map.c \
	daemon/store-events.c \
	daemon/store-state.c \
	daemon/store-vfs.c \
	daemon/plugin.c \
	daemon/plugin-copy.c \
	daemon/json-util.c \
	daemon/json-strict.c \
	daemon/json-build.c \
	daemon/util.c \
	daemon/notify.c \
	daemon/logs.c \
	$(BUILD)/schema.c

CTL_SRCS = \
	ctl/dagctl.c \
	ctl/ctl-client.c \
	ctl/ctl-socket.c \
	ctl/ctl-output.c \
	ctl/ctl-project.c \
	ctl/ctl-task.c \
	ctl/ctl-complete.c \
	ctl/ctl-apply.c \
	ctl/ctl-apply-text.c \
	ctl/ctl-apply-update.c \
	ctl/ctl-events.c \
	ctl/ctl-daemon.c \
	ctl/ctl-follow.c \
	ctl/ctl-view.c \
	ctl/ctl-screen.c \
	ctl/ctl-logs.c \
	ctl/ctl-board.c \
	ctl/ctl-board-draw.c \
	ctl/ctl-graph.c \
	ctl/ctl-wait.c \
	ctl/ctl-names.c \
	ctl/ctl-scan.c \
	ctl/ctl-approval.c \
	ctl/ctl-pool.c \
	daemon/closest.c \
	daemon/utf8.c \
	ctl/ctl-lifecycle.c

# dagctl web, with its page compiled in; libmicrohttpd is loaded when it
# starts (ctl/web-mhd.c), only its header is needed to build; the static
# dagctl goes without it (ctl/web-none.c)
WEB_SRCS = ctl/web.c ctl/web-http.c ctl/web-api.c ctl/web-sse.c ctl/web-mhd.c
WEB_FILES = ctl/web/index.html ctl/web/app.css ctl/web/app.js ctl/web/pages.js ctl/web/graph.js

PLUGINS = local docker daytona slurm
TEST_PLUGINS =

SCHEMA = $(sort $(wildcard schema/*.sql))

DAEMON_OBJS = $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(BUILD)/%,$(DAEMON_SRCS))) $(BUILD)/schema.o

.DEFAULT_GOAL := all

# The paths compiled in: a build for another PREFIX recompiles what uses them.
$(BUILD)/paths.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(PLUGINDIR)' | cmp -s - $@ || echo '$(PLUGINDIR)' > $@
$(BUILD)/daemon/main.o: $(BUILD)/paths.stamp
.PHONY: FORCE
CTL_OBJS    = $(patsubst %.c,$(BUILD)/%.o,$(CTL_SRCS) $(WEB_SRCS)) $(BUILD)/web-assets.o
PLUGIN_SOS  = $(patsubst %,$(BUILD)/plugins/%.so,$(PLUGINS))
# programs a plugin runs, installed beside it
PLUGIN_PROGS = $(BUILD)/plugins/local-helper

all: $(BUILD)/dagd $(BUILD)/dagctl $(PLUGIN_SOS) $(PLUGIN_PROGS) $(BUILD)/dagctl-static

# the local executor's helper: linked statically (but for the sanitizers),
# so that it starts fast and a library upgrade under it changes nothing
LOCAL_HELPER_SRCS = plugins/local/helper/helper.c plugins/local/helper/helper-task.c plugins/local/helper/cgroup.c
$(BUILD)/plugins/local-helper: $(LOCAL_HELPER_SRCS) plugins/local/helper/helper.h plugins/local/proto.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(if $(SAN),,-static) -o $@ $(LOCAL_HELPER_SRCS)

# every header of the daemon: one changed recompiles what may include it
DAGD_HEADERS = $(wildcard daemon/*.h)
$(BUILD)/%.o: %.c $(DAGD_HEADERS) ctl/dagctl.h plugins/executor.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# the list of migrations as of the last build: a file removed (or renamed)
# makes schema.c again, as one changed or added does
SCHEMA_LIST = $(BUILD)/schema.list
$(shell mkdir -p $(BUILD) && echo '$(SCHEMA)' | cmp -s - $(SCHEMA_LIST) || echo '$(SCHEMA)' > $(SCHEMA_LIST))

$(BUILD)/schema.c: $(SCHEMA) schema/embed.sh $(SCHEMA_LIST)
	@mkdir -p $(dir $@)
	sh schema/embed.sh $(SCHEMA) > $@

$(BUILD)/schema.o: $(BUILD)/schema.c
	$(CC) $(CFLAGS) -Idaemon -c -o $@ $<

$(BUILD)/dagd: $(DAEMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/dagctl: $(CTL_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(patsubst %.c,$(BUILD)/%.o,$(WEB_SRCS)): ctl/web.h
$(patsubst %.c,$(BUILD)/%.o,$(WEB_SRCS)): override CFLAGS += $(shell pkg-config --cflags libmicrohttpd)

$(BUILD)/web-assets.c: $(WEB_FILES) ctl/web/embed.sh
	@mkdir -p $(dir $@)
	sh ctl/web/embed.sh $(WEB_FILES) > $@

$(BUILD)/web-assets.o: $(BUILD)/web-assets.c ctl/web.h
	$(CC) $(CFLAGS) $(shell pkg-config --cflags libmicrohttpd) -Ictl -c -o $@ $<

$(BUILD)/plugins/%.so: plugins/%/*.c plugins/executor.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -shared $(LDFLAGS) -o $@ $(filter %.c,$^) $(shell pkg-config --libs libsystemd json-c $(PLUGIN_PKGS_$*)) $(PLUGIN_LIBS_$*)

# What a plugin links beyond libsystemd and json-c, and its own headers.
PLUGIN_PKGS_docker = libcurl
PLUGIN_LIBS_docker = -lm
# What the executors share, compiled into each (the HTTP client, into those
# that speak HTTP).
PLUGIN_COMMON = plugins/common/common.h plugins/common/http.c plugins/common/util.c
$(BUILD)/plugins/local.so: plugins/common/common.h plugins/common/util.c plugins/local/proto.h plugins/local/local.h
$(BUILD)/plugins/docker.so: plugins/docker/docker.h $(PLUGIN_COMMON)
PLUGIN_PKGS_daytona = libcurl
$(BUILD)/plugins/daytona.so: plugins/daytona/daytona.h $(PLUGIN_COMMON)
# the slurm executor drives Slurm's tools: the child runner, no HTTP
$(BUILD)/plugins/slurm.so: plugins/slurm/slurm.h plugins/common/common.h plugins/common/util.c plugins/common/child.c

# dagctl linked statically, to copy into container images (for `dagctl
# complete` from inside a docker sandbox); the same whatever BUILD and SAN are.
$(BUILD)/dagctl-static: $(CTL_SRCS) ctl/web-none.c ctl/dagctl.h Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -D_GNU_SOURCE -DDAGD_VERSION='"$(VERSION)"' $(shell pkg-config --cflags json-c) \
		-static -o $@ $(CTL_SRCS) ctl/web-none.c $(shell pkg-config --libs --static json-c) -lm

-include tests/tests.mk

check:
	$(MAKE) BUILD=build/san SAN=1 all tests
	tests/run build/san

# the engine's absolute figures first, on a machine the others have not
# just loaded (their own are ratios of runs interleaved side by side)
bench: all $(BUILD)/bench/floor $(BUILD)/bench/replyfloor $(BUILD)/bench/reporter $(BUILD)/tests/plugins/noop.so \
		$(BUILD)/tests/plugins/linger.so
	tests/bench/setup
	tests/bench/engine $(BUILD)
	tests/bench/run $(BUILD)
	tests/bench/slurm $(BUILD)

# the floors the local executor (one exec) and task.complete (one durable
# reply) are measured against, and task.complete's clients
$(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

demo: all
	tests/examples/demo $(BUILD)

# The units name the installed binaries.
UNIT_PATHS = -e 's|/usr/local/sbin/dagd|$(SBINDIR)/dagd|g' -e 's|/usr/local/bin/dagctl|$(BINDIR)/dagctl|g' \
	-e 's|/usr/local/lib/dagd/plugins|$(PLUGINDIR)|g'

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PLUGINDIR) \
		$(DESTDIR)$(INCLUDEDIR)/dagd $(DESTDIR)$(DATADIR)/dagd/schema $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 $(BUILD)/dagd $(DESTDIR)$(SBINDIR)/dagd
	install -m 0755 $(BUILD)/dagctl $(DESTDIR)$(BINDIR)/dagctl
	install -m 0755 $(PLUGIN_SOS) $(PLUGIN_PROGS) $(DESTDIR)$(PLUGINDIR)/
	install -D -m 0755 $(BUILD)/dagctl-static $(DESTDIR)$(LIBDIR)/dagd/dagctl-static
	install -m 0644 plugins/executor.h $(DESTDIR)$(INCLUDEDIR)/dagd/executor.h
	install -D -m 0644 plugins/example/example.c $(DESTDIR)$(DATADIR)/doc/dagd/examples/example.c
	install -m 0644 $(SCHEMA) $(DESTDIR)$(DATADIR)/dagd/schema/
	install -d $(DESTDIR)$(DATADIR)/man/man1 $(DESTDIR)$(DATADIR)/man/man7 $(DESTDIR)$(DATADIR)/man/man8 \
		$(DESTDIR)$(DATADIR)/bash-completion/completions
	install -m 0644 ctl/dagctl.1 $(DESTDIR)$(DATADIR)/man/man1/dagctl.1
	install -m 0644 plugins/dagd-executor.7 $(DESTDIR)$(DATADIR)/man/man7/dagd-executor.7
	install -m 0644 daemon/dagd.8 $(DESTDIR)$(DATADIR)/man/man8/dagd.8
	install -m 0644 ctl/dagctl.bash-completion $(DESTDIR)$(DATADIR)/bash-completion/completions/dagctl
	for u in dagd.socket dagd.service; do \
		sed $(UNIT_PATHS) units/$$u > $(DESTDIR)$(UNITDIR)/$$u && \
		sed $(UNIT_PATHS) units/user/$$u > $(DESTDIR)$(USERUNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u $(DESTDIR)$(USERUNITDIR)/$$u || exit 1; \
	done
	@# the system daemon's local tasks run under a helper of their own
	for u in dagd-helper.socket dagd-helper.service; do \
		sed $(UNIT_PATHS) units/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 units/dagd-sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/dagd.conf
	@# dagd.pc, for out-of-tree plugins:
	@#   cc -shared -fPIC -o x.so x.c $$(pkg-config --cflags --libs dagd)
	@#   install x.so $$(pkg-config --variable=plugindir dagd)
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$(INCLUDEDIR)' 'plugindir=$(PLUGINDIR)' '' \
		'Name: dagd' 'Description: dagd executor plugin ABI (<dagd/executor.h>)' \
		'Version: $(VERSION)' 'Requires: libsystemd' 'Cflags: -I$${includedir}' \
		> $(DESTDIR)$(PKGCONFIGDIR)/dagd.pc

clean:
	rm -rf build

.PHONY: all check bench demo install clean tests

# libFuzzer targets (clang): build/fuzz/fuzz-line (request lines) and
# build/fuzz/fuzz-engine (command sequences against the engine, with its
# invariants checked); tests/fuzz/dagd.dict is the protocol's words.
FUZZ_BUILD = build/fuzz
FUZZ_TARGETS = fuzz-line fuzz-engine fuzz-evrec
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) SAN=1 CC=clang \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" $(patsubst %,$(FUZZ_BUILD)/%,$(FUZZ_TARGETS))

$(patsubst %,$(FUZZ_BUILD)/%,$(FUZZ_TARGETS)): $(FUZZ_BUILD)/%: tests/fuzz/%.c $(filter-out $(BUILD)/daemon/main.o,$(DAEMON_OBJS))
	$(CC) $(CFLAGS) -Idaemon -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

.PHONY: fuzz
