"""Manual and autonomous mode, releasing tasks, and the concurrency limits
(checked by replaying the event log)."""

import os
import pwd

from dagdtest import (Daemon, daemon, expect_eq, expect_error, main, replay_active, test,
                      workdir)


def spawned(task_id):
    return lambda e: e["type"] == "SANDBOX_SPAWNED" and e["payload"]["task_id"] == task_id


def any_spawned(e):
    return e["type"] == "SANDBOX_SPAWNED"


def statuses(d, project):
    return {t["id"]: t["status"] for t in d.tasks(project)}


def completed(*task_ids):
    return lambda ts: all(t["status"] == "completed" for t in ts if t["id"] in task_ids)


@test
def manual_project_runs_nothing_until_start_and_unblocked_tasks_wait_for_the_next():
    d, w = daemon(), workdir()
    p = d.project()
    expect_eq(p["autonomous_execution_enabled"], False, "autonomous by default")
    with d.subscribe(project=p["id"]) as ev:
        a = d.add(p, f"touch {w}/a", title="a")["id"]
        b = d.add(p, f"touch {w}/b", title="b", depends_on=[a])["id"]
        c = d.add(p, f"touch {w}/c", title="c")["id"]
        ev.no_event(any_spawned, within=1.0)
        expect_eq(statuses(d, p), {a: "ready", b: "waiting", c: "ready"}, "before start")
        expect_eq(d.task(a)["released"], False, "a released before start")

        released = d.call("project.start", project=p["id"])["released"]
        expect_eq(sorted(released), sorted([a, c]), "released by the first start")
        d.wait_tasks(p, until=completed(a, c))
        ev.wait_event(lambda e: e["type"] == "TASKS_UNBLOCKED"
                      and b in e["payload"]["unblocked_task_ids"], 10, "b unblocked")
        ev.no_event(spawned(b), within=1.0)
        t = d.task(b)
        expect_eq((t["status"], t["released"]), ("ready", False), "b after a completed")

        expect_eq(d.call("project.start", project=p["id"])["released"], [b], "second start")
        d.wait_done(p)


@test
def task_start_releases_one_ready_task():
    d, w = daemon(), workdir()
    p = d.project()
    x = d.add(p, f"touch {w}/x", title="x")["id"]
    y = d.add(p, f"touch {w}/y", title="y")["id"]
    z = d.add(p, "true", title="z", depends_on=[x])["id"]
    q = d.add(p, "true", title="q", depends_on=[y])["id"]
    with d.subscribe(project=p["id"]) as ev:
        d.call("task.start", task_id=x)
        d.wait_tasks(p, until=completed(x))
        ev.no_event(lambda e: any_spawned(e) and e["payload"]["task_id"] != x, within=1.0)
    expect_eq(statuses(d, p), {x: "completed", y: "ready", z: "ready", q: "waiting"},
              "after starting x alone")
    expect_error(d.call, "invalid_state", "task.start", task_id=q)
    expect_error(d.call, "invalid_state", "task.start", task_id=x)
    expect_error(d.call, "not_found", "task.start", task_id="t-999999")
    d.call("task.start", task_id=z)
    d.wait_tasks(p, until=completed(z))
    expect_eq(statuses(d, p)[y], "ready", "y, never started")


@test
def autonomous_mode_turned_on_mid_run_dispatches_ready_tasks_at_once():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", title="a")["id"]
    b = d.add(p, "true", title="b", depends_on=[a])["id"]
    d.add(p, "true", title="c", depends_on=[b])
    d.add(p, "true", title="d")
    with d.subscribe(project=p["id"]) as ev:
        d.call("task.start", task_id=a)
        d.wait_tasks(p, until=completed(a))
        ev.no_event(spawned(b), within=0.5)

        r = d.call("project.set_autonomous", project=p["id"], enabled=True)["project"]
        expect_eq(r["autonomous_execution_enabled"], True, "autonomous after set_autonomous")
        changed = ev.wait_event(lambda e: e["type"] == "AUTONOMOUS_MODE_CHANGED", 5)
        expect_eq((changed["entity_id"], changed["payload"]["project_id"],
                   changed["payload"]["enabled"]), (p["id"], p["id"], True),
                  "AUTONOMOUS_MODE_CHANGED event")
        ev.wait_event(spawned(b), 5, "b to be dispatched")
    d.wait_done(p)


@test
def autonomous_mode_turned_off_starts_nothing_new_and_stops_nothing():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    a = d.add(p, f"while [ ! -f {w}/go ]; do sleep 0.05; done", title="a")["id"]
    b = d.add(p, "true", title="b", depends_on=[a])["id"]
    d.wait_task_status(a, "running")
    with d.subscribe(project=p["id"]) as ev:
        d.call("project.set_autonomous", project=p["id"], enabled=False)
        changed = ev.wait_event(lambda e: e["type"] == "AUTONOMOUS_MODE_CHANGED", 5)
        expect_eq(changed["payload"]["enabled"], False, "enabled in the event")
        expect_eq(d.task(a)["status"], "running", "a after autonomous off")
        open(f"{w}/go", "w").close()
        d.wait_tasks(p, until=completed(a))
        ev.no_event(spawned(b), within=1.0)
    expect_eq(d.task(b)["status"], "ready", "b")
    expect_eq(d.call("project.start", project=p["id"])["released"], [b], "released")
    d.wait_done(p)


@test
def project_max_concurrency_is_never_exceeded():
    d = daemon()
    p = d.project(max_concurrency=2)
    for i in range(10):
        d.add(p, "sleep 0.3", title=f"sleep {i}")
    since = d.call("daemon.status")["last_event_seq"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    expect_eq(replay_active(d.events(since, project=p["id"])), 2,
              "most tasks holding a slot at once")


def peak_of_two_projects(d, per_project):
    """Run per_project short sleeps in each of two projects allowing 5 at
    once; the most tasks that held a slot at the same time."""
    projects = [d.project(max_concurrency=5) for _ in range(2)]
    for p in projects:
        for i in range(per_project):
            d.add(p, "sleep 0.3", title=f"sleep {i}")
    for p in projects:
        d.call("project.set_autonomous", project=p["id"], enabled=True)
    for p in projects:
        d.wait_done(p)
    return replay_active(d.events(0))


@test
def global_max_concurrency_holds_across_projects():
    d = Daemon(args=["--max-concurrency", "3"]).start()
    expect_eq(d.call("daemon.status")["global_limit"], 3, "global_limit")
    expect_eq(peak_of_two_projects(d, 6), 3, "most tasks holding a slot at once, globally")


@test
def an_executor_limit_holds_across_projects_and_is_listed():
    d = Daemon(args=["--executor-options", 'local={"max_concurrency": 2, "user": "%s"}' % pwd.getpwuid(os.getuid()).pw_name]).start()
    local = [e for e in d.call("executor.list")["executors"] if e["name"] == "local"]
    expect_eq([e["limit"] for e in local], [2], "the local executor's limit")
    expect_eq(peak_of_two_projects(d, 4), 2, "most tasks holding a slot at once, by executor")


@test
def task_unblocked_lists_ready_tasks_of_autonomous_projects_in_dispatch_order():
    d = daemon()
    p = d.project(autonomous=True, max_concurrency=1)
    blocker = d.add(p, "exec sleep 30", title="blocker", priority="critical")["id"]
    d.wait_task_status(blocker, "running")
    low = d.add(p, "true", title="low", priority="low")["id"]
    high = d.add(p, "true", title="high", priority="high")["id"]
    med = d.add(p, "true", title="medium")["id"]
    manual = d.project()
    other = d.add(manual, "true", title="ready, manual")["id"]

    mine = d.call("task.unblocked", project=p["id"])["tasks"]
    expect_eq([t["id"] for t in mine], [high, med, low], "task.unblocked of the project")
    expect_eq([t["id"] for t in d.call("task.unblocked", project=p["id"], limit=2)["tasks"]],
              [high, med], "task.unblocked with limit 2")
    everything = [t["id"] for t in d.call("task.unblocked")["tasks"]]
    assert other not in everything, "task.unblocked lists a task of a manual project"
    expect_eq([t for t in everything if t in (high, med, low)], [high, med, low],
              "task.unblocked of all projects")
    d.call("task.cancel", task_id=blocker)
    d.wait_tasks(p, until=completed(high, med, low))


if __name__ == "__main__":
    main()
