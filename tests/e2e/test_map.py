"""Fan-out and fan-in: a task with map_over expands, when the dependency it
maps over completes, into one child per item of that dependency's result
(NAME[i], DAGD_ITEM, {{item}}), at most map_concurrency of them at a time;
its dependents receive the array of the children's results.  The expansion
is in the same commit as that completion: a kill -9 at any point loses no
child and makes none twice."""

import collections
import json
import os
import time

from dagdtest import (ACTIVE, DAGCTL, Daemon, daemon, expect_eq, expect_error, main, read_file,
                      select_events, test, wait_for, workdir)


def producer(d, p, result, name="list"):
    return d.add(p, [DAGCTL, "complete", "--result", json.dumps(result)], title=name,
                 name=name)["id"]


def children_of(tasks, mapped):
    return sorted((t for t in tasks if t.get("map_parent") == mapped), key=lambda t: t["map_index"])


@test
def an_empty_list_completes_the_mapped_task_at_once_with_an_empty_array():
    d, w = daemon(), workdir()
    p = d.project()
    lst = producer(d, p, [])
    m = d.add(p, f"touch {w}/ran", title="resize", name="resize", depends_on=[lst], map_over="list")["id"]
    after = d.add(p, f'cat "$DAGD_INPUTS" > {w}/inputs', title="after", depends_on=[m])["id"]
    since = d.call("daemon.status")["last_event_seq"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["id"]: t for t in d.wait_done(p)}
    expect_eq(tasks[m]["result"], [], "the mapped task's result")
    expect_eq((tasks[m]["expanded"], tasks[m]["map_count"], tasks[m]["attempt"]), (True, 0, 0),
              "expanded, into no child, no sandbox")
    assert not os.path.exists(f"{w}/ran"), "the mapped task's own command never runs"
    expect_eq(json.loads(read_file(f"{w}/inputs")), {"resize": []}, "the fan-in's inputs")
    events = d.events(since, project=p["id"])
    expect_eq([e["payload"]["count"] for e in select_events(events, "TASK_EXPANDED", task_id=m)], [0],
              "TASK_EXPANDED")
    assert after


@test
def one_item_makes_one_child_with_its_item_and_the_fan_in_gets_its_result():
    d, w = daemon(), workdir()
    p = d.project()
    lst = producer(d, p, [{"f": "a b.png", "n": 1}])
    m = d.add(p, ["sh", "-c", f'printf "%s" "$DAGD_ITEM" > {w}/item; printf "%s" "$1" > {w}/f; '
                  f'{DAGCTL} complete --result "{{\\"got\\": \\"$1\\"}}"', "sh", "{{item.f}}"],
              title="resize", name="resize", depends_on=[lst], map_over="list", env={"N": "{{item.n}}"})["id"]
    after = d.add(p, f'cat "$DAGD_INPUTS" > {w}/inputs', title="after", depends_on=[m])["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = d.wait_done(p)
    kids = children_of(tasks, m)
    expect_eq([(k["name"], k["item"], k["map_index"]) for k in kids],
              [("resize[0]", {"f": "a b.png", "n": 1}, 0)], "the child")
    expect_eq(json.loads(read_file(f"{w}/item")), {"f": "a b.png", "n": 1}, "DAGD_ITEM")
    expect_eq(read_file(f"{w}/f"), "a b.png", "{{item.f}}")
    expect_eq(json.loads(read_file(f"{w}/inputs")), {"resize": [{"got": "a b.png"}]}, "the fan-in's inputs")
    mt = next(t for t in tasks if t["id"] == m)
    expect_eq((mt["status"], mt["result"], mt["map_count"]), ("completed", [{"got": "a b.png"}], 1),
              "the mapped task")
    assert kids[0]["depends_on"] == [lst] and kids[0]["id"] in mt["depends_on"], \
        "a child depends on what its mapped task depended on; the mapped task on its children"
    assert after


@test
def a_result_that_is_not_an_array_fails_the_mapped_task_and_its_dependents():
    d = daemon()
    p = d.project()
    lst = producer(d, p, {"not": "a list"})
    m = d.add(p, "true", title="m", name="m", depends_on=[lst], map_over="list", max_retries=2)["id"]
    after = d.add(p, "true", title="after", depends_on=[m])["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["id"]: t for t in d.wait_tasks(p)}
    expect_eq((tasks[m]["status"], tasks[after]["status"]), ("failed", "upstream_failed"), "statuses")
    assert "not a JSON array" in tasks[m]["error_message"], tasks[m]["error_message"]


@test
def a_child_that_fails_fails_the_mapped_task_and_its_dependents_until_it_is_retried():
    d, w = daemon(), workdir()
    p = d.project()
    lst = producer(d, p, [0, 1, 2])
    m = d.add(p, f'test "{{{{item}}}}" != 1 -o -e {w}/fixed', title="m", name="m", depends_on=[lst],
              map_over="list")["id"]
    after = d.add(p, f"touch {w}/after", title="after", depends_on=[m])["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = d.wait_tasks(p)
    by = {t["id"]: t for t in tasks}
    kids = children_of(tasks, m)
    expect_eq([k["status"] for k in kids], ["completed", "failed", "completed"], "children")
    expect_eq((by[m]["status"], by[after]["status"]), ("failed", "upstream_failed"), "mapped, after")
    assert "item 1 (m[1]) failed" in by[m]["error_message"], by[m]["error_message"]
    assert not os.path.exists(f"{w}/after")
    # the child again: the mapped task and its dependents wait again, then complete
    open(f"{w}/fixed", "w").close()
    d.call("task.retry", task_id=kids[1]["id"])
    tasks = {t["id"]: t for t in d.wait_done(p)}
    expect_eq((tasks[m]["result"], tasks[m]["attempt"]), ([None, None, None], 0), "the mapped task, at last")
    assert os.path.exists(f"{w}/after")


@test
def rules_over_a_group_judge_every_item_of_a_mapped_dependency():
    """any_succeeded and all_failed count a mapped dependency's items: they
    wait for every item, even one that ends after the mapped task failed
    with another, while the default rule fails at once."""
    d, w = daemon(), workdir()
    p = d.project(max_concurrency=10)
    lst = producer(d, p, [0, 1, 2])
    # item 1 fails at once; item 2 ends later, after the mapped task failed
    m = d.add(p, f'if [ "{{{{item}}}}" = 2 ]; then while [ ! -e {w}/go ]; do sleep 0.05; done; '
                 f'touch {w}/late; fi; test "{{{{item}}}}" != 1', title="m", name="m", depends_on=[lst],
              map_over="list")["id"]
    anyok = d.add(p, f"test -e {w}/late && touch {w}/anyok", title="any", depends_on=[m],
                  trigger="any_succeeded")["id"]
    allbad = d.add(p, f"touch {w}/allbad", title="all failed", depends_on=[m], trigger="all_failed")["id"]
    plain = d.add(p, "true", title="plain", depends_on=[m])["id"]
    # every item fails: the other way round
    m2 = d.add(p, "false", title="m2", name="m2", depends_on=[lst], map_over="list")["id"]
    anyok2 = d.add(p, f"touch {w}/anyok2", title="any 2", depends_on=[m2], trigger="any_succeeded")["id"]
    allbad2 = d.add(p, f"touch {w}/allbad2", title="all failed 2", depends_on=[m2],
                    trigger="all_failed")["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: d.task(m)["status"] == "failed", timeout=60, what="the mapped task to fail with item 1")
    expect_eq(d.task(plain)["status"], "upstream_failed", "the default rule, at once")
    expect_eq((d.task(anyok)["status"], d.task(allbad)["status"]), ("waiting", "waiting"),
              "rules over the group, while an item runs")
    open(f"{w}/go", "w").close()
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=60)}
    expect_eq([tasks[t]["status"] for t in (anyok, allbad, anyok2, allbad2)],
              ["completed", "skipped", "skipped", "completed"], "any_succeeded, all_failed")
    expect_eq(sorted(f for f in os.listdir(w) if f in ("anyok", "allbad", "anyok2", "allbad2")),
              ["allbad2", "anyok"], "what ran")


@test
def a_mapped_tasks_children_are_one_card_on_the_board():
    d = daemon()
    p = d.project()
    lst = producer(d, p, list(range(6)))
    m = d.add(p, "true", title="resize", name="resize", depends_on=[lst], map_over="list")["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    rc, out, err = d.dagctl("board", p["name"], "--width", "120")
    expect_eq(rc, 0, f"dagctl board ({err})")
    assert "resize[] x6" in out, out
    assert "resize[3]" not in out, out
    expect_eq(out.split("\n")[1].count("done 8"), 1, f"the done lane counts every task: {out}")
    rc, out, err = d.dagctl("board", p["name"], "--json")
    expect_eq(sum(len(l["tasks"]) for l in json.loads(out)["lanes"]), 8, "tasks in --json, each")


@test
def a_mapped_tasks_children_apart_in_a_lane_are_still_one_card():
    # the done lane is the most recent first: the mapped task, its item 1,
    # a task that ended between its items, its item 0; the two items are
    # one card all the same, where the first of them is
    d, w = daemon(), workdir()
    p = d.project()
    lst = producer(d, p, [0, 1])
    m = d.add(p, f'if [ "{{{{item}}}}" = 1 ]; then while [ ! -e {w}/go ]; do sleep 0.05; done; fi',
              title="apart", name="apart", depends_on=[lst], map_over="list")["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    first = lambda: [t for t in d.tasks(p) if t.get("map_parent") == m and t.get("map_index") == 0]
    wait_for(lambda: first() and first()[0]["status"] == "completed", timeout=30, what="item 0 to end")
    time.sleep(0.01)
    between = d.add(p, "true", title="between", name="between")["id"]
    wait_for(lambda: d.task(between)["status"] == "completed", timeout=30, what="the task between")
    time.sleep(0.01)
    open(f"{w}/go", "w").close()
    d.wait_done(p)
    done = [t["id"] for t in sorted(d.tasks(p), key=lambda t: (t["status_changed_at"], int(t["id"][2:])),
                                     reverse=True)]
    expect_eq(done.index(between) - done.index(first()[0]["id"]), -1, f"the task between its items: {done}")
    rc, out, err = d.dagctl("board", p["name"], "--width", "120")
    expect_eq(rc, 0, f"dagctl board ({err})")
    assert "apart[] x2" in out, out
    assert "apart[0]" not in out and "apart[1]" not in out, out
    assert "between" in out, out


@test
def bad_map_arguments_are_refused_and_change_nothing():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", title="a", name="a")["id"]
    before = len(d.tasks(p))
    bad = [
        ({"depends_on": [a], "map_over": "b"}, "not one of the task's dependencies"),
        ({"map_over": "a"}, "not one of the task's dependencies"),
        ({"depends_on": [a], "map_over": 3}, "'map_over'"),
        ({"depends_on": [a], "map_over": a, "map_concurrency": "2"}, "'map_concurrency'"),
        ({"depends_on": [a], "map_over": a, "map_concurrency": 0}, "'map_concurrency'"),
        ({"depends_on": [a], "map_over": a, "map_concurrency": 1.5}, "'map_concurrency'"),
        ({"depends_on": [a], "map_concurrency": 2}, "only for a task with 'map_over'"),
        ({"depends_on": [a], "map_over": ""}, "'map_over'"),
    ]
    for args, why in bad:
        err = expect_error(lambda: d.call("task.add", project=p["id"], title="bad", command="true",
                                          **args), "bad_request")
        assert why in err.message, f"{args}: {err.message!r} does not say {why!r}"
    err = expect_error(lambda: d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "l", "title": "l", "command": "true"},
        {"name": "m", "title": "m", "command": "true", "depends_on": ["l"], "map_over": "x"}]),
        "bad_request")
    assert "tasks[1] ('m')" in err.message, err.message
    expect_eq(len(d.tasks(p)), before, "tasks after the refusals")
    # the batch's names work, and so does an id
    r = d.call("task.add_batch", project=p["id"], objects=True, tasks=[
        {"name": "l", "title": "l", "command": "true"},
        {"name": "m", "title": "m", "command": "echo {{item}}", "depends_on": ["l"], "map_over": "l",
         "map_concurrency": 2}])["tasks"]
    expect_eq((r[1]["map_over"], r[1]["map_concurrency"], r[1]["expanded"]), (r[0]["id"], 2, False),
              "a mapped task as added")


@test
def dagctl_apply_adds_a_mapped_task_and_the_same_file_again_changes_nothing():
    d, w = daemon(), workdir()
    name = f"apply-map-{os.getpid()}"
    path = os.path.join(w, "dag.json")
    with open(path, "w") as f:
        json.dump({"project": name, "autonomous": True, "tasks": [
            {"name": "list", "title": "list", "command": [DAGCTL, "complete", "--result", "[1, 2, 3]"]},
            {"name": "each", "title": "each", "command": "echo {{item}}", "depends_on": ["list"],
             "map_over": "list", "map_concurrency": 2}]}, f)
    rc, out, err = d.dagctl("apply", path)
    assert rc == 0, err
    tasks = d.wait_done(name)
    expect_eq(sorted(t["name"] for t in tasks), ["each", "each[0]", "each[1]", "each[2]", "list"], "tasks")
    rc, out, err = d.dagctl("apply", path)
    expect_eq((rc, out.strip()), (0, "0 added, 2 unchanged"), f"the same file again ({err.strip()})")


def mark_cmd(w):
    """Each run of a child leaves one line in the marker file of its item."""
    return f'echo "$DAGD_SANDBOX_ID" >> {w}/m.{{{{item}}}}; sleep 0.3; {DAGCTL} complete --result {{{{item}}}}'


def check_children(d, p, w, m, n):
    tasks = d.wait_done(p, timeout=240)
    kids = children_of(tasks, m)
    expect_eq([k["name"] for k in kids], [f"m[{i}]" for i in range(n)], "children, none lost or twice")
    for i in range(n):
        runs = read_file(f"{w}/m.{i}", "").split()
        expect_eq(len(runs), 1, f"runs of item {i}")
    mt = next(t for t in tasks if t["id"] == m)
    expect_eq(mt["result"], list(range(n)), "the fan-in")
    events = d.events(0, project=p["id"])
    expect_eq(len(select_events(events, "TASK_EXPANDED")), 1, "TASK_EXPANDED events")
    created = collections.Counter(e["payload"]["task"]["name"] for e in select_events(events, "TASK_CREATED"))
    assert all(v == 1 for v in created.values()), f"a task created twice: {created}"


@test(timeout=300)
def kill_9_in_the_middle_of_a_fan_out_loses_and_duplicates_no_child():
    d, w = Daemon().start(), workdir()
    n = 30
    p = d.project(max_concurrency=10)
    lst = producer(d, p, list(range(n)))
    m = d.add(p, mark_cmd(w), title="m", name="m", depends_on=[lst], map_over="list", map_concurrency=4)["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: len([f for f in os.listdir(w) if f.startswith("m.")]) >= 6, 60, what="some children ran")
    d.kill()
    d.start()
    check_children(d, p, w, m, n)
    d.restart()
    t = d.task(m)
    expect_eq((t["status"], t["expanded"], t["map_count"]), ("completed", True, n), "after a restart")


@test(timeout=300)
def kill_9_between_the_expansion_and_its_commit_expands_once():
    w = workdir()
    d = Daemon(env=dict(os.environ, DAGD_TEST_CRASH_AT="expanded")).start()
    n = 8
    p = d.project()
    # the report that expands is lost with the daemon: it is made again
    lst = d.add(p, f"until {DAGCTL} complete --result '{json.dumps(list(range(n)))}'; do sleep 0.2; done",
                title="list", name="list")["id"]
    m = d.add(p, mark_cmd(w), title="m", name="m", depends_on=[lst], map_over="list")["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: d.proc.poll() is not None, 30, what="dagd to kill itself at the expansion")
    assert "DAGD_TEST_CRASH_AT=expanded" in d.stderr(), d.stderr_tail()
    d.kill()
    d.env = dict(os.environ)
    d.start()
    check_children(d, p, w, m, n)
    assert lst


if __name__ == "__main__":
    main()
