"""The graph stays a DAG of known tasks within one project: cycles, unknown
ids and cross-project edges are refused, and task.add_batch is all or nothing."""

from dagdtest import (DagdError, daemon, expect_eq, expect_error, main, select_events, test)


def edges_unchanged(d, project, since, before):
    """Nothing changed since `since`: same depends_on everywhere, no events."""
    after = {t["id"]: sorted(t["depends_on"]) for t in d.tasks(project)}
    expect_eq(after, before, "depends_on after the refusals")
    expect_eq(d.events(since, project=project["id"]), [], "events after the refusals")


@test
def task_depend_refuses_cycles():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", title="a")["id"]
    b = d.add(p, "true", title="b", depends_on=[a])["id"]
    c = d.add(p, "true", title="c", depends_on=[b])["id"]
    before = {t["id"]: sorted(t["depends_on"]) for t in d.tasks(p)}
    since = d.call("daemon.status")["last_event_seq"]
    expect_error(d.call, "bad_request", "task.depend", task_id=a, on=a)
    expect_error(d.call, "bad_request", "task.depend", task_id=a, on=b)
    expect_error(d.call, "bad_request", "task.depend", task_id=a, on=[c])
    expect_error(d.call, "bad_request", "task.depend", task_id=b, on=[c, a])
    edges_unchanged(d, p, since, before)


@test
def task_depend_and_undepend_update_edges_and_unmet_counts():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", title="a")["id"]
    b = d.add(p, "true", title="b")["id"]
    c = d.add(p, "true", title="c")["id"]
    since = d.call("daemon.status")["last_event_seq"]
    t = d.call("task.depend", task_id=c, on=[a, b])["task"]
    expect_eq((sorted(t["depends_on"]), t["unmet"], t["status"]),
              (sorted([a, b]), 2, "waiting"), "c after depending on a and b")
    t = d.call("task.undepend", task_id=c, on=a)["task"]
    expect_eq((t["depends_on"], t["unmet"], t["status"]), ([b], 1, "waiting"),
              "c after undepending a")
    t = d.call("task.undepend", task_id=c, on=[b])["task"]
    expect_eq((t["depends_on"], t["unmet"], t["status"]), ([], 0, "ready"), "c with no deps")
    events = select_events(d.events(since, project=p["id"]), "TASK_DEPENDENCY_UPDATED",
                           task_id=c)
    expect_eq([(sorted(e["payload"]["depends_on"]), sorted(e["payload"]["added"]),
                sorted(e["payload"]["removed"])) for e in events],
              [(sorted([a, b]), sorted([a, b]), []), ([b], [], [a]), ([], [], [b])],
              "TASK_DEPENDENCY_UPDATED payloads")


@test
def unknown_dependency_ids_are_refused():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", title="a")["id"]
    expect_error(d.call, "not_found", "task.add", project=p["id"], title="x", command="true",
                 depends_on=[a, "t-999999"])
    expect_eq([t["id"] for t in d.tasks(p)], [a], "tasks after the refused add")
    expect_error(d.call, "not_found", "task.depend", task_id=a, on="t-999999")
    expect_eq(d.task(a)["depends_on"], [], "a's depends_on")


@test
def dependencies_across_projects_are_refused():
    d = daemon()
    p1, p2 = d.project(), d.project()
    a = d.add(p1, "true", title="a")["id"]
    b = d.add(p2, "true", title="b")["id"]
    for fn, args in [("task.add", dict(project=p2["id"], title="x", command="true",
                                       depends_on=[a])),
                     ("task.depend", dict(task_id=b, on=a)),
                     ("task.add_batch", dict(project=p2["id"], tasks=[
                         dict(name="x", title="x", command="true", depends_on=[a])]))]:
        try:
            r = d.call(fn, **args)
        except DagdError as e:
            assert e.code in ("bad_request", "invalid_state", "not_found"), \
                f"{fn} across projects answered {e.code}"
        else:
            raise AssertionError(f"{fn} across projects succeeded: {r}")
    expect_eq([(t["id"], t["depends_on"]) for t in d.tasks(p2)], [(b, [])], "tasks of p2")


@test
def add_batch_creates_a_dag_by_local_names():
    d = daemon()
    p = d.project()
    first = d.add(p, "true", title="existing")["id"]
    r = d.call("task.add_batch", project=p["name"], objects=True, tasks=[
        dict(name="fetch", title="Fetch", command=["true"], depends_on=[first]),
        dict(name="build", title="Build", command="true", depends_on=["fetch"]),
        dict(name="test", title="Test", command="true", depends_on=["build", "fetch"]),
    ])
    expect_eq(r["project"]["id"], p["id"], "project in the reply")
    fetch, build, tst = r["tasks"]
    expect_eq([t["name"] for t in r["tasks"]], ["fetch", "build", "test"], "names, in order")
    expect_eq(fetch["depends_on"], [first], "fetch depends on the existing task")
    expect_eq(build["depends_on"], [fetch["id"]], "build depends on fetch")
    expect_eq(sorted(tst["depends_on"]), sorted([build["id"], fetch["id"]]), "test's deps")
    expect_eq([t["status"] for t in r["tasks"]], ["waiting"] * 3, "statuses")
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)


@test
def add_batch_can_create_its_project():
    d = daemon()
    name = f"batch-created-{id(d)}"
    r = d.call("task.add_batch", project=name, create_project={"name": name, "autonomous": True},
               tasks=[dict(name="one", title="One", command="true"),
                      dict(name="two", title="Two", command="true", depends_on=["one"])])
    expect_eq((r["project"]["name"], r["project"]["autonomous_execution_enabled"]),
              (name, True), "the created project")
    d.wait_done(r["project"])


@test
def a_batchs_reply_says_ids_names_and_statuses_unless_asked_for_the_objects():
    d = daemon()
    p = d.project()
    r = d.call("task.add_batch", project=p["id"], tasks=[
        dict(name="one", title="One", command="true"),
        dict(name="two", title="Two", command="true", depends_on=["one"])])
    expect_eq([sorted(t) for t in r["tasks"]], [["id", "name", "status"]] * 2, "the fields of a short reply")
    expect_eq([(t["name"], t["status"]) for t in r["tasks"]], [("one", "ready"), ("two", "waiting")],
              "names and statuses")
    expect_eq(d.call("task.get", task_id=r["tasks"][1]["id"])["task"]["depends_on"], [r["tasks"][0]["id"]],
              "the short reply's ids are the tasks'")
    expect_error(d.call, "bad_request", "task.add_batch", project=p["id"], objects="yes", tasks=[])


@test(timeout=280)
def a_batch_of_100000_in_one_line_is_all_or_nothing():
    """One operator line of 100,000 tasks (~5 MB): a bad dependency in the
    last refuses it all, and changes nothing; the same batch made right is
    taken whole, its chains intact."""
    d = daemon()
    p = d.project()
    n = 100000
    tasks = [{"name": f"n{i}", "title": "t", "command": ["true"]} | ({"depends_on": [f"n{i - 1}"]} if i % 100 else {})
             for i in range(n)]
    since = d.call("daemon.status")["last_event_seq"]
    tasks[-1]["depends_on"] = ["n99998", "no-such-task"]
    with d.client(timeout=240) as c:      # (a sanitizer build takes its time)
        e = expect_error(c.call, "not_found", "task.add_batch", project=p["id"], tasks=tasks)
        assert "tasks[99999]" in e.message and "no-such-task" in e.message, e.message
        expect_eq(d.call("project.get", project=p["id"])["project"]["counts"]["waiting"], 0,
                  "tasks after the refusal")
        expect_eq(d.events(since, project=p["id"]), [], "events after the refusal")
        tasks[-1]["depends_on"] = ["n99998"]
        made = c.call("task.add_batch", project=p["id"], tasks=tasks)["tasks"]
    expect_eq(len(made), n, "tasks in the reply")
    counts = d.call("project.get", project=p["id"])["project"]["counts"]
    expect_eq((counts["ready"], counts["waiting"]), (n // 100, n - n // 100), "ready heads and waiting links")
    last = d.call("task.get", task_id=made[-1]["id"])["task"]
    expect_eq(last["depends_on"], [made[-2]["id"]], "the last link's dependency")


@test
def add_batch_is_all_or_nothing():
    d = daemon()
    p = d.project()
    good = [dict(name=f"g{i}", title=f"good {i}", command="true") for i in range(3)]
    since = d.call("daemon.status")["last_event_seq"]
    bad_batches = {
        "a bad priority": good + [dict(name="bad", title="b", command="true", priority="asap")],
        "a cycle": good + [dict(name="x", title="x", command="true", depends_on=["y"]),
                           dict(name="y", title="y", command="true", depends_on=["x"])],
        "a duplicate name": good + [dict(name="g0", title="again", command="true")],
        "a missing command": good + [dict(name="nocmd", title="no command")],
        "an unknown id": good + [dict(name="u", title="u", command="true",
                                      depends_on=["t-999999"])],
    }
    for what, tasks in bad_batches.items():
        try:
            r = d.call("task.add_batch", project=p["id"], tasks=tasks)
        except DagdError as e:
            assert e.code in ("bad_request", "not_found", "conflict"), \
                f"a batch with {what} answered {e.code}"
        else:
            raise AssertionError(f"a batch with {what} was accepted: {r}")
    expect_eq(d.tasks(p), [], "tasks after the refused batches")
    name = f"never-created-{id(p)}"
    expect_error(d.call, "bad_request", "task.add_batch", project=name,
                 create_project={"name": name}, tasks=bad_batches["a cycle"])
    expect_error(d.call, "not_found", "project.get", project=name)
    expect_eq(d.events(since, project=p["id"]), [], "events after the refused batches")


if __name__ == "__main__":
    main()
