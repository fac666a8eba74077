"""State survives the daemon: a clean stop (SIGTERM) or a kill -9 in the middle
of a run loses nothing; running sandboxes are adopted and every task
completes exactly once."""

import collections

from dagdtest import (ACTIVE, Daemon, expect_eq, main, read_file, select_events, test, workdir)


def start_run(d, w):
    """A DAG of 10 sleeping tasks (6 roots, 3 joins of two roots, a sink) in an
    autonomous project with max_concurrency 3; returns when 3 sandboxes run."""
    p = d.project(max_concurrency=3)
    cmd = (f'echo "start $DAGD_TASK_ID $DAGD_ATTEMPT" >> {w}/log; sleep 3; '
           f'echo "end $DAGD_TASK_ID" >> {w}/log')
    roots = [d.add(p, cmd, title=f"root {i}")["id"] for i in range(6)]
    joins = [d.add(p, cmd, title=f"join {i}", depends_on=roots[2 * i:2 * i + 2])["id"]
             for i in range(3)]
    d.add(p, cmd, title="sink", depends_on=joins)
    with d.subscribe(project=p["id"], types=["TASK_STATUS_CHANGED"]) as ev:
        d.call("project.set_autonomous", project=p["id"], enabled=True)
        status = {}
        while sum(s == "running" for s in status.values()) < 3:
            e = ev.wait_event(lambda e: True, 20, "3 running tasks")
            status[e["payload"]["task_id"]] = e["payload"]["new_status"]
    return p


def check_run(d, w, p):
    """Every task completed exactly once, in one attempt."""
    tasks = d.wait_done(p, timeout=90)
    expect_eq({t["id"]: t["attempt"] for t in tasks}, {t["id"]: 1 for t in tasks}, "attempts")
    log = read_file(f"{w}/log").split("\n")
    starts = collections.Counter(x.split()[1] for x in log if x.startswith("start "))
    ends = collections.Counter(x.split()[1] for x in log if x.startswith("end "))
    expect_eq(dict(starts), {t["id"]: 1 for t in tasks}, "runs started per task")
    expect_eq(dict(ends), {t["id"]: 1 for t in tasks}, "runs finished per task")
    events = d.events(0, project=p["id"])
    for kind in ("SANDBOX_SPAWNED", "TASK_COMPLETED"):
        per_task = collections.Counter(e["payload"]["task_id"] for e in select_events(events, kind))
        expect_eq(dict(per_task), {t["id"]: 1 for t in tasks}, f"{kind} events per task")
    expect_eq(select_events(events, "TASK_FAILED"), [], "TASK_FAILED events")


@test(timeout=180)
def sigterm_mid_run_then_restart_adopts_running_tasks_and_finishes_the_dag():
    d, w = Daemon().start(), workdir()
    p = start_run(d, w)
    running = [t["id"] for t in d.tasks(p) if t["status"] in ACTIVE]
    d.stop()
    d.start()
    got = {t["id"]: t["status"] for t in d.tasks(p) if t["id"] in running}
    assert all(s in ACTIVE + ("completed",) for s in got.values()), \
        f"tasks running at the stop, after the restart: {got}"
    check_run(d, w, p)


@test(timeout=180)
def kill_9_mid_run_then_restart_adopts_running_tasks_and_finishes_the_dag():
    d, w = Daemon().start(), workdir()
    p = start_run(d, w)
    d.kill()
    d.start()
    check_run(d, w, p)


@test
def projects_tasks_and_events_survive_a_restart():
    d, w = Daemon().start(), workdir()
    p = d.project(max_concurrency=4)
    a = d.add(p, "true", title="a", name="a")["id"]
    b = d.add(p, f"touch {w}/b", title="b", depends_on=[a], priority="high", max_retries=2,
              env={"K": "V"})["id"]
    d.call("task.start", task_id=a)
    d.wait_tasks(p, until=lambda ts: ts[0]["status"] == "completed")
    before_p = d.call("project.get", project=p["id"])["project"]
    before_t = d.tasks(p)
    before_ev = d.events(0)
    d.restart()
    expect_eq(d.call("project.get", project=p["name"])["project"], before_p, "project")
    expect_eq(d.tasks(p), before_t, "tasks")
    expect_eq(d.events(0), before_ev, "event log")
    expect_eq(d.call("daemon.status")["last_event_seq"], before_ev[-1]["seq"], "last_event_seq")
    c = d.add(p, "true", title="c")["id"]
    assert int(c[2:]) > int(b[2:]), f"task id {c} reused or went back after {b}"
    expect_eq(d.events(before_ev[-1]["seq"])[0]["seq"], before_ev[-1]["seq"] + 1,
              "seq of the first event after the restart")
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    expect_eq(read_file(f"{w}/b"), "", "b ran")


if __name__ == "__main__":
    main()
