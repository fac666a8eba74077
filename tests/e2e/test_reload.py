"""Reloading the plugins while sandboxes run: each live sandbox is handed to
the new instance of its plugin by its handle, as after a restart, and its
exit is still judged."""

import os
import signal

from dagdtest import Daemon, expect_eq, main, read_file, test, workdir


def run_through(d, trigger):
    w = workdir()
    p = d.project(autonomous=True)
    wait = f"while [ ! -e {w}/go ]; do sleep 0.05; done"
    ok = d.add(p, f"{wait}; echo done > {w}/ok")
    bad = d.add(p, f"{wait}; exit 4")
    for t in (ok, bad):
        d.wait_task_status(t["id"], "running")
    trigger()
    open(f"{w}/go", "w").close()
    expect_eq(d.wait_task_status(ok["id"], ("completed", "failed"))["status"], "completed", "status")
    t = d.wait_task_status(bad["id"], ("completed", "failed"))
    expect_eq((t["status"], t["error_message"]), ("failed", "exited with code 4"), "the failing one")
    expect_eq(read_file(f"{w}/ok"), "done\n", "what the task wrote")
    for t in (ok, bad):
        expect_eq(d.task(t["id"])["attempt"], 1, "attempts")


@test
def executor_reload_keeps_running_sandboxes():
    d = Daemon().start()
    run_through(d, lambda: d.call("executor.reload"))


@test
def sighup_keeps_running_sandboxes():
    d = Daemon().start()
    run_through(d, lambda: os.kill(d.proc.pid, signal.SIGHUP))


if __name__ == "__main__":
    main()
