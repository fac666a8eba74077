"""State survives the daemon: a clean stop (SIGTERM) or a kill -9 in the middle
of a run loses nothing; running sandboxes are adopted and every task
completes exactly once."""

import collections

import json

from dagdtest import (ACTIVE, DAGCTL, Daemon, expect_eq, main, read_file, select_events, test,
                      workdir)


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


@test
def every_field_of_every_kind_of_task_survives_a_restart():
    """The load builds every object again from the store's rows: each task's
    whole object (retry rules, pools, approval and its deadline, trigger rule,
    finally, fan-out and its children's items, held, cancelled, attempts,
    results), each project and each pool are the same after a restart, and
    what was left to do is then done."""
    d, w = Daemon().start(), workdir()
    d.call("pool.set", name="gpu", size=2)
    p = d.project(autonomous=True, max_concurrency=3)
    r = d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "list", "title": "list", "command": [DAGCTL, "complete", "--result",
                                                       json.dumps([{"n": 1}, {"n": 2}])]},
        {"name": "each", "title": "each", "command": f"echo {{{{item.n}}}} >> {w}/each",
         "depends_on": ["list"], "map_over": "list", "map_concurrency": 1},
        {"name": "rules", "title": "rules", "command": "exit 3", "retry_on_exit": [3], "max_retries": 1,
         "retry_backoff": 0.05, "max_lost_retries": 2, "max_retry_duration": 60, "pools": {"gpu": 1},
         "priority": "high", "env": {"K": "V"}, "timeout": 30},
        {"name": "after", "title": "after", "command": "true", "depends_on": ["rules"],
         "trigger": "all_failed"},
        {"name": "valid", "title": "valid", "command": "true", "validation_command": "true"},
        {"name": "gate", "title": "ship it?", "kind": "approval", "depends_on": ["list"],
         "timeout": 600, "on_timeout": "approve"},
        {"name": "last", "title": "last", "command": f"touch {w}/last", "finally": True},
    ])
    ids = {t["name"]: t["id"] for t in r["tasks"]}
    m = d.project()
    held = d.add(m, "true", title="held")["id"]
    cancelled = d.add(m, "true", title="cancelled", depends_on=[held])["id"]
    d.call("task.hold", task_id=held)
    d.call("task.cancel", task_id=cancelled)
    d.wait_task_status(ids["gate"], "awaiting_approval")
    for name, status in (("each", "completed"), ("rules", "failed"), ("after", "completed"),
                         ("valid", "completed")):
        d.wait_task_status(ids[name], status)

    def snapshot():
        tasks = d.tasks(p) + d.tasks(m)
        return ({t["id"]: d.task(t["id"]) for t in tasks},
                [d.call("project.get", project=x["id"])["project"] for x in (p, m)],
                d.call("pool.list")["pools"])

    before = snapshot()
    children = [t for t in before[0].values() if t.get("map_parent") == ids["each"]]
    expect_eq(sorted(t["item"]["n"] for t in children), [1, 2], "the mapped task's children")
    expect_eq((before[0][ids["rules"]]["attempt"], before[0][ids["last"]]["status"],
               before[0][held]["status"], before[0][cancelled]["status"]),
              (2, "waiting", "ready", "cancelled"), "the tasks before the restart")
    d.restart()
    after = snapshot()
    for tid in before[0]:
        expect_eq(after[0].get(tid), before[0][tid], f"task {tid} after the restart")
    expect_eq(sorted(after[0]), sorted(before[0]), "the tasks after the restart")
    expect_eq(after[1], before[1], "the projects after the restart")
    expect_eq(after[2], before[2], "the pools after the restart")
    d.call("task.approve", task_id=ids["gate"])
    d.wait_task_status(ids["last"], "completed")
    expect_eq(read_file(f"{w}/last"), "", "the finally task ran once the gate was approved")
    expect_eq(sorted(read_file(f"{w}/each").split()), ["1", "2"], "each child ran once")
    d.stop()


if __name__ == "__main__":
    main()
