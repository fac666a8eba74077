"""task.pause and task.resume (dagctl task pause|resume) with the local
executor: a paused task's processes make no progress, by their own output
file, until resumed; the state survives a restart of dagd; a paused task can
still be cancelled, and its processes end; pausing what does not run is
refused and changes nothing.
"""

import os
import time

from dagdtest import Daemon, Timeout, expect_eq, expect_error, main, sandbox_pids, select_events, test, wait_for, workdir


def ticks(path):
    try:
        with open(path) as f:
            return len(f.read().split())
    except FileNotFoundError:
        return 0


def still(path, secs=0.6):
    """Whether the file stays as it is for secs."""
    before = ticks(path)
    time.sleep(secs)
    return ticks(path) == before


def ticker(d, w):
    """A running task that appends a line to w/ticks every 20 ms, in a child
    of its shell (so the whole group must stop)."""
    p = d.project(autonomous=True)
    path = os.path.join(w, "ticks")
    t = d.add(p, ["sh", "-c", f"(while :; do echo x >> {path}; sleep 0.02; done) & wait"])
    d.wait_task_status(t["id"], ("running",))
    wait_for(lambda: ticks(path) > 3, what="the task's first ticks")
    return p, t, path


@test(timeout=90)
def a_paused_task_stops_until_resumed_even_across_a_restart():
    w = workdir()
    d = Daemon().start()
    p, t, path = ticker(d, w)
    got = d.call("task.pause", task_id=t["id"])["task"]
    expect_eq((got["status"], got["paused"]), ("running", True), "status and paused after task.pause")
    assert still(path), "the task's processes went on while paused"
    rc, out, err = d.dagctl("task", "pause", t["id"])
    expect_eq((rc, out.strip()), (0, f"{t['id']}: running (paused)"), f"a second pause ({err})")
    rc, out, err = d.dagctl("task", "list", p["id"])
    assert "running (paused)" in out, out
    d.restart()
    expect_eq(d.task(t["id"])["paused"], True, "paused after a restart")
    assert still(path), "the task's processes went on after the restart"
    rc, out, err = d.dagctl("task", "resume", t["id"])
    expect_eq((rc, out.strip()), (0, f"{t['id']}: running"), f"dagctl task resume ({err})")
    n = ticks(path)
    wait_for(lambda: ticks(path) > n + 3, what="ticks after the resume")
    events = d.events(0, project=p["id"])
    expect_eq([len(select_events(events, k, task_id=t["id"])) for k in ("TASK_PAUSED", "TASK_RESUMED")],
              [1, 1], "TASK_PAUSED and TASK_RESUMED events")
    d.call("task.cancel", task_id=t["id"])
    d.stop()


@test(timeout=60)
def a_paused_task_can_be_cancelled_and_its_processes_end():
    w = workdir()
    d = Daemon(args=["--kill-grace", "5"]).start()
    p, t, path = ticker(d, w)
    d.call("task.pause", task_id=t["id"])
    assert still(path, 0.3), "the task's processes went on while paused"
    d.call("task.cancel", task_id=t["id"])
    # the SIGTERM must reach it though it is stopped: it ends long before the grace
    wait_for(lambda: not sandbox_pids(d.sock), timeout=4, what="the paused task's processes to end")
    done = d.task(t["id"])
    expect_eq((done["status"], done["paused"]), ("cancelled", False), "status and paused after the cancel")
    assert still(path, 0.3), "something of the task still writes"
    d.stop()


@test(timeout=90)
def a_kill_between_a_pause_and_its_commit_leaves_a_task_a_resume_lets_go_on():
    """DAGD_TEST_CRASH_AT=paused: dagd kills itself once the executor has
    frozen the task and before the flag is committed.  The next daemon shows
    it running, not paused (nothing was recorded), though it is stopped; a
    resume must reach the executor all the same."""
    w = workdir()
    d = Daemon(env=dict(os.environ, DAGD_TEST_CRASH_AT="paused")).start()
    p, t, path = ticker(d, w)
    try:
        d.call("task.pause", task_id=t["id"])
    except (AssertionError, OSError, Timeout):
        pass            # it dies before it answers
    wait_for(lambda: d.proc.poll() is not None, timeout=20, what="dagd to die at 'paused'")
    assert "DAGD_TEST_CRASH_AT=paused" in d.stderr(), d.stderr_tail()
    d.kill()
    d.env = dict(os.environ)
    d.start()
    got = d.task(t["id"])
    expect_eq((got["status"], got["paused"]), ("running", False), "the task after the crash")
    assert still(path), "the task's processes went on: the pause never reached them"
    expect_eq(d.call("task.resume", task_id=t["id"])["task"]["paused"], False, "paused after the resume")
    n = ticks(path)
    wait_for(lambda: ticks(path) > n + 3, what="ticks after the resume")
    events = d.events(0, project=p["id"])
    expect_eq([len(select_events(events, k)) for k in ("TASK_PAUSED", "TASK_RESUMED")], [0, 0],
              "TASK_PAUSED and TASK_RESUMED events (nothing was recorded)")
    d.call("task.cancel", task_id=t["id"])
    d.stop()


@test(timeout=60)
def pausing_what_does_not_run_is_refused_and_changes_nothing():
    d = Daemon().start()
    p = d.project(autonomous=False)
    ready = d.add(p, "true")
    n = len(d.events(0))
    e = expect_error(d.call, "invalid_state", "task.pause", task_id=ready["id"])
    assert "only a running task" in e.message, e.message
    # what is not paused needs no resume: it succeeds and changes nothing
    expect_eq(d.call("task.resume", task_id=ready["id"])["task"]["paused"], False, "resume of a ready task")
    expect_error(d.call, "not_found", "task.pause", task_id="t-999")
    expect_error(d.call, "bad_request", "task.pause", task_id=ready["id"], paused=True)
    expect_eq(d.task(ready["id"])["paused"], False, "paused of a ready task")
    expect_eq(len(d.events(0)), n, "events after the refusals")
    rc, out, err = d.dagctl("task", "pause", ready["id"])
    assert rc != 0 and "only a running task" in err, (rc, out, err)
    d.stop()


if __name__ == "__main__":
    main()
