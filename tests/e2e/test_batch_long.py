"""A long task.add_batch line (its tasks read one at a time, not as one
tree) is judged as a short one: the same refusals, naming the same task,
all or nothing, a project it would create not created; and what it adds is
what a short one adds, statuses, names, dependencies, events and all."""

from dagdtest import daemon, expect_eq, expect_error, main, test

LONG = 8000         # tasks: a line of some 400 KB, past the 256 KiB at which tasks are left as text


def tasks(n, **extra):
    out = [{"name": "t%d" % i, "title": "t", "command": "true"} for i in range(n)]
    for i, more in extra.items():
        out[int(i[1:])].update(more)
    return out


def refused_and_nothing_changed(d, code, says, project, tasks, **args):
    before = d.call("daemon.status")
    e = expect_error(d.call, code, "task.add_batch", project=project, tasks=tasks, **args)
    for s in says:
        assert s in e.message, f"{e.message!r} does not say {s!r}"
    after = d.call("daemon.status")
    expect_eq(after["last_event_seq"], before["last_event_seq"], "events (nothing changed)")
    expect_eq(after["tasks"], before["tasks"], "tasks (nothing changed)")
    return e


@test
def a_long_batch_is_refused_as_a_short_one_naming_the_task():
    d = daemon()
    p = d.project()
    for n in (3, LONG):
        last, last_name = "i%d" % (n - 1), "t%d" % (n - 1)
        refused_and_nothing_changed(d, "not_found", ["tasks[%d] ('t%d'): no task 'nope'" % (n - 1, n - 1)],
                                    p["id"], tasks(n, **{last: {"depends_on": ["t0", "nope"]}}))
        refused_and_nothing_changed(d, "bad_request",
                                    ["tasks[1] ('t1'): unknown argument 'dependson'; did you mean 'depends_on'?"],
                                    p["id"], tasks(n, i1={"dependson": ["t0"]}))
        refused_and_nothing_changed(d, "bad_request", ["tasks[%d] ('t%d'): priority 'urgent'" % (n - 2, n - 2)],
                                    p["id"], tasks(n, **{"i%d" % (n - 2): {"priority": "urgent"}}))
        refused_and_nothing_changed(d, "bad_request", ["form a cycle"], p["id"],
                                    tasks(n, i0={"depends_on": [last_name]}, **{last: {"depends_on": ["t0"]}}))
        refused_and_nothing_changed(d, "bad_request", ["two tasks of the batch are named 't0'"], p["id"],
                                    tasks(n, **{last: {"name": "t0"}}))
        # a project it would create is not created
        refused_and_nothing_changed(d, "not_found", ["no task 'nope'"], "new-%d" % n,
                                    tasks(n, i0={"depends_on": ["nope"]}), create_project={"executor": "local"})
        expect_error(d.call, "not_found", "project.get", project="new-%d" % n)


@test
def a_duplicate_key_in_a_task_of_a_long_line_is_refused():
    d = daemon()
    p = d.project()
    body = ",".join('{"name":"d%d","title":"t","command":"true"}' % i for i in range(LONG))
    with d.client() as c:
        for bad in ('{"name":"x","title":"t","title":"u","command":"true"}',):
            line = '{"id":1,"cmd":"task.add_batch","args":{"project":"%s","tasks":[%s,%s]}}\n' % (
                p["id"], body, bad)
            c.send_raw(line.encode())
            reply = c.read_reply()
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
            assert "same key twice" in reply["error"]["message"], reply
        line = '{"id":2,"cmd":"task.add_batch","args":{"project":"%s","tasks":[%s],"tasks":[]}}\n' % (
            p["id"], body)
        c.send_raw(line.encode())
        reply = c.read_reply()
        assert reply["ok"] is False and "same key twice" in reply["error"]["message"], reply
    expect_eq(len(d.tasks(p["id"])), 0, "tasks stored")


@test
def a_long_batch_adds_what_a_short_one_adds():
    d = daemon()
    for n in (4, LONG):
        p = d.project()
        seq = d.call("daemon.status")["last_event_seq"]
        ts = tasks(n, i1={"depends_on": ["t0"], "priority": "high", "env": {"A": "b"}},
                   i2={"depends_on": ["t1", "t0"], "trigger": "t1.succeeded || t0.failed"},
                   i3={"kind": "approval"})
        del ts[3]["command"]
        r = d.call("task.add_batch", project=p["id"], tasks=ts)
        got = r["tasks"]
        expect_eq(len(got), n, "tasks in the reply")
        expect_eq([t["name"] for t in got[:4]], ["t0", "t1", "t2", "t3"], "names")
        expect_eq([t["status"] for t in got[:4]], ["ready", "waiting", "waiting", "awaiting_approval"], "statuses")
        t2 = d.task(got[2]["id"])
        expect_eq(sorted(t2["depends_on"]), sorted([got[0]["id"], got[1]["id"]]), "t2's dependencies")
        expect_eq(t2["trigger"], "t1.succeeded || t0.failed", "t2's trigger")
        t1 = d.task(got[1]["id"])
        expect_eq((t1["priority"], t1["env"]), ("high", {"A": "b"}), "t1's priority and env")
        events = d.call("events.subscribe", since=seq, follow=False, limit=n + 10)["events"]
        created = [e for e in events if e["type"] == "TASK_CREATED"]
        expect_eq(len(created), n, "TASK_CREATED events")
        expect_eq([e["seq"] for e in events], list(range(seq + 1, seq + 1 + len(events))), "seqs, without gaps")
        expect_eq(created[1]["payload"]["task"]["depends_on"], [got[0]["id"]], "t1's event's depends_on")


if __name__ == "__main__":
    main()
