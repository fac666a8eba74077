"""A task's everyday life beyond running: held and released, edited before it
runs (or before its next attempt), removed, cleaned out of its project, and
run again once completed, with what depends on it.  Each through dagctl and
the protocol, on a real daemon; each change durable and announced."""

import json
import os
import socket
import subprocess
import threading
import time

from dagdtest import (DAGCTL, Daemon, dagctl, daemon, expect_eq, expect_error, main, select_events, test,
                      wait_for, workdir)


def ctl_ok(d, *args):
    rc, out, err = d.dagctl(*args)
    assert rc == 0, f"dagctl {' '.join(args)} exited {rc}: {err.strip()}"
    return out


def ctl_refused(d, *args, code="invalid_state"):
    rc, out, err = d.dagctl(*args)
    expect_eq(rc, 1, f"dagctl {' '.join(args)} ({err.strip()})")
    assert f"{code}:" in err, f"dagctl {' '.join(args)}: not a {code}: {err!r}"
    return err


def statuses(d, p):
    return {t["name"]: t["status"] for t in d.tasks(p)}


def seq(d):
    return d.call("daemon.status")["last_event_seq"]


def cancel_and_wait_gone(d, task_id):
    """task.cancel, then wait until its sandbox has exited."""
    since = seq(d)
    d.call("task.cancel", task_id=task_id)
    wait_for(lambda: select_events(d.events(since), "SANDBOX_EXITED", task_id=task_id),
             what=f"the sandbox of {task_id} to exit")


# --- hold and release ---------------------------------------------------------


@test
def a_held_task_is_never_started_in_manual_or_autonomous_mode_and_stays_held_after_a_restart():
    d = Daemon().start()
    p = d.project()
    pn = p["name"]
    a = d.add(p, "true", name="a")["id"]
    b = d.add(p, "true", name="b", depends_on=[a])["id"]
    before = seq(d)

    out = ctl_ok(d, "task", "hold", f"{pn}/a", "b", "-p", pn)
    assert f"{a}: ready (held)" in out and f"{b}: waiting (held)" in out, f"task hold: {out!r}"
    expect_eq(d.task(a)["held"], True, "held in the task's JSON")
    held = select_events(d.events(before), "TASK_UPDATED", task_id=a)
    expect_eq([e["payload"]["changed"] for e in held], [["held"]], "TASK_UPDATED of the hold")
    expect_eq(held[0]["payload"]["task"]["held"], True, "the task in the event")
    n = len(d.events(before))
    ctl_ok(d, "task", "hold", a)
    expect_eq(len(d.events(before)), n, "a second hold changes nothing and says nothing")

    r = d.call("project.start", project=p["id"])
    expect_eq((r["released"], r["held"]), ([], [a]), "project.start passes a held task by")
    rc, out, err = d.dagctl("start", pn)
    expect_eq((rc, out), (0, ""), "dagctl start releases nothing")
    assert f"held, so not released: {a}" in err, f"dagctl start does not say what it passed by: {err!r}"
    e = expect_error(d.call, "invalid_state", "task.start", task_id=a)
    assert "held" in e.message, f"task.start of a held task: {e.message!r}"
    out = ctl_ok(d, "task", "list", pn)
    assert "ready (held)" in out and "waiting (held)" in out, f"task list: {out!r}"

    d.restart()
    expect_eq((d.task(a)["held"], d.task(b)["held"]), (True, True), "held after a restart")
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    time.sleep(1.5)
    expect_eq(statuses(d, p), {"a": "ready", "b": "waiting"}, "an autonomous project starts nothing held")
    expect_eq(d.call("task.unblocked", project=p["id"])["tasks"], [], "a held task is not next to run")
    rc, out, err = d.dagctl("wait", "-p", pn, "--timeout", "1")
    expect_eq(rc, 3, "wait on held tasks times out")
    assert "2 tasks are held: they wait for `dagctl task release`" in err, f"wait says nothing of holds: {err!r}"

    out = ctl_ok(d, "task", "release", a)
    expect_eq(out.strip().split(": ")[0], a, "task release prints the task")
    d.wait_task_status(a, "completed")
    d.wait_task_status(b, "ready")
    time.sleep(1)
    expect_eq(d.task(b)["status"], "ready", "a held task that became ready waits")
    assert "ready (held)" in ctl_ok(d, "task", "show", b), "task show says held"
    ctl_ok(d, "task", "release", f"{pn}/b")
    d.wait_task_status(b, "completed")
    expect_eq(d.task(b)["held"], False, "released")


@test
def hold_and_release_refuse_bad_input_and_change_nothing():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", name="a")["id"]
    before = seq(d)
    expect_error(d.call, "bad_request", "task.hold", task_id=a, held=True)
    expect_error(d.call, "bad_request", "task.release")
    expect_error(d.call, "not_found", "task.hold", task_id="t-999999")
    rc, out, err = d.dagctl("task", "hold", "t-999999", a)
    expect_eq(rc, 1, "hold of one that is not there and one that is")
    expect_eq(d.task(a)["held"], True, "the one that is was held all the same")
    expect_eq([e["type"] for e in d.events(before)], ["TASK_UPDATED"], "one event, for the one held")


# --- edit ---------------------------------------------------------------------


@test
def edit_changes_a_task_not_started_and_the_next_attempt_of_a_failed_one_durably():
    d = Daemon().start()
    p = d.project()
    pn = p["name"]
    a = d.add(p, "exit 3", name="a")["id"]
    w = d.add(p, "true", name="w", depends_on=[a])["id"]
    before = seq(d)

    out = ctl_ok(d, "task", "edit", f"{pn}/w", "--title", "Renamed", "--priority", "high",
                 "--timeout", "60", "--retries", "2", "--", "echo", "edited")
    assert out.startswith(f"{w}: changed ") and "title" in out and "command" in out, f"task edit: {out!r}"
    t = d.task(w)
    expect_eq((t["title"], t["priority"], t["timeout"], t["max_retries"], t["command"]),
              ("Renamed", "high", 60, 2, ["echo", "edited"]), "the edited task")
    ev = select_events(d.events(before), "TASK_UPDATED", task_id=w)
    expect_eq(sorted(ev[0]["payload"]["changed"]),
              ["command", "max_retries", "priority", "timeout", "title"], "what the event says changed")
    out = ctl_ok(d, "task", "edit", w, "--title", "Renamed")
    assert "nothing changed" in out, f"an edit that changes nothing: {out!r}"
    rc, out, err = d.dagctl("task", "edit", w)
    expect_eq(rc, 2, "task edit with nothing to change")
    assert "nothing to change" in err, err
    expect_eq(len(select_events(d.events(before), "TASK_UPDATED")), 1, "no event for no change")

    # bad input: a clear error, nothing changed
    n = len(d.events(before))
    for args, code in (({"priority": "urgent"}, "bad_request"), ({"titel": "x"}, "bad_request"),
                       ({}, "bad_request"), ({"command": []}, "bad_request"),
                       ({"title": None}, "bad_request"), ({"timeout": -1}, "bad_request")):
        e = expect_error(d.call, code, "task.edit", task_id=w, **args)
        assert e.message, args
    expect_eq(d.task(w)["title"], "Renamed", "after the refused edits")
    expect_eq(len(d.events(before)), n, "refused edits say nothing")

    # a failed task: its next attempt runs as edited
    d.call("task.start", task_id=a)
    d.wait_task_status(a, "failed")
    ctl_ok(d, "task", "edit", a, "--shell", "echo second")
    expect_eq(d.task(a)["attempt"], 1, "the past attempt is kept")
    d.restart()
    expect_eq(d.task(a)["command"], "echo second", "the edit after a restart")
    expect_eq(d.task(w)["title"], "Renamed", "the edit after a restart")
    ctl_ok(d, "task", "retry", a)
    d.call("task.start", task_id=a)
    t = d.wait_task_status(a, ("completed", "failed"))
    expect_eq((t["status"], t["attempt"]), ("completed", 2), "the edited attempt")

    # running or completed: refused
    s = d.add(p, ["sleep", "60"], name="s")["id"]
    d.call("task.start", task_id=s)
    d.wait_task_status(s, "running")
    err = ctl_refused(d, "task", "edit", s, "--title", "no")
    assert "running" in err, f"the refusal says why: {err!r}"
    ctl_refused(d, "task", "edit", a, "--title", "no")
    expect_eq(d.task(a)["title"], "task", "a completed task is unchanged")
    d.call("task.cancel", task_id=s)


# --- remove and clean ----------------------------------------------------------


@test
def remove_takes_out_a_task_nothing_waits_on_and_names_what_does():
    d = Daemon().start()
    p = d.project()
    pn = p["name"]
    a = d.add(p, "true", name="a")["id"]
    b = d.add(p, "true", name="b", depends_on=[a])["id"]
    s = d.add(p, ["sleep", "60"], name="s")["id"]
    before = seq(d)

    err = ctl_refused(d, "task", "remove", a)
    assert b in err and "waiting" in err, f"the dependent is not named: {err!r}"
    d.call("task.start", task_id=s)
    d.wait_task_status(s, "running")
    err = ctl_refused(d, "task", "remove", s)
    assert "running" in err, f"remove of a running task: {err!r}"
    expect_eq(sorted(statuses(d, p)), ["a", "b", "s"], "nothing removed")

    out = ctl_ok(d, "task", "remove", f"{pn}/b", "a", "-p", pn)
    expect_eq(out.splitlines(), [f"removed {b} (b)", f"removed {a} (a)"], "task remove prints")
    expect_error(d.call, "not_found", "task.get", task_id=a)
    ev = select_events(d.events(before), "TASK_REMOVED")
    expect_eq([(e["payload"]["task_id"], e["payload"]["name"]) for e in ev], [(b, "b"), (a, "a")],
              "TASK_REMOVED events")
    counts = d.call("project.get", project=p["id"])["project"]["counts"]
    expect_eq((counts["ready"], counts["waiting"], counts["running"]), (0, 0, 1), "the project's counts")
    cancel_and_wait_gone(d, s)
    d.restart()
    expect_eq(list(statuses(d, p)), ["s"], "gone after a restart")
    again = d.add(p, "true", name="a")
    assert again["id"] not in (a, b), "a removed task's id is never given again"


@test
def clean_removes_finished_tasks_but_those_unfinished_ones_depend_on():
    d = daemon()
    p = d.project(autonomous=True)
    pn = p["name"]
    x = d.add(p, "true", name="x")["id"]
    y = d.add(p, "true", name="y")["id"]
    f = d.add(p, "exit 1", name="f")["id"]
    u = d.add(p, "true", name="u", depends_on=[f])["id"]
    d.wait_tasks(p, until=lambda ts: all(t["status"] in ("completed", "failed", "upstream_failed")
                                         for t in ts))
    d.call("project.set_autonomous", project=p["id"], enabled=False)
    h = d.add(p, "true", name="h")["id"]
    w = d.add(p, "true", name="w", depends_on=[x, h])["id"]
    before = seq(d)

    out = ctl_ok(d, "project", "clean", pn)
    assert out.startswith(f"removed 1 task: {y}\n"), f"project clean: {out!r}"
    assert f"kept 1 (tasks not finished depend on them, or they are still stopping): {x}" in out, \
        f"what was kept: {out!r}"
    expect_eq(sorted(statuses(d, p)), ["f", "h", "u", "w", "x"], "after clean")
    r = d.call("project.clean", project=p["id"], failed=True)
    expect_eq((sorted(r["removed"]), r["kept"]), (sorted([f, u]), [x]), "clean --failed")
    expect_eq(sorted(statuses(d, p)), ["h", "w", "x"], "after clean --failed")
    expect_eq(sorted(e["payload"]["task_id"] for e in select_events(d.events(before), "TASK_REMOVED")),
              sorted([y, f, u]), "a TASK_REMOVED for each")
    expect_error(d.call, "bad_request", "project.clean", project=p["id"], failed="yes")
    expect_error(d.call, "not_found", "project.clean", project="no-such-project")
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_task_status(w, "completed")
    expect_eq(ctl_ok(d, "project", "clean", pn).splitlines()[0], "removed 3 tasks: " + " ".join(
        sorted([x, h, w], key=lambda i: int(i[2:]))), "all finished now")


@test
def wait_and_events_follow_a_removal_and_a_hold():
    d = daemon()
    p = d.project()
    pn = p["name"]
    a = d.add(p, "true", name="a")["id"]
    since = seq(d)
    env = dict(os.environ, DAGD_SOCKET=d.sock)
    w = subprocess.Popen([DAGCTL, "wait", "-p", pn, "--timeout", "30"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    assert w.poll() is None, "wait ended with a task left"
    ctl_ok(d, "task", "hold", a)
    ctl_ok(d, "task", "remove", a)
    out, err = w.communicate(timeout=20)
    expect_eq(w.returncode, 0, f"wait once the last task is removed ({err.strip()})")
    out = ctl_ok(d, "events", "--since", str(since), "--type", "TASK_UPDATED", "--type", "TASK_REMOVED")
    lines = out.splitlines()
    expect_eq([x.split()[2] for x in lines], ["TASK_UPDATED", "TASK_REMOVED"], f"events: {out!r}")
    assert f"TASK_REMOVED {a} " in lines[1] and "name=a" in lines[1], f"TASK_REMOVED line: {lines[1]!r}"


# --- run again ------------------------------------------------------------------


@test
def retry_reruns_a_completed_task_and_with_downstream_what_depends_on_it():
    d = daemon()
    p = d.project(autonomous=True)
    pn = p["name"]
    a = d.add(p, "true", name="a")["id"]
    b = d.add(p, "true", name="b", depends_on=[a])["id"]
    c = d.add(p, "true", name="c", depends_on=[b])["id"]
    d.wait_done(p)
    before = seq(d)

    out = ctl_ok(d, "task", "retry", f"{pn}/a", "--downstream", "--dry-run")
    expect_eq(out.strip(), f"would run again: {a} {b} {c}", "--dry-run")
    r = d.call("task.retry", task_id=a, dry_run=True)
    expect_eq(r["rerun"], [a], "dry run without downstream")
    expect_eq(d.events(before), [], "a dry run changes nothing")
    expect_eq(statuses(d, p), {"a": "completed", "b": "completed", "c": "completed"}, "after dry runs")

    ctl_ok(d, "task", "retry", a)
    t = d.wait_task_status(a, "completed")
    expect_eq(t["attempt"], 2, "a new attempt")
    expect_eq(d.task(b)["attempt"], 1, "b did not run again without --downstream")

    out = ctl_ok(d, "task", "retry", a, "--downstream")
    assert f"then after it: {b} {c}" in out, f"retry --downstream: {out!r}"
    d.wait_done(p)
    expect_eq([d.task(i)["attempt"] for i in (a, b, c)], [3, 2, 2], "attempts after --downstream")
    waits = select_events(d.events(before), "TASK_STATUS_CHANGED", old_status="completed",
                          new_status="waiting")
    assert {e["payload"]["task_id"] for e in waits} == {b, c}, f"b and c waited again: {waits!r}"


@test
def rerun_is_refused_while_a_dependent_runs_and_keeps_counts_exact():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", name="a")["id"]
    s = d.add(p, ["sleep", "60"], name="s", depends_on=[a])["id"]
    r = d.add(p, "true", name="r", depends_on=[a])["id"]
    d.call("task.start", task_id=a)
    d.wait_task_status(a, "completed")
    d.call("task.start", task_id=s)
    d.wait_task_status(s, "running")
    before = seq(d)
    for args in ({}, {"downstream": True}, {"dry_run": True}):
        e = expect_error(d.call, "invalid_state", "task.retry", task_id=a, **args)
        assert s in e.message and "running" in e.message, f"the refusal names s: {e.message!r}"
    expect_eq(d.events(before), [], "refused: nothing changed")
    expect_error(d.call, "bad_request", "task.retry", task_id=a, downstream=1)
    cancel_and_wait_gone(d, s)
    d.call("task.retry", task_id=a)
    t = d.task(r)
    expect_eq((t["status"], t["unmet"]), ("waiting", 1), "a ready dependent waits again")
    expect_eq(d.task(s)["unmet"], 1, "a cancelled dependent counts it unmet")


# --- apply again ------------------------------------------------------------------


def dag(project, **change):
    tasks = [
        {"name": "a", "title": "A", "command": ["echo", "a"]},
        {"name": "b", "title": "B", "command": "echo b", "depends_on": ["a"], "timeout": 60},
        {"name": "c", "title": "C", "command": "echo c", "depends_on": ["a"], "priority": "high"},
        {"name": "d", "title": "D", "command": "echo d", "depends_on": ["b", "c"], "env": {"X": "1"}},
        {"name": "e", "title": "E", "command": "echo e", "max_retries": 2},
    ]
    for name, fields in change.items():
        t = next((t for t in tasks if t["name"] == name), None)
        if t is None:
            tasks.append(t := {"name": name})
        t.update(fields)
    return {"project": project, "tasks": tasks}


def write(w, name, obj):
    path = os.path.join(w, name)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj, indent=1))
    return path


@test
def apply_again_changes_nothing_and_a_changed_file_needs_update_for_tasks_not_started():
    d, w = daemon(), workdir()
    pn = f"applied-again-{os.getpid()}"
    out = ctl_ok(d, "apply", write(w, "dag.json", dag(pn)))
    assert out.endswith("5 added, 0 unchanged\n"), f"first apply: {out!r}"
    before = seq(d)
    expect_eq(ctl_ok(d, "apply", write(w, "dag.json", dag(pn))), "0 added, 5 unchanged\n", "apply again")
    expect_eq(d.events(before), [], "apply again: no event")

    # a changed file: what differs is said, nothing changes without --update
    changed = write(w, "changed.json", dag(pn, b={"title": "B2"}, c={"priority": "low"},
                                           d={"depends_on": ["b"]}))
    rc, out, err = d.dagctl("apply", changed)
    expect_eq(rc, 1, f"apply of a changed file ({err.strip()})")
    for words in (["tasks[1] ('b')", 'title: "B" -> "B2"'], ["tasks[2] ('c')", "priority"],
                  ["tasks[3] ('d')", "depends_on"], ["--update"]):
        assert all(x in err for x in words), f"{words} not said: {err!r}"
    rc, out, err = d.dagctl("apply", changed, "--update")
    expect_eq(rc, 1, "--update of a dependency")
    assert "tasks[3] ('d')" in err and "depends_on" in err and "cannot" in err, err
    expect_eq(d.events(before), [], "refused: no change, no event")

    # --update: edits the tasks not started, adds the new one
    changed = write(w, "changed.json", dag(pn, b={"title": "B2"}, c={"priority": "low"},
                                           f={"title": "F", "command": "true", "depends_on": ["e"]}))
    out = ctl_ok(d, "apply", changed, "--update")
    assert out.endswith("1 added, 2 updated, 3 unchanged\n"), f"apply --update: {out!r}"
    ts = {t["name"]: t for t in d.tasks(pn)}
    expect_eq((ts["b"]["title"], ts["c"]["priority"], ts["f"]["depends_on"]),
              ("B2", "low", [ts["e"]["id"]]), "after --update")
    expect_eq(sorted(e["payload"]["task_id"] for e in select_events(d.events(before), "TASK_UPDATED")),
              sorted([ts["b"]["id"], ts["c"]["id"]]), "TASK_UPDATED of the edits")
    expect_eq(ctl_ok(d, "apply", changed), "0 added, 6 unchanged\n", "the updated file again")

    # a task that ran is not changed, nor anything else
    d.call("task.start", task_id=ts["a"]["id"])
    d.wait_task_status(ts["a"]["id"], "completed")
    before = seq(d)
    rc, out, err = d.dagctl("apply", write(w, "ran.json", dag(pn, a={"title": "A2"}, b={"title": "B3"},
                                                               c={"priority": "low"}, f={"title": "F", "command": "true", "depends_on": ["e"]},
                                                               g={"title": "G", "command": "true"})), "--update")
    expect_eq(rc, 1, "--update of a task that ran")
    assert "tasks[0] ('a')" in err and "completed" in err, err
    expect_eq(d.events(before), [], "nothing changed")


@test
def apply_of_part_of_a_project_compares_only_what_the_file_names():
    """A file of some of a project's tasks (one depends on a task it does not
    list) is compared with those: applied again it changes nothing, and a
    change of its dependency to another task not listed is seen."""
    d, w = daemon(), workdir()
    pn = f"applied-part-{os.getpid()}"
    ctl_ok(d, "apply", write(w, "dag.json", dag(pn)))
    part = {"project": pn, "tasks": [{"name": "x", "title": "X", "command": "true", "depends_on": ["d", "e"]}]}
    assert ctl_ok(d, "apply", write(w, "part.json", part)).endswith("1 added, 0 unchanged\n"), "the part added"
    before = seq(d)
    expect_eq(ctl_ok(d, "apply", write(w, "part.json", part)), "0 added, 1 unchanged\n", "the part again")
    expect_eq(ctl_ok(d, "apply", write(w, "dag.json", dag(pn))), "0 added, 5 unchanged\n", "the rest again")
    part["tasks"][0]["depends_on"] = ["d", "c"]
    rc, out, err = d.dagctl("apply", write(w, "part.json", part))
    expect_eq(rc, 1, f"a dependency changed ({err.strip()})")
    assert "tasks[0] ('x')" in err and "depends_on" in err, err
    expect_eq(d.events(before), [], "nothing changed")


def expect_applied_table(out, ts, names, what):
    """dagctl apply's table of what it added, then its count line."""
    lines = out.splitlines()
    w0, w1 = max([4] + [len(n) for n in names]), max([2] + [len(ts[n]["id"]) for n in names])
    want = [f"{'NAME':<{w0}}  {'ID':<{w1}}  STATUS"]
    want += [f"{n:<{w0}}  {ts[n]['id']:<{w1}}  {ts[n]['status']}" for n in names]
    want += [f"{len(names)} added, 0 unchanged"]
    expect_eq(lines, want, what)


@test
def a_dag_applied_in_parts_adds_each_part_as_a_whole_file_would():
    """Parts of a DAG applied in turn to one project: a part none of whose
    tasks is there yet is added whole (its dependencies within it, the
    project's settings as the file gives them) and said as a new project's
    file is; one that depends on a task of an earlier part gets its id; one
    whose setting differs, or that names what is not there, changes nothing
    and is said naming the file and its task."""
    d, w = daemon(), workdir()
    pn = f"in-parts-{os.getpid()}"

    def part(k, **extra):
        tasks = [{"name": f"p{k}-{i}", "title": f"P{k} {i}", "command": "true",
                  "depends_on": [f"p{k}-{i - 1}"] if i else []} for i in range(3)]
        return {"project": pn, "max_concurrency": 2, "tasks": tasks, **extra}

    outs = [ctl_ok(d, "apply", write(w, f"p{k}.json", part(k))) for k in (1, 2)]
    third = part(3)
    third["tasks"][0]["depends_on"] = ["p1-2"]
    outs.append(ctl_ok(d, "apply", write(w, "p3.json", third)))
    ts = {t["name"]: t for t in d.tasks(pn)}
    for k, out in zip((1, 2, 3), outs):
        expect_applied_table(out, ts, [f"p{k}-{i}" for i in range(3)], f"part {k}'s table")
    expect_eq([ts[f"p2-{i}"]["depends_on"] for i in range(3)],
              [[], [ts["p2-0"]["id"]], [ts["p2-1"]["id"]]], "part 2's dependencies, within it")
    expect_eq(ts["p3-0"]["depends_on"], [ts["p1-2"]["id"]], "part 3's on part 1")

    before = seq(d)
    rc, out, err = d.dagctl("apply", write(w, "p4.json", part(4, max_concurrency=5)))
    expect_eq(rc, 1, f"a part whose setting differs ({err.strip()})")
    assert "max_concurrency" in err and "2" in err and "5" in err, err
    fifth = part(5)
    fifth["tasks"][2]["depends_on"] = ["p5-1", "nope"]
    rc, out, err = d.dagctl("apply", write(w, "p5.json", fifth))
    expect_eq(rc, 1, f"a part naming what is not there ({err.strip()})")
    assert "p5.json" in err and "tasks[2] ('p5-2')" in err and "nope" in err, err
    expect_eq(d.events(before), [], "refused parts: no change, no event")
    expect_eq(len(d.tasks(pn)), 9, "the tasks of the three parts")

    rc, out, err = d.dagctl("--json", "apply", write(w, "p6.json", part(6)))
    expect_eq(rc, 0, f"--json ({err.strip()})")
    got = json.loads(out)
    expect_eq((got["added"], got["updated"], got["unchanged"], [t["name"] for t in got["tasks"]]),
              (3, 0, 0, ["p6-0", "p6-1", "p6-2"]), "--json's summary of a part")
    expect_eq(ctl_ok(d, "apply", write(w, "p2.json", part(2))), "0 added, 3 unchanged\n", "part 2 again")
    expect_eq(ctl_ok(d, "apply", write(w, "none.json", {"project": pn, "tasks": []})), "0 added, 0 unchanged\n",
              "a part of no task")


class Relay:
    """A socket that passes dagctl's connections on to the daemon, both ways,
    and keeps what dagctl sent: what goes on the wire, the daemon real."""

    def __init__(self, d, w):
        self.target, self.path, self.sent = d.sock, os.path.join(w, "relay.sock"), bytearray()
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        threading.Thread(target=self.serve, daemon=True).start()

    def pump(self, a, b, keep):
        while data := a.recv(65536):
            if keep:
                self.sent += data
            b.sendall(data)
        b.shutdown(socket.SHUT_WR)

    def serve(self):
        while True:
            c, _ = self.srv.accept()
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.target)
            threading.Thread(target=self.pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, False), daemon=True).start()

    def requests(self, cmd):
        """Each line sent for cmd: (its args, its text)."""
        lines = [line for line in bytes(self.sent).split(b"\n") if line]
        return [(json.loads(line).get("args"), line) for line in lines if json.loads(line)["cmd"] == cmd]


@test
def a_part_none_of_whose_tasks_is_there_goes_as_the_files_own_text():
    """What dagctl sends for a part of a DAG whose tasks the project has none
    of: one task.list of the names it gives, for one task at most, then the
    file's tasks array as the file has it (not parsed and printed again)."""
    d, w = daemon(), workdir()
    pn = f"as-text-{os.getpid()}"
    part = lambda k: {"project": pn, "tasks": [
        {"name": f"p{k}-0", "title": f"P{k}", "command": "true"},
        {"name": f"p{k}-1", "title": f"P{k}", "command": "true", "depends_on": [f"p{k}-0"]}]}
    ctl_ok(d, "apply", write(w, "p1.json", part(1)))
    relay = Relay(d, w)
    env = dict(os.environ, DAGD_SOCKET=relay.path)
    rc, out, err = dagctl("apply", write(w, "p2.json", part(2)), env=env)
    expect_eq(rc, 0, f"apply of part 2 ({err.strip()})")
    assert out.endswith("2 added, 0 unchanged\n"), out
    probes = relay.requests("task.list")
    expect_eq([(a["names"], a.get("limit")) for a, _ in probes], [(["p2-0", "p2-1", "p2-0"], 1)],
              "the names asked for, for one task")
    batches = relay.requests("task.add_batch")
    expect_eq(len(batches), 1, "one batch")
    # written by json.dumps(indent=1): "key": value, a space after the colon
    assert b'"name": "p2-1"' in batches[0][1], f"not the file's text: {batches[0][1][:300]!r}"
    expect_eq([t["name"] for t in batches[0][0]["tasks"]], ["p2-0", "p2-1"], "the batch's tasks")
    expect_eq(sorted(t["name"] for t in d.tasks(pn)), ["p1-0", "p1-1", "p2-0", "p2-1"], "the project's tasks")


@test
def apply_names_the_task_by_index_and_name_and_a_file_not_json_by_line_and_column():
    d, w = daemon(), workdir()
    pn = f"applied-bad-{os.getpid()}"
    rc, out, err = d.dagctl("apply", write(w, "bad.json", '{"project": "x",\n  "tasks": [\n    {"name": "a",, }\n]}\n'))
    expect_eq(rc, 2, "a file that is not JSON")
    assert "bad.json:3:18:" in err, f"no line and column: {err!r}"
    bad = dag(pn, q={"title": "Q", "command": "true", "priority": "urgent"})
    rc, out, err = d.dagctl("apply", write(w, "q.json", bad))
    expect_eq(rc, 1, "a bad priority in a new project")
    assert "tasks[5] ('q')" in err and "urgent" in err, err
    expect_error(d.call, "not_found", "project.get", project=pn)
    ctl_ok(d, "apply", write(w, "dag.json", dag(pn)))
    rc, out, err = d.dagctl("apply", write(w, "q.json", bad))
    expect_eq(rc, 1, "a bad priority in a project that exists")
    assert "tasks[5] ('q')" in err and "urgent" in err, f"the file's index: {err!r}"
    rc, out, err = d.dagctl("apply", write(w, "noname.json", {"project": pn, "tasks": [
        {"title": "T", "command": "true"}]}))
    expect_eq(rc, 2, "a task without a name")
    assert "tasks[0]" in err and "name" in err, err
    expect_eq(len(d.tasks(pn)), 5, "nothing added")


if __name__ == "__main__":
    main()
