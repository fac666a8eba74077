"""Named pools: pool.set/list/delete (kept in the database), and a task's
pools ({"gpu": 1}) with weights: a task is dispatched only while every pool
it names has room, on top of the other limits, in priority order, and a
large task is not starved by smaller ones behind it (the pool is kept for
it).  Use is counted again at start-up from the running tasks."""

import json
import os
import threading
import time

from dagdtest import (Client, Daemon, daemon, expect_eq, expect_error, main, read_file,
                      run_as_nobody, select_events, test, wait_for, workdir)

ACTIVE = ("spawning", "running", "validating")


def pool_peaks(events, weights):
    """Replay the status changes: the largest use of each pool at once, from
    the tasks' weights ({task_id: {pool: weight}})."""
    status, peak = {}, {}
    for ev in events:
        if ev["type"] != "TASK_STATUS_CHANGED":
            continue
        status[ev["payload"]["task_id"]] = ev["payload"]["new_status"]
        use = {}
        for tid, s in status.items():
            if s in ACTIVE:
                for pool, w in weights.get(tid, {}).items():
                    use[pool] = use.get(pool, 0) + w
        for pool, u in use.items():
            peak[pool] = max(peak.get(pool, 0), u)
    return peak


def spawn_order(events):
    return [e["payload"]["task_id"] for e in events
            if e["type"] == "TASK_STATUS_CHANGED" and e["payload"]["new_status"] == "spawning"]


def pools_by_name(d):
    return {p["name"]: p for p in d.call("pool.list")["pools"]}


@test(timeout=120)
def pool_limits_are_never_exceeded():
    d = Daemon().start()
    d.call("pool.set", name="gpu", size=2)
    d.call("pool.set", name="lic", size=3)
    since = d.call("daemon.status")["last_event_seq"]
    p1 = d.project(max_concurrency=10)
    p2 = d.project(max_concurrency=10)
    plan = [({"gpu": 1}, p1), ({"gpu": 2}, p2), ({"gpu": 1, "lic": 2}, p1), ({"lic": 1}, p2),
            ({"gpu": 1}, p2), ({"lic": 3}, p1), ({"gpu": 2, "lic": 1}, p2), ({"gpu": 1}, p1),
            ({"lic": 2}, p2), ({"gpu": 1, "lic": 1}, p1), ({}, p1), ({}, p2)]
    weights = {}
    for pools, p in plan:
        t = d.add(p, "sleep 0.3", pools=pools) if pools else d.add(p, "sleep 0.3")
        weights[t["id"]] = pools
        expect_eq(t["pools"], pools, "the task's pools")
    for p in (p1, p2):
        d.call("project.set_autonomous", project=p["id"], enabled=True)
    for p in (p1, p2):
        d.wait_done(p, timeout=60)
    peaks = pool_peaks(d.events(since), weights)
    expect_eq(peaks, {"gpu": 2, "lic": 3}, "the largest use of each pool")
    expect_eq({n: p["used"] for n, p in pools_by_name(d).items()}, {"gpu": 0, "lic": 0}, "use at the end")
    d.stop()


@test(timeout=120)
def a_large_task_is_not_starved_by_a_stream_of_small_ones():
    d, w = daemon(), workdir()
    d.call("pool.set", name="slot2", size=2)
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True, max_concurrency=10)
    small = lambda i: d.add(p, f"sleep 0.4; echo {i} >> {w}/small", title=f"small {i}", pools={"slot2": 1})
    first = [small(i)["id"] for i in range(2)]
    wait_for(lambda: pools_by_name(d)["slot2"]["used"] == 2, what="the pool to be full")
    big = d.add(p, f"echo big >> {w}/big", title="big", pools={"slot2": 2})["id"]
    # a stream of small tasks after it, for longer than the first ones take
    later, stop = [], time.monotonic() + 2.0
    while time.monotonic() < stop:
        later.append(small(len(later) + 2)["id"])
        time.sleep(0.1)
    d.wait_done(p, timeout=90)
    order = spawn_order(d.events(since, project=p["id"]))
    assert order.index(big) < min(order.index(t) for t in later), \
        f"the big task started after a small one added behind it: {order}"
    expect_eq(read_file(f"{w}/big"), "big\n", "the big task ran once")
    assert set(order[:2]) == set(first), order


@test
def a_better_task_still_goes_first():
    d, w = daemon(), workdir()
    d.call("pool.set", name="one", size=1)
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(max_concurrency=10)
    low = d.add(p, "true", priority="low", pools={"one": 1})["id"]
    mid = d.add(p, "true", priority="medium", pools={"one": 1})["id"]
    crit = d.add(p, "true", priority="critical", pools={"one": 1})["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    expect_eq(spawn_order(d.events(since, project=p["id"])), [crit, mid, low], "order of starts")


@test(timeout=120)
def pool_use_is_counted_again_after_kill_9():
    w = workdir()
    d = Daemon().start()
    d.call("pool.set", name="gpu", size=3)
    p = d.project(autonomous=True, max_concurrency=10)
    hold = f"while [ ! -e {w}/go ]; do sleep 0.05; done; echo $DAGD_TASK_ID >> {w}/ran"
    a = d.add(p, hold, pools={"gpu": 2})["id"]
    d.wait_task_status(a, "running")
    c = d.add(p, hold, pools={"gpu": 1})["id"]
    d.wait_task_status(c, "running")
    b = d.add(p, hold, pools={"gpu": 2})["id"]
    expect_eq(pools_by_name(d)["gpu"]["used"], 3, "use before the kill")
    d.kill()
    d.start()
    expect_eq(pools_by_name(d)["gpu"]["used"], 3, "use after kill -9")
    time.sleep(0.5)
    expect_eq(d.task(b)["status"], "ready", "the task that does not fit, after the restart")
    expect_eq(d.task(b)["pools"], {"gpu": 2}, "its pools after the restart")
    open(f"{w}/go", "w").close()
    d.wait_done(p, timeout=60)
    expect_eq(sorted((read_file(f"{w}/ran") or "").split()), sorted([a, b, c]), "each ran once")
    expect_eq(pools_by_name(d)["gpu"]["used"], 0, "use at the end")
    d.stop()


@test(timeout=90)
def pools_are_kept_listed_resized_and_deleted_with_dagctl():
    d = Daemon().start()
    rc, out, err = d.dagctl("pool", "set", "gpu", "2")
    assert rc == 0 and "gpu: size 2" in out, (rc, out, err)
    rc, out, err = d.dagctl("pool", "set", "db", "5")
    assert rc == 0, err
    p = d.project()
    t = d.add(p, "true", pools={"gpu": 2})
    d.kill()
    d.start()
    rc, out, err = d.dagctl("pool", "list")
    assert rc == 0, err
    lines = [l.split() for l in out.splitlines()]
    expect_eq(lines, [["NAME", "SIZE", "USED", "QUEUED", "TASKS"], ["db", "5", "0", "0", "0"],
                      ["gpu", "2", "0", "0", "1"]], "dagctl pool list after kill -9")
    # shrinking below a task's weight, or deleting a pool a task names, is refused
    e = expect_error(d.call, "bad_request", "pool.set", name="gpu", size=1)
    assert t["id"] in e.message, e.message
    rc, out, err = d.dagctl("pool", "delete", "gpu")
    assert rc != 0 and "invalid_state" in err and t["id"] in err, (rc, out, err)
    d.call("pool.set", name="gpu", size=4)
    d.call("task.remove", task_id=t["id"])
    rc, out, err = d.dagctl("pool", "delete", "gpu")
    assert rc == 0, err
    expect_eq(sorted(pools_by_name(d)), ["db"], "pools after the delete")
    evs = [e for e in d.events(0) if e["entity"] == "pool"]
    expect_eq([(e["type"], e["entity_id"], e["payload"]["size"]) for e in evs],
              [("POOL_SET", "gpu", 2), ("POOL_SET", "db", 5), ("POOL_SET", "gpu", 4), ("POOL_DELETED", "gpu", 4)],
              "pool events")
    d.kill()
    d.start()
    expect_eq(sorted(pools_by_name(d)), ["db"], "pools after another kill -9")
    d.stop()


@test
def bad_pool_input_is_refused_and_changes_nothing():
    d = daemon()
    d.call("pool.set", name="gpu-a", size=2)
    before = sorted(pools_by_name(d))
    p = d.project()
    since = d.call("daemon.status")["last_event_seq"]
    for pools, word in (({"gpu-b": 1}, "did you mean 'gpu-a'"),
                        ({"nothing-like-it": 1}, "no pool 'nothing-like-it'"),
                        ({"gpu-a": 0}, "positive integer"),
                        ({"gpu-a": -1}, "positive integer"),
                        ({"gpu-a": "1"}, "positive integer"),
                        ({"gpu-a": 1.5}, "positive integer"),
                        ({"gpu-a": 3}, "can never fit"),
                        (["gpu-a"], "pools")):
        e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t", command="true",
                         pools=pools)
        assert word in e.message, f"{pools}: {e.message}"
    for args, code, word in (({"name": "bad name", "size": 1}, "bad_request", "pool name"),
                             ({"name": "x", "size": 0}, "bad_request", "size"),
                             ({"name": "x", "size": "2"}, "bad_request", "size"),
                             ({"name": "x"}, "bad_request", "size"),
                             ({"size": 2}, "bad_request", "name"),
                             ({"name": "x", "size": 2, "sise": 1}, "bad_request", "did you mean")):
        e = expect_error(d.call, code, "pool.set", **args)
        assert word in e.message, f"{args}: {e.message}"
    expect_error(d.call, "not_found", "pool.delete", name="nope")
    rc, out, err = d.dagctl("pool", "set", "x", "two")
    assert rc != 0 and "SIZE" in err, (rc, out, err)
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    expect_eq(sorted(pools_by_name(d)), before, "pools after the refusals")
    expect_eq(d.events(since), [], "events after the refusals")
    if os.geteuid() == 0:
        os.chmod(d.sock, 0o666)
        sock = d.sock

        def as_nobody():
            with Client(sock) as c:
                return [c.request("pool.set", {"name": "z", "size": 1}),
                        c.request("pool.delete", {"name": "gpu-a"})]

        for reply in run_as_nobody(as_nobody):
            expect_eq((reply["ok"], reply["error"]["code"]), (False, "permission_denied"), "a non-operator")
        expect_eq(sorted(pools_by_name(d)), before, "pools after a non-operator tried")


@test
def an_apply_file_gives_pools_retry_rules_and_approvals_and_the_same_file_again_changes_nothing():
    d = daemon()
    d.call("pool.set", name="apply-gpu", size=2)
    path = os.path.join(workdir(), "dag.json")
    name = f"apply-{os.getpid()}"
    spec = {"project": name, "tasks": [
        {"name": "train", "title": "train", "command": ["true"], "pools": {"apply-gpu": 2},
         "max_retries": 2, "retry_on_exit": [75], "max_lost_retries": 1, "max_retry_duration": 60},
        {"name": "gate", "title": "ship?", "kind": "approval", "depends_on": ["train"],
         "timeout": 600, "on_timeout": "approve"},
        {"name": "ship", "title": "ship", "command": "true", "depends_on": ["gate"],
         "no_retry_on_exit": [1]},
    ]}
    with open(path, "w") as f:
        json.dump(spec, f)
    rc, out, err = d.dagctl("apply", path)
    assert rc == 0, err
    tasks = {t["name"]: t for t in d.tasks(name)}
    expect_eq((tasks["train"]["pools"], tasks["train"]["retry_on_exit"], tasks["train"]["max_lost_retries"],
               tasks["gate"]["kind"], tasks["gate"]["on_timeout"], tasks["ship"]["no_retry_on_exit"]),
              ({"apply-gpu": 2}, [75], 1, "approval", "approve", [1]), "what the file gave")
    rc, out, err = d.dagctl("apply", path)
    assert rc == 0 and "0 added" in out and "3 unchanged" in out, (rc, out, err)
    spec["tasks"][0]["pools"] = {"apply-gpu": 1}
    with open(path, "w") as f:
        json.dump(spec, f)
    rc, out, err = d.dagctl("apply", path, "--update")
    assert rc != 0 and "pools" in err + out, (rc, out, err)


if __name__ == "__main__":
    main()
