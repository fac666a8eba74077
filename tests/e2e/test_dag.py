"""DAGs of shell tasks run in dependency order: a chain, a diamond, a wide
fan-out, and the dispatch order among ready tasks."""

from dagdtest import (daemon, expect_eq, main, parse_time, read_file, replay_active,
                      select_events, test, workdir)


@test
def chain_runs_each_task_after_the_previous_one():
    d, w = daemon(), workdir()
    p = d.project()
    tasks = []
    for i in range(5):
        deps = [tasks[-1]["id"]] if tasks else []
        tasks.append(d.add(p, f"echo {i} >> {w}/order", title=f"step {i}", depends_on=deps))
    expect_eq([t["status"] for t in tasks], ["ready"] + ["waiting"] * 4, "statuses when added")
    expect_eq([t["unmet"] for t in tasks], [0, 1, 1, 1, 1], "unmet counts when added")
    since = d.call("daemon.status")["last_event_seq"]

    d.call("project.set_autonomous", project=p["id"], enabled=True)
    done = d.wait_done(p)

    expect_eq(read_file(f"{w}/order"), "0\n1\n2\n3\n4\n", "order of the runs")
    for prev, cur in zip(done, done[1:]):
        assert parse_time(cur["started_at"]) >= parse_time(prev["finished_at"]), \
            f"{cur['id']} started before {prev['id']} finished"
    events = [e for e in d.events(since, project=p["id"], types=["TASKS_UNBLOCKED"])
              if e["payload"]["unblocked_task_ids"]]
    expect_eq([(e["payload"]["completed_task_id"], e["payload"]["unblocked_task_ids"])
               for e in events],
              [(a["id"], [b["id"]]) for a, b in zip(tasks, tasks[1:])], "TASKS_UNBLOCKED events")
    expect_eq(events[0]["payload"]["sandbox_id"], tasks[0]["id"] + ".1", "sandbox of the first")
    expect_eq([t["attempt"] for t in done], [1] * 5, "attempts")


@test
def diamond_joins_after_both_branches():
    d, w = daemon(), workdir()
    p = d.project()
    a = d.add(p, f"touch {w}/a", title="a")
    b = d.add(p, f"test -f {w}/a && touch {w}/b", title="b", depends_on=[a["id"]])
    c = d.add(p, f"test -f {w}/a && touch {w}/c", title="c", depends_on=[a["id"]])
    j = d.add(p, f"test -f {w}/b && test -f {w}/c", title="join", depends_on=[b["id"], c["id"]])
    expect_eq(sorted(j["depends_on"]), sorted([b["id"], c["id"]]), "join's depends_on")
    expect_eq(j["unmet"], 2, "join's unmet")
    expect_eq(sorted(d.task(a["id"])["dependents"]), sorted([b["id"], c["id"]]), "a's dependents")
    since = d.call("daemon.status")["last_event_seq"]

    d.call("project.set_autonomous", project=p["id"], enabled=True)
    done = {t["id"]: t for t in d.wait_done(p)}

    unblocked = d.events(since, project=p["id"], types=["TASKS_UNBLOCKED"])
    by_source = {e["payload"]["completed_task_id"]: sorted(e["payload"]["unblocked_task_ids"])
                 for e in unblocked}
    expect_eq(by_source.get(a["id"]), sorted([b["id"], c["id"]]), "tasks unblocked by a")
    joins = [e for e in unblocked if j["id"] in e["payload"]["unblocked_task_ids"]]
    expect_eq(len(joins), 1, "TASKS_UNBLOCKED events naming the join")
    last = max((done[b["id"]], done[c["id"]]), key=lambda t: parse_time(t["finished_at"]))
    assert joins[0]["payload"]["completed_task_id"] in (b["id"], c["id"]), joins[0]
    assert parse_time(done[j["id"]]["started_at"]) >= parse_time(last["finished_at"]), \
        "the join started before both branches finished"


@test
def wide_fan_out_of_fifty_tasks_completes():
    d, w = daemon(), workdir()
    p = d.project(max_concurrency=10)
    root = d.add(p, "true", title="root")
    kids = [d.add(p, f"touch {w}/{i}", title=f"kid {i}", depends_on=[root["id"]])
            for i in range(50)]
    sink = d.add(p, f"test $(ls {w} | wc -l) -eq 50", title="sink",
                 depends_on=[k["id"] for k in kids])
    since = d.call("daemon.status")["last_event_seq"]

    d.call("project.set_autonomous", project=p["id"], enabled=True)
    done = {t["id"]: t for t in d.wait_done(p, timeout=120)}

    events = d.events(since, project=p["id"])
    root_unblocked = select_events(events, "TASKS_UNBLOCKED", completed_task_id=root["id"])
    expect_eq(len(root_unblocked), 1, "TASKS_UNBLOCKED events from the root")
    expect_eq(sorted(root_unblocked[0]["payload"]["unblocked_task_ids"]),
              sorted(k["id"] for k in kids), "tasks unblocked by the root")
    last_kid = max(parse_time(done[k["id"]]["finished_at"]) for k in kids)
    assert parse_time(done[sink["id"]]["started_at"]) >= last_kid, "sink started too early"
    peak = replay_active(events)
    assert 1 <= peak <= 10, f"{peak} tasks held a slot at once (max_concurrency 10)"
    expect_eq(len(select_events(events, "TASK_COMPLETED")), 52, "TASK_COMPLETED events")


@test
def dispatch_order_is_priority_then_dependents_then_age():
    d = daemon()
    p = d.project(max_concurrency=1)

    def add(title, priority, **kw):
        return d.add(p, "true", title=title, priority=priority, **kw)["id"]

    low1 = add("low1", "low")
    low2 = add("low2", "low")
    med_few = add("med-few", "medium")
    med_many = add("med-many", "medium")
    high = add("high", "high")
    crit = add("crit", "critical")
    for i in range(2):       # two tasks wait on med-many; they are not released
        add(f"after-many-{i}", "critical", depends_on=[med_many])
    since = d.call("daemon.status")["last_event_seq"]

    released = d.call("project.start", project=p["id"])["released"]
    expect_eq(sorted(released), sorted([low1, low2, med_few, med_many, high, crit]), "released")
    d.wait_tasks(p, until=lambda ts: sum(t["status"] == "completed" for t in ts) == 6)

    spawned = [e["payload"]["task_id"]
               for e in d.events(since, project=p["id"], types=["SANDBOX_SPAWNED"])]
    expect_eq(spawned, [crit, high, med_many, med_few, low1, low2], "order of the sandboxes")


if __name__ == "__main__":
    main()
