"""The example executor (plugins/example/example.c), as a plugin author meets
it: installed by `make install` into a temporary PREFIX, built out of tree
with `pkg-config --cflags --libs dagd` against the installed header only,
loaded into a daemon that runs tasks with it: their output in the log, their
environment and directory, an exit status, a command not found, a cancel
(SIGTERM, then SIGKILL after the grace), a plugin replaced by rename and
reloaded while a task runs, and a restart, after which its task is lost."""

import os
import shutil
import signal
import subprocess
import time

from dagdtest import (Daemon, expect_eq, main, make_install, pid_alive, test, wait_for,
                      workdir)


def build_example(w):
    """make install into w/prefix, then build the installed example into a
    plugin directory of its own; returns (plugin dir, the .so, pkg-config env)."""
    prefix = os.path.join(w, "prefix")
    make_install("", prefix)
    src = os.path.join(prefix, "share/doc/dagd/examples/example.c")
    assert os.path.exists(src), "make install did not install the example plugin"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PKG_CONFIG_PATH": os.path.join(prefix, "lib/pkgconfig")}
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "dagd"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert flags.returncode == 0, flags.stderr
    assert f"-I{prefix}/include" in flags.stdout, f"pkg-config --cflags: {flags.stdout!r}"
    pdir = os.path.join(w, "plugins")
    os.mkdir(pdir)
    so = os.path.join(pdir, "example.so")
    cc = subprocess.run(f"cc -shared -fPIC -Wall -Wextra -Werror -Wno-unused-parameter -o {so} {src} "
                        f"{flags.stdout.strip()}", shell=True, env=env, cwd=w,
                        capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, f"the example does not build out of tree:\n{cc.stderr}"
    return pdir, so


def log_of(d, task_id):
    rc, out, err = d.dagctl("logs", task_id)
    expect_eq(rc, 0, f"dagctl logs {task_id}: {err}")
    return out


def read_pid(path, timeout=20):
    wait_for(lambda: os.path.exists(path) and open(path).read().strip(), timeout,
             what=f"{path} to be written")
    return int(open(path).read())


@test(timeout=600)
def the_installed_example_builds_with_pkg_config_and_runs_tasks():
    w = workdir()
    pdir, so = build_example(w)
    d = Daemon(plugin_dir=pdir, args=["--kill-grace", "3"]).start()
    ex = {e["name"]: e["error"] for e in d.call("executor.list")["executors"]}
    expect_eq(ex, {"example": None}, "executors")
    p = d.project(executor="example", autonomous=True)

    # output, environment and working directory
    cwd = os.path.join(w, "here")
    os.mkdir(cwd)
    t = d.add(p, ["sh", "-c", "echo out-$FOO; echo err >&2; pwd"], env={"FOO": "bar"}, cwd=cwd)
    d.wait_task_status(t["id"], "completed")
    out = log_of(d, t["id"])
    for want in ("out-bar", "err", cwd):
        assert want in out, f"the log lacks {want!r}: {out!r}"

    # an exit status, and a command that is not there
    t = d.add(p, ["sh", "-c", "exit 3"], max_retries=0)
    t = d.wait_task_status(t["id"], "failed")
    assert "3" in t["error_message"], t
    t = d.add(p, ["no-such-command-here"], max_retries=0)
    t = d.wait_task_status(t["id"], "failed")
    assert "cannot start" in t["error_message"], t

    # cancel: SIGTERM reaches the task (dagd's blocked signals are not its
    # own); one that ignores it is killed after the grace
    for script, least in (("exec sleep 60", 0), ("trap '' TERM; sleep 60 & wait", 2.5)):
        pidfile = os.path.join(w, f"pid-{least}")
        t = d.add(p, ["sh", "-c", f"echo $$ > {pidfile}; {script}"], max_retries=0)
        pid = read_pid(pidfile)
        d.wait_task_status(t["id"], "running")
        start = time.monotonic()
        d.call("task.cancel", task_id=t["id"])
        wait_for(lambda: not pid_alive(pid), 15, what=f"the task's process {pid} to end")
        took = time.monotonic() - start
        assert took >= least and (least or took < 2.5), f"{script!r} ended after {took:.1f}s"
        d.wait_task_status(t["id"], "cancelled")

    # the plugin replaced the safe way (a new file renamed into place) and
    # reloaded while a task runs: the new instance adopts it
    flag = os.path.join(w, "go")
    t = d.add(p, ["sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.1; done; echo done"])
    d.wait_task_status(t["id"], "running")
    shutil.copy(so, so + ".new")
    os.rename(so + ".new", so)
    listed = d.call("executor.reload")["executors"]
    expect_eq([(e["name"], e["error"]) for e in listed], [("example", None)], "after the reload")
    open(flag, "w").close()
    d.wait_task_status(t["id"], "completed")
    assert "done" in log_of(d, t["id"]), "the adopted task's output"

    # a restart: the process is no child of the new dagd, adopt() says so,
    # and the attempt fails as lost
    pidfile = os.path.join(w, "pid-restart")
    t = d.add(p, ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"], max_retries=0, max_lost_retries=0)
    pid = read_pid(pidfile)
    d.wait_task_status(t["id"], "running")
    d.restart()
    try:
        t = d.wait_task_status(t["id"], "failed")
        assert "lost" in t["error_message"], t
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    d.stop()


if __name__ == "__main__":
    main()
