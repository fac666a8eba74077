# tests/tests.mk - build rules for the tests, included by the top Makefile.
#
#   make tests      the unit tests into $(BUILD)/tests/test-*, and the broken
#                   plugins of the loader tests into $(BUILD)/tests/plugins/
#
# The runner (tests/run) runs each $(BUILD)/tests/test-* with
# CMOCKA_MESSAGE_OUTPUT=TAP, DAGD_TEST_PLUGIN_DIR=$(BUILD)/plugins and
# DAGD_TEST_BROKEN_DIR=$(BUILD)/tests/plugins.

TEST_CFLAGS = $(shell pkg-config --cflags cmocka) -DDAGD_TEST_BUILD='"$(BUILD)"'
TEST_LDLIBS = $(shell pkg-config --libs cmocka)

# the local executor's, driven by the host of tests/unit/local-harness.c
UNIT_TESTS     = local local-helper local-options
BROKEN_PLUGINS = notso nosym badabi smallsize initfail
# plugins that run nothing (the scheduler alone), built for this header's
# version and, from the same source, for version 1 (the ABI's backward
# compatibility); one whose sandboxes run until reported (the benchmark of
# task.complete)
TEST_PLUGINS_OK = noop noop-v1 linger

UNIT_TEST_BINS  = $(patsubst %,$(BUILD)/tests/test-%,$(UNIT_TESTS))
BROKEN_PLUGIN_SOS = $(patsubst %,$(BUILD)/tests/plugins/%.so,$(BROKEN_PLUGINS) $(TEST_PLUGINS_OK))

tests: $(UNIT_TEST_BINS) $(BROKEN_PLUGIN_SOS) $(PLUGIN_SOS) $(PLUGIN_PROGS)

$(UNIT_TEST_BINS): $(BUILD)/tests/test-%: tests/unit/test-%.c tests/unit/local-harness.c tests/unit/local-harness.h plugins/executor.h Makefile tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -o $@ $< tests/unit/local-harness.c $(TEST_LDLIBS) $(LDLIBS)

# not a shared object at all
$(BUILD)/tests/plugins/notso.so: tests/tests.mk
	@mkdir -p $(dir $@)
	printf 'This is a text file, not a shared object.\n' > $@

# noop.c once more, as a version-1 plugin
$(BUILD)/tests/plugins/noop-v1.so: tests/plugins/noop.c plugins/executor.h Makefile tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DNOOP_V1 -fPIC -shared $(LDFLAGS) -o $@ $<

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c plugins/executor.h Makefile tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $<

# The daemon's own unit tests: linked with every daemon object but main.o,
# and tests/unit/unit.c, their harness.
DAEMON_UNIT_TESTS = engine store store-state store-vfs protocol json-strict jw lifecycle idset queue trigger template names
DAEMON_LIB_OBJS   = $(filter-out $(BUILD)/daemon/main.o,$(DAEMON_OBJS))
DAEMON_TEST_BINS  = $(patsubst %,$(BUILD)/tests/test-%,$(DAEMON_UNIT_TESTS))

tests: $(DAEMON_TEST_BINS)

$(DAEMON_TEST_BINS): $(BUILD)/tests/test-%: tests/unit/test-%.c tests/unit/unit.c tests/unit/unit.h $(DAEMON_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -Idaemon $(LDFLAGS) -o $@ $< tests/unit/unit.c $(DAEMON_LIB_OBJS) $(TEST_LDLIBS) $(LDLIBS)

# The docker executor's unit tests: linked with the plugin's sources that
# need no engine (the log frames, the options), not with the plugin.
DOCKER_UNIT_TESTS = docker-frames docker-options
DOCKER_UNIT_SRCS  = plugins/docker/frames.c plugins/docker/options.c plugins/common/util.c
DOCKER_TEST_BINS  = $(patsubst %,$(BUILD)/tests/test-%,$(DOCKER_UNIT_TESTS))

tests: $(DOCKER_TEST_BINS) $(BUILD)/dagctl-static

$(DOCKER_TEST_BINS): $(BUILD)/tests/test-%: tests/unit/test-%.c $(DOCKER_UNIT_SRCS) plugins/docker/docker.h plugins/common/common.h plugins/executor.h Makefile tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -Iplugins/docker $(LDFLAGS) -o $@ $< $(DOCKER_UNIT_SRCS) $(TEST_LDLIBS) $(LDLIBS)

# The daytona executor's unit tests: its options, with the helpers it shares
# with the docker executor.
DAYTONA_UNIT_SRCS = plugins/daytona/options.c plugins/common/util.c
DAYTONA_TEST_BINS = $(BUILD)/tests/test-daytona-options

tests: $(DAYTONA_TEST_BINS)

$(DAYTONA_TEST_BINS): $(BUILD)/tests/test-%: tests/unit/test-%.c $(DAYTONA_UNIT_SRCS) plugins/daytona/daytona.h plugins/common/common.h plugins/executor.h Makefile tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -Iplugins/daytona $(LDFLAGS) -o $@ $< $(DAYTONA_UNIT_SRCS) $(TEST_LDLIBS) $(LDLIBS)

# The slurm executor's unit tests: its options, the job they define and its
# wrapper script run under /bin/sh, what the tools say; linked with the
# plugin's sources (check_options() is called through dagd_executor).
SLURM_UNIT_SRCS = plugins/slurm/executor.c plugins/slurm/slurm.c plugins/slurm/options.c \
	plugins/slurm/spool.c plugins/slurm/tools.c plugins/common/util.c plugins/common/child.c
SLURM_TEST_BINS = $(BUILD)/tests/test-slurm-options

tests: $(SLURM_TEST_BINS)

$(SLURM_TEST_BINS): $(BUILD)/tests/test-%: tests/unit/test-%.c $(SLURM_UNIT_SRCS) plugins/slurm/slurm.h plugins/common/common.h plugins/executor.h Makefile tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -Iplugins/slurm $(LDFLAGS) -o $@ $< $(SLURM_UNIT_SRCS) $(TEST_LDLIBS) $(LDLIBS)
