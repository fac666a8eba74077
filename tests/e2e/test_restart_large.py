"""A restart with a large store keeps every task as it was: 20,000 waiting,
ready and held tasks of a manual project, beside a run that left tasks
completed, failed, upstream_failed, skipped, cancelled and one still
running; after a clean stop and after a kill -9, every task object (status,
attempt, unmet count, edges, result, error, definition) is what it was, the
counts agree, the name index answers, and the graph still runs."""

from dagdtest import DAGCTL, Daemon, expect_eq, expect_error, main, test, workdir

BIG = 20000
EVERY = 100             # one big task in EVERY waits on the one before
VOLATILE = ("updated_at",)      # what a load may rewrite: nothing else


def all_tasks(d):
    """Every task, page by page, by id."""
    out, after = {}, None
    while True:
        page = d.call("task.list", limit=1000, **({"after": after} if after else {}))
        for t in page["tasks"]:
            assert t["id"] not in out, f"{t['id']} listed twice"
            out[t["id"]] = {k: v for k, v in t.items() if k not in VOLATILE}
        after = page.get("next")
        if after is None:
            return out


def counts(d):
    return {p["name"]: p["counts"] for p in d.call("project.list")["projects"]}


def big_project(d):
    p = d.project(name="big")
    for first in range(0, BIG, 10000):
        tasks = []
        for i in range(first, first + 10000):
            t = {"name": f"b{i}", "title": f"big {i}", "command": ["true", str(i)]}
            if i % EVERY == EVERY - 1:
                t["depends_on"] = [f"b{i - 1}"] if i % 10000 else []
            if i % 997 == 0:
                t["priority"] = "high"
            tasks.append(t)
        d.call("task.add_batch", project=p["id"], tasks=tasks)
    ids = [t["id"] for t in d.call("task.list", project=p["id"], limit=3)["tasks"]]
    d.call("task.hold", task_id=ids[1])
    d.call("task.start", task_id=ids[2])
    return p


def finished_run(d, w):
    """A run that ends in every final status but one task left running."""
    p = d.project(name="run", max_concurrency=4)
    tasks = [
        {"name": "ok", "title": "ok", "command": [DAGCTL, "complete", "--result", '{"n": 7}']},
        {"name": "bad", "title": "bad", "command": "exit 3"},
        {"name": "after_bad", "title": "after bad", "command": "true", "depends_on": ["bad"]},
        {"name": "if_bad", "title": "if bad", "command": "true", "depends_on": ["ok"],
         "trigger": "any_failed"},
        {"name": "cancelled", "title": "cancelled", "command": "true", "depends_on": ["long"]},
        {"name": "long", "title": "long", "command": f"touch {w}/long; sleep 60"},
    ]
    ids = {t["name"]: t["id"] for t in d.call("task.add_batch", project=p["id"], tasks=tasks)["tasks"]}
    d.call("task.cancel", task_id=ids["cancelled"])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p, until=lambda ts: {t["name"]: t["status"] for t in ts} == {
        "ok": "completed", "bad": "failed", "after_bad": "upstream_failed", "if_bad": "skipped",
        "cancelled": "cancelled", "long": "running"}, timeout=60)
    return p


@test(timeout=240)
def a_large_store_comes_back_whole_after_a_stop_and_a_kill():
    w = workdir()
    d = Daemon()
    d.start()
    big, run = big_project(d), finished_run(d, w)
    before, before_counts = all_tasks(d), counts(d)
    expect_eq(len(before), BIG + 6, "tasks stored")
    statuses = {t["status"] for t in before.values()}
    for s in ("waiting", "ready", "completed", "failed", "upstream_failed", "skipped", "cancelled", "running"):
        assert s in statuses, f"no {s} task to keep: {statuses}"
    for how in ("restart", "kill"):
        if how == "kill":
            d.kill()
            d.start()
        else:
            d.restart()
        after = all_tasks(d)
        expect_eq(sorted(after), sorted(before), f"the task ids after a {how}")
        differ = [i for i in before if after[i] != before[i]]
        expect_eq(differ[:5], [], f"tasks that changed in a {how} (of {len(differ)}): "
                  + "; ".join(f"{i}: {before[i]} -> {after[i]}" for i in differ[:2]))
        expect_eq(counts(d), before_counts, f"the projects' counts after a {how}")
        # the name index came back: a name of the batch is taken, a new one is not
        expect_error(d.call, "conflict", "task.add", project=big["id"], title="x", command="true",
                     name=f"b{BIG - 1}")
    # and the graph runs on: the waiting task's dependency runs, it is ready
    waiting = next(t for t in before.values() if t["status"] == "waiting")
    dep = waiting["depends_on"][0]
    d.call("task.start", task_id=dep)
    d.wait_task_status(dep, ["completed"])
    expect_eq(d.task(waiting["id"])["status"], "ready", "the waiting task, once its dependency completed")
    d.call("task.cancel", task_id=next(t["id"] for t in before.values() if t["status"] == "running"))
    d.wait_tasks(run, until=lambda ts: all(t["status"] != "running" for t in ts), timeout=30)


if __name__ == "__main__":
    main()
