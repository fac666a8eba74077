"""Keyset pagination of task.list and project.list ("after" an id, "limit"
per page, "next" while more follow): a walk page by page sees every task
once, in id order, while tasks are added and run between the pages; bad
page arguments are refused; dagctl pages for the operator transparently.
task.unblocked pages in dispatch order, "after" the key of a page's last task.
"""

from dagdtest import Daemon, expect_eq, expect_error, main, test


def walk(d, cmd, key, between=None, **args):
    """Every page of cmd, in order: the ids seen, and how many pages."""
    ids, pages, after = [], 0, None
    while True:
        page = d.call(cmd, limit=17, **args, **({"after": after} if after else {}))
        pages += 1
        assert len(page[key]) <= 17, f"a page of {len(page[key])}"
        ids += [x["id"] for x in page[key]]
        after = page.get("next")
        if after is None:
            return ids, pages
        expect_eq(after, page[key][-1]["id"], "next: the last id of the page")
        if between:
            between()


def num(i):
    return int(i.split("-")[1])


@test(timeout=90)
def a_walk_by_pages_sees_every_task_once_while_tasks_come_and_run():
    d = Daemon().start()
    p = d.project(autonomous=False, max_concurrency=3)
    other = d.project(autonomous=False)
    mine = []
    for k in range(3):
        mine += [t["id"] for t in d.call("task.add_batch", project=p["id"], tasks=[
            {"name": f"a{k}-{i}", "title": "t", "command": "true"} for i in range(100)])["tasks"]]
        d.call("task.add_batch", project=other["id"], tasks=[
            {"name": f"b{k}-{i}", "title": "t", "command": "true"} for i in range(20)])
    added = []

    def between():
        added.append(d.add(p, "true")["id"])
        d.call("task.start", task_id=mine[len(added) * 3])     # and some run meanwhile

    ids, pages = walk(d, "task.list", "tasks", between, project=p["id"])
    assert ids == sorted(ids, key=num), "pages out of id order"
    expect_eq(len(ids), len(set(ids)), "tasks seen twice")
    missed = set(mine) - set(ids)
    expect_eq(missed, set(), "tasks that existed all along and were missed")
    assert set(ids) <= set(mine) | set(added), "a task of another project"
    assert pages >= 18, f"only {pages} pages"
    # with a status filter: the ready ones, each once
    d.wait_tasks(p, until=lambda ts: not [t for t in ts if t["status"] in ("spawning", "running")])
    ready, _ = walk(d, "task.list", "tasks", status="ready", project=p["id"])
    expect_eq(sorted(ready, key=num), [t["id"] for t in d.tasks(p) if t["status"] == "ready"],
              "the ready tasks, by pages")
    d.stop()


@test(timeout=60)
def projects_come_by_pages_and_bad_page_arguments_are_refused():
    d = Daemon().start()
    made = [d.project(name=f"p{i}")["id"] for i in range(40)]
    ids, pages = walk(d, "project.list", "projects")
    expect_eq((ids, pages), (made, 3), "projects by pages")
    for args in ({"after": "p-1"}, {"after": 7}, {"after": "t-x"}, {"limit": 0}, {"limit": 100001},
                 {"limit": "5"}):
        expect_error(d.call, "bad_request", "task.list", **args)
    expect_error(d.call, "bad_request", "project.list", after="t-1")
    expect_eq(d.call("project.list", after="p-999")["projects"], [], "after the last one")
    d.stop()


@test(timeout=90)
def dagctl_lists_more_than_a_page_without_being_asked():
    d = Daemon().start()
    p = d.project(autonomous=False)
    for k in range(3):
        d.call("task.add_batch", project=p["id"], tasks=[
            {"name": f"n{k}-{i}", "title": "t", "command": "true"} for i in range(900)])
    rc, out, err = d.dagctl("--json", "task", "list", p["name"])
    import json
    ids = [t["id"] for t in json.loads(out)["tasks"]]
    expect_eq((rc, len(ids), len(set(ids))), (0, 2700, 2700), f"dagctl task list --json ({err})")
    rc, out, err = d.dagctl("task", "list", p["name"])
    expect_eq((rc, len(out.splitlines())), (0, 2701), f"dagctl task list: a header and a line a task ({err})")
    d.stop()


@test(timeout=60)
def a_listing_by_names_gives_those_that_exist_in_id_order_by_pages():
    d = Daemon().start()
    p, other = d.project(autonomous=False), d.project(autonomous=False)
    made = d.call("task.add_batch", project=p["id"], tasks=[
        {"name": f"n{i}", "title": "t", "command": "true"} for i in range(40)])["tasks"]
    d.call("task.add_batch", project=other["id"], tasks=[{"name": "n5", "title": "t", "command": "true"}])
    ids = {t["name"]: t["id"] for t in made}
    d.call("task.hold", task_id=ids["n7"])
    names = ["n30", "gone", "n7", "n5", "n30", "n12", "n39", "n0"]
    got = [(t["name"], t["id"]) for t in d.call("task.list", project=p["id"], names=names)["tasks"]]
    expect_eq(got, [(n, ids[n]) for n in ("n0", "n5", "n7", "n12", "n30", "n39")],
              "those that exist, of this project, once each, by id")
    ids_by_pages, pages = walk(d, "task.list", "tasks", project=p["id"], names=[f"n{i}" for i in range(40, -1, -1)])
    expect_eq((ids_by_pages, pages), ([t["id"] for t in made], 3), "by names, by pages of 17")
    expect_eq([t["name"] for t in d.call("task.list", project=p["id"], names=names, status="ready")["tasks"]],
              ["n0", "n5", "n7", "n12", "n30", "n39"], "with a status filter")
    expect_eq(d.call("task.list", project=p["id"], names=[])["tasks"], [], "no names: none")
    before = d.call("daemon.status")["last_event_seq"]
    for args in ({"names": ["n1"]}, {"project": p["id"], "names": "n1"},
                 {"project": p["id"], "names": ["n1", 7]}):
        expect_error(d.call, "bad_request", "task.list", **args)
    expect_eq(d.call("daemon.status")["last_event_seq"], before, "events (nothing changed)")
    d.stop()


PRIORITIES = ("critical", "high", "medium", "low")


@test(timeout=90)
def the_unblocked_come_by_pages_in_dispatch_order_each_once_while_tasks_run():
    d = Daemon().start()
    p = d.project(autonomous=False, max_concurrency=1)
    made = d.call("task.add_batch", project=p["id"], tasks=[
        {"name": f"u{i}", "title": "t", "command": "sleep 60", "priority": PRIORITIES[(i * 7) % 4]}
        for i in range(120)])["tasks"]
    prio = {t["id"]: (int(t["name"][1:]) * 7) % 4 for t in made}
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p, until=lambda ts: [t for t in ts if t["status"] == "running"])
    ready_at_start = {t["id"] for t in d.tasks(p) if t["status"] == "ready"}
    seen, after, pages = [], None, 0
    while True:
        page = d.call("task.unblocked", project=p["id"], limit=17, **({"after": after} if after else {}))
        pages += 1
        assert len(page["tasks"]) <= 17, f"a page of {len(page['tasks'])}"
        seen += [t["id"] for t in page["tasks"]]
        after = page.get("next")
        if after is None:
            break
        last = page["tasks"][-1]
        expect_eq(after, "%d.0.%d" % (prio[last["id"]], num(last["id"])), "next: the key of the page's last task")
        # the running one is cancelled: the next in the order starts meanwhile
        running = [t["id"] for t in d.tasks(p) if t["status"] == "running"]
        for t in running:
            d.call("task.cancel", task_id=t)
        d.wait_tasks(p, until=lambda ts: [t for t in ts if t["status"] == "running" and t["id"] not in running])
    expect_eq(len(seen), len(set(seen)), "tasks seen twice")
    keys = [(prio[t], num(t)) for t in seen]
    expect_eq(keys, sorted(keys), "the dispatch order: priority, then id")
    still = {t["id"] for t in d.tasks(p) if t["status"] == "ready"}
    expect_eq((ready_at_start & still) - set(seen), set(), "tasks ready throughout and missed")
    assert pages >= 7, f"only {pages} pages"
    for bad in ("x", "1.2", "9.0.1", "1.0.0", "1.0.5x", "-1.0.5", "1.99999999999.5", 7):
        expect_error(d.call, "bad_request", "task.unblocked", after=bad)
    for t in d.tasks(p):
        if t["status"] in ("running", "ready"):
            d.call("task.cancel", task_id=t["id"])
    d.stop()


if __name__ == "__main__":
    main()
