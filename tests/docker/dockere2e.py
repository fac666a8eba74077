"""dockere2e - what the end-to-end tests of the docker executor share.

env() is the engine and test image (see dockertest); a test without an engine
is skipped, and fails instead when DAGD_REQUIRE_DOCKER=1.  daemon() starts a
dagd whose docker executor talks to that engine.  @docker_test registers a
test like dagdtest's @test and, whatever happens, removes the containers of
the daemons it started.
"""

import functools
import json
import os

import dagdtest
import dockertest

DAGCTL_STATIC = os.environ.get("DAGCTL_STATIC_BIN",
                               os.path.join(os.path.dirname(dagdtest.DAGCTL), "dagctl-static"))

_env = None
_instances = []         # the instance labels of the daemons of the current test


def env():
    """(Api, image name); skips (or fails, when required) without an engine."""
    global _env
    if _env is None:
        try:
            sock = dockertest.engine()
        except dockertest.EngineUnavailable as e:
            if dockertest.required():
                raise AssertionError(f"DAGD_REQUIRE_DOCKER=1, but there is no Docker engine: {e}")
            dagdtest.skip(f"no Docker engine: {e}")
        _env = (dockertest.Api(sock), dockertest.image(sock, DAGCTL_STATIC))
    return _env


def api():
    return env()[0]


def image():
    return env()[1]


def remove_containers(instance):
    for c in api().containers(**{"dagd.instance": instance}):
        api().remove(c["Id"])


def docker_test(fn=None, *, timeout=120):
    """@test, then the containers of the test's daemons removed."""
    def register(f):
        @functools.wraps(f)
        def run():
            try:
                f()
            finally:
                if _env is not None:
                    for instance in _instances:
                        remove_containers(instance)
                _instances.clear()
        return dagdtest.test(run, timeout=timeout)
    return register(fn) if fn else register


def daemon(kill_grace=1, args=(), start=True, **options):
    """A dagd whose docker executor has these options (and the engine's socket)."""
    opts = {"socket": api().sock}
    opts.update(options)
    d = dagdtest.Daemon(args=["--executor-options", "docker=" + json.dumps(opts),
                              "--kill-grace", str(kill_grace)] + list(args))
    _instances.append(d.state_dir)
    return d.start() if start else d


def project(d, autonomous=True, max_concurrency=5, **options):
    """A project of d whose tasks run in containers of the test image."""
    return d.project(executor="docker", executor_options=dict({"image": image()}, **options),
                     autonomous=autonomous, max_concurrency=max_concurrency)


def containers(d, **labels):
    """The containers of d (any state) with these dagd.* labels, e.g. task="t-1"."""
    want = {"dagd.instance": d.state_dir}
    want.update({f"dagd.{k}": v for k, v in labels.items()})
    return api().containers(**want)


def container_of(d, task_id, timeout=30):
    """The id of the container of the task's running attempt, once there is one."""
    return dagdtest.wait_for(lambda: [c["Id"] for c in containers(d, task=task_id)
                                      if c["State"] == "running"],
                             timeout=timeout, what=f"a running container of {task_id}")[0]


def wait_no_containers(d, timeout=15, **labels):
    """Wait until d has no container with these labels."""
    dagdtest.wait_for(lambda: not containers(d, **labels), timeout=timeout,
                      what=f"no container of the daemon with labels {labels}"
                      f" (left: {[(c['Names'], c['State']) for c in containers(d, **labels)]})")


def wait_exited(cid, timeout=30):
    """Wait until the container has stopped; returns its inspection."""
    return dagdtest.wait_for(lambda: (lambda i: i if i and i["State"]["Status"] == "exited" else None)(
        api().inspect(cid)), timeout=timeout, what=f"container {cid[:12]} to exit")


def log_text(d, task_id, attempt=None):
    args = {"task_id": task_id}
    if attempt:
        args["attempt"] = attempt
    return "\n".join(d.call("task.logs", **args)["lines"])


def sleep_until(path):
    """A shell fragment that waits, inside a container, until path exists."""
    return f"while [ ! -e {path} ]; do sleep 0.1; done"


def touch(path):
    with open(path, "w"):
        pass
