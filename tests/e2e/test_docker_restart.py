"""The docker executor across daemon restarts, against a real Docker engine:
containers running through a SIGTERM, a kill -9 or a plugin reload are
adopted again and their completions, reported over the socket, are not lost;
containers that finished while dagd was down are collected (exit code, out
of memory, the output they wrote meanwhile); one removed meanwhile is lost.
Without an engine the tests skip, or fail when DAGD_REQUIRE_DOCKER=1.
"""

import collections
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docker"))

from dagdtest import expect_eq, main, select_events, wait_for, workdir  # noqa: E402
from dockere2e import (api, container_of, daemon, docker_test, log_text, project, sleep_until,  # noqa: E402
                       touch, wait_exited, wait_no_containers)


def start_waiting(d, w, n=3):
    """n tasks whose containers print "before", wait for /data/go, print
    "after" and report a result; returns when all run and said "before".
    The first names the engine in its own options, by another path: its
    handle then names the engine too."""
    p = project(d, binds=[f"{w}:/data"], max_concurrency=n)
    cmd = ('echo "before $DAGD_TASK_ID"; ' + sleep_until("/data/go") + '; echo "after $DAGD_TASK_ID"; '
           'dagctl complete --result "{\\"n\\": \\"$DAGD_TASK_ID\\"}"')
    other_path = os.path.join(os.path.dirname(api().sock), ".", os.path.basename(api().sock))
    ids = [d.add(p, cmd, title=f"waiter {i}", executor_options={"socket": other_path} if i == 0 else {})["id"]
           for i in range(n)]
    cids = {t: container_of(d, t) for t in ids}
    wait_for(lambda: all("before" in log_text(d, t) for t in ids), what="every task's first line")
    return p, cids


def go_and_check(d, w, p):
    """Let the tasks go: each completes once, with its result, in one attempt,
    and its log has each line once."""
    touch(os.path.join(w, "go"))
    tasks = d.wait_done(p, timeout=60)
    # a task reports before its container exits; its output is all in once it has
    wait_for(lambda: len(select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED")) == len(tasks),
             what="every container's exit")
    for t in tasks:
        expect_eq((t["result"], t["attempt"]), ({"n": t["id"]}, 1), f"result and attempts of {t['id']}")
        lines = collections.Counter(log_text(d, t["id"]).splitlines())
        expect_eq((lines[f"before {t['id']}"], lines[f"after {t['id']}"]), (1, 1),
                  f"lines in the log of {t['id']}: {dict(lines)}")
    events = d.events(0, project=p["id"])
    for kind in ("SANDBOX_SPAWNED", "TASK_COMPLETED", "SANDBOX_EXITED"):
        per_task = collections.Counter(e["payload"]["task_id"] for e in select_events(events, kind))
        expect_eq(dict(per_task), {t["id"]: 1 for t in tasks}, f"{kind} events per task")
    expect_eq(select_events(events, "TASK_FAILED"), [], "TASK_FAILED events")
    wait_no_containers(d)


@docker_test(timeout=180)
def sigterm_while_containers_run_then_restart_readopts_them_and_no_completion_is_lost():
    w = workdir()
    d = daemon()
    p, cids = start_waiting(d, w)
    d.stop()
    for cid in cids.values():
        assert api().inspect(cid)["State"]["Running"], "a container stopped with the daemon"
    d.start()
    go_and_check(d, w, p)


@docker_test(timeout=180)
def kill_9_while_containers_run_then_restart_readopts_them_and_no_completion_is_lost():
    w = workdir()
    d = daemon()
    p, cids = start_waiting(d, w)
    d.kill()
    d.start()
    go_and_check(d, w, p)


@docker_test(timeout=180)
def a_plugin_reload_hands_running_containers_to_the_new_instance():
    w = workdir()
    d = daemon()
    p, cids = start_waiting(d, w, n=2)
    rc, out, err = d.dagctl("executors", "reload")
    expect_eq(rc, 0, f"dagctl executors reload ({err})")
    go_and_check(d, w, p)


@docker_test(timeout=180)
def containers_that_finished_while_dagd_was_down_are_collected():
    w = workdir()
    d = daemon()
    p = project(d, binds=[f"{w}:/data"])
    body = 'echo "before $DAGD_TASK_ID"; ' + sleep_until("/data/go") + '; echo "while down $DAGD_TASK_ID"; '
    ok = d.add(p, body + "exit 0", title="ok")["id"]
    bad = d.add(p, body + "exit 5", title="exit 5")["id"]
    oom = d.add(p, body + 'x=aaaaaaaa; while :; do x="$x$x"; done', title="oom",
                executor_options={"memory": "8m"})["id"]
    cids = {t: container_of(d, t) for t in (ok, bad, oom)}
    wait_for(lambda: all("before" in log_text(d, t) for t in cids), what="every task's first line")
    d.stop()
    touch(os.path.join(w, "go"))
    for cid in cids.values():
        wait_exited(cid)
    d.start()
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=60)}
    expect_eq([tasks[t]["status"] for t in (ok, bad, oom)], ["completed", "failed", "failed"], "statuses")
    expect_eq(tasks[bad]["error_message"], "exited with code 5", "error of exit 5")
    assert "out of memory" in tasks[oom]["error_message"], tasks[oom]["error_message"]
    ex = {e["payload"]["task_id"]: e["payload"]
          for e in select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED")}
    expect_eq([ex[t]["reason"] for t in (ok, bad, oom)], ["exited", "failed", "oom"], "reasons")
    for t in (ok, bad, oom):
        lines = collections.Counter(log_text(d, t).splitlines())
        expect_eq((lines[f"before {t}"], lines[f"while down {t}"]), (1, 1), f"lines in the log of {t}")
    wait_no_containers(d)


def engine_events(d, action):
    """The Docker engine's own events of this action for d's containers."""
    # (until is in whole seconds and excludes what came after it: the next
    # second, which the engine waits for, so that an event of this very
    # second is not left out)
    now = int(time.time()) + 1
    filters = urllib.parse.quote(json.dumps({"label": [f"dagd.instance={d.state_dir}"], "event": [action]}))
    status, body = api().raw("GET", f"/events?since={now - 3600}&until={now}&filters={filters}")
    expect_eq(status, 200, "the engine's events")
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


@docker_test(timeout=180)
def a_kill_between_a_containers_exit_and_its_commit_judges_the_exit_once():
    """DAGD_TEST_CRASH_AT: dagd kills itself once the exit is judged and
    before its commit ("exited"), or after the commit and before the executor
    is told to forget it ("committed").  The container must still be there
    for the next daemon (no sweep may take it), which judges its exit code,
    once, and never creates another; then it is removed."""
    for point in ("exited", "committed"):
        d = daemon(start=False)
        d.env = dict(os.environ, DAGD_TEST_CRASH_AT=point)
        d.start()
        p = project(d)
        t = d.add(p, "echo ran; exit 5")["id"]
        wait_for(lambda: d.proc.poll() is not None, timeout=60, what=f"dagd to die at '{point}'")
        assert f"DAGD_TEST_CRASH_AT={point}" in d.stderr(), d.stderr_tail()
        d.kill()
        d.env = dict(os.environ)
        d.start()
        task = d.wait_task_status(t, ("completed", "failed"))
        expect_eq((task["status"], task["error_message"], task["attempt"]),
                  ("failed", "exited with code 5", 1), f"the task after a kill at '{point}'")
        expect_eq(log_text(d, t).splitlines(), ["ran"], "the task's output")
        expect_eq(len(engine_events(d, "create")), 1, "containers created, by the engine's own events")
        exits = select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED")
        expect_eq([e["payload"]["task_id"] for e in exits], [t], f"SANDBOX_EXITED events after '{point}'")
        wait_no_containers(d)
        d.stop()


@docker_test
def a_container_removed_while_dagd_was_down_fails_its_task_as_lost():
    d = daemon()
    p = project(d)
    t = d.add(p, "sleep 300", max_lost_retries=0)["id"]
    cid = container_of(d, t)
    d.stop()
    api().remove(cid)
    d.start()
    task = d.wait_tasks(p)[0]
    expect_eq(task["status"], "failed", "status")
    assert "gone" in task["error_message"], task["error_message"]


main()
