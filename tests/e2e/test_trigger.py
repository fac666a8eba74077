"""Trigger rules, the skipped status and finally tasks: each rule against
succeeded, failed, skipped and cancelled dependencies; expressions; a skipped
dependency under the default rule; task.retry re-judging what was skipped;
finally tasks after a success, a failure and a cancel; a kill -9 in the
middle; and bad input refused with nothing changed.  What ran, and how many
times, is read from marker files the tasks write."""

import os

from dagdtest import (Daemon, DagdError, daemon, expect_eq, expect_error, main, read_file,
                      select_events, test, wait_for, workdir)


def mark(w, name):
    """A command leaving one line in {w}/{name} each time it runs."""
    return f"echo ran >> {w}/{name}"


def ran(w, name):
    """How many times the task that writes {w}/{name} ran."""
    return (read_file(f"{w}/{name}") or "").count("ran\n")


def batch(d, p, tasks):
    pid = p["id"] if isinstance(p, dict) else p
    made = d.call("task.add_batch", project=pid, tasks=tasks, objects=True)["tasks"]
    return {t["name"]: t for t in made}


def statuses(d, p):
    return {t["name"]: t["status"] for t in d.tasks(p)}


def state(d, p):
    """What must not change when a request is refused."""
    return d.tasks(p), d.call("daemon.status")["last_event_seq"]


OUTCOMES = ("succeeded", "failed", "skipped", "cancelled")

# rule -> outcome of its one dependency -> what the dependent becomes
EXPECTED = {
    "all_succeeded": {"succeeded": "completed", "failed": "upstream_failed",
                      "skipped": "skipped", "cancelled": "upstream_failed"},
    "all_done": {"succeeded": "completed", "failed": "completed",
                 "skipped": "completed", "cancelled": "completed"},
    "any_failed": {"succeeded": "skipped", "failed": "completed",
                   "skipped": "skipped", "cancelled": "completed"},
    "none_failed": {"succeeded": "completed", "failed": "skipped",
                    "skipped": "completed", "cancelled": "skipped"},
}


def outcome_tasks(w):
    """Four dependencies: one that succeeds, one that fails, one skipped (its
    rule any_failed over a success) and one cancelled (held, then cancelled)."""
    return [
        {"name": "ok", "title": "ok", "command": "true"},
        {"name": "succeeded", "title": "s", "command": "true"},
        {"name": "failed", "title": "f", "command": "false"},
        {"name": "skipped", "title": "k", "command": mark(w, "skipped"), "depends_on": ["ok"],
         "trigger": "any_failed"},
        {"name": "cancelled", "title": "c", "command": mark(w, "cancelled")},
    ]


@test
def every_rule_against_a_succeeded_failed_skipped_and_cancelled_dependency():
    d, w = daemon(), workdir()
    p = d.project()
    tasks = outcome_tasks(w)
    for rule in EXPECTED:
        for outcome in OUTCOMES:
            tasks.append({"name": f"{rule}-{outcome}", "title": rule, "depends_on": [outcome],
                          "command": mark(w, f"{rule}-{outcome}"), "trigger": rule})
    made = batch(d, p, tasks)
    expect_eq(made["any_failed-failed"]["trigger"], "any_failed", "trigger in the task's JSON")
    expect_eq(made["ok"]["trigger"], "all_succeeded", "the default trigger in the task's JSON")
    expect_eq(made["ok"]["finally"], False, "finally in the task's JSON")
    d.call("task.cancel", task_id=made["cancelled"]["id"])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p)
    got = statuses(d, p)
    for rule, by in EXPECTED.items():
        for outcome, want in by.items():
            name = f"{rule}-{outcome}"
            expect_eq(got[name], want, f"{name}")
            expect_eq(ran(w, name), 1 if want == "completed" else 0, f"runs of {name}")
    expect_eq((got["skipped"], ran(w, "skipped"), got["cancelled"], ran(w, "cancelled")),
              ("skipped", 0, "cancelled", 0), "the skipped and cancelled dependencies")
    counts = d.call("project.get", project=p["id"])["project"]["counts"]
    expect_eq(counts["skipped"], 1 + 2 + 2 + 1, "skipped in the project's counts")

    events = d.events(0, project=p["id"], types=["TASK_SKIPPED"])
    by_task = {e["payload"]["task_id"]: e["payload"] for e in events}
    expect_eq(len(events), len(by_task), "one TASK_SKIPPED per skipped task")
    ev = by_task[made["none_failed-failed"]["id"]]
    expect_eq((ev["trigger"], ev["project_id"]), ("none_failed", p["id"]), "TASK_SKIPPED payload")
    assert "none_failed" in ev["reason"], ev
    ev = by_task[made["all_succeeded-skipped"]["id"]]
    expect_eq((ev["trigger"], ev["dependency"]), ("all_succeeded", made["skipped"]["id"]),
              "TASK_SKIPPED under the default rule names the skipped dependency")


@test
def an_expression_over_named_dependencies_decides():
    d, w = daemon(), workdir()
    p = d.project()
    tasks = [
        {"name": "build", "title": "b", "command": "true"},
        {"name": "lint", "title": "l", "command": "false"},
        {"name": "deploy", "title": "d", "command": mark(w, "deploy"), "depends_on": ["build", "lint"],
         "trigger": "build.succeeded && (lint.failed || lint.skipped)"},
        {"name": "strict", "title": "s", "command": mark(w, "strict"), "depends_on": ["build", "lint"],
         "trigger": "build.succeeded && lint.succeeded"},
        {"name": "notok", "title": "n", "command": mark(w, "notok"), "depends_on": ["lint"],
         "trigger": "!lint.succeeded && lint.done"},
    ]
    made = batch(d, p, tasks)
    # by id too, for a dependency outside the batch
    byid = d.add(p, mark(w, "byid"), title="i", depends_on=[made["lint"]["id"]],
                 trigger=f"{made['lint']['id']}.failed")
    expect_eq(byid["trigger"], f"{made['lint']['id']}.failed", "trigger as given")
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p)
    got = statuses(d, p)
    expect_eq((got["deploy"], got["strict"], got["notok"], d.task(byid["id"])["status"]),
              ("completed", "skipped", "completed", "completed"), "statuses")
    expect_eq([ran(w, n) for n in ("deploy", "strict", "notok", "byid")], [1, 0, 1, 1], "runs")


@test
def the_default_rule_skips_what_depends_on_a_skipped_task_transitively():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, [
        {"name": "a", "title": "a", "command": "true"},
        {"name": "s", "title": "s", "command": mark(w, "s"), "depends_on": ["a"], "trigger": "any_failed"},
        {"name": "x", "title": "x", "command": mark(w, "x"), "depends_on": ["s"]},
        {"name": "y", "title": "y", "command": mark(w, "y"), "depends_on": ["x"]},
        {"name": "z", "title": "z", "command": mark(w, "z"), "depends_on": ["s"], "trigger": "all_done"},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p)
    expect_eq(statuses(d, p), {"a": "completed", "s": "skipped", "x": "skipped", "y": "skipped",
                               "z": "completed"}, "statuses")
    expect_eq([ran(w, n) for n in "sxyz"], [0, 0, 0, 1], "runs")
    ev = select_events(d.events(0, project=p["id"], types=["TASK_SKIPPED"]), task_id=made["y"]["id"])
    expect_eq([e["payload"]["dependency"] for e in ev], [made["x"]["id"]], "why y was skipped")
    # a task added later on a skipped one is born skipped
    late = d.add(p, mark(w, "late"), title="late", depends_on=[made["y"]["id"]])
    expect_eq(late["status"], "skipped", "a task added on a skipped one")
    # skipped counts as finished for dagctl wait
    rc, out, err = d.dagctl("wait", "--project", p["name"], timeout=30)
    expect_eq(rc, 0, f"dagctl wait (a skipped task is not a failure): {out} {err}")
    assert "4 skipped" in out, out


@test
def retrying_a_failed_dependency_rejudges_what_it_had_skipped():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, [
        {"name": "f", "title": "f", "command": f"test -f {w}/fixed"},
        {"name": "n", "title": "n", "command": mark(w, "n"), "depends_on": ["f"], "trigger": "none_failed"},
        {"name": "u", "title": "u", "command": mark(w, "u"), "depends_on": ["f"]},
        {"name": "z", "title": "z", "command": mark(w, "z"), "depends_on": ["n"]},
        {"name": "a", "title": "a", "command": mark(w, "a"), "depends_on": ["f"], "trigger": "any_failed"},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p)
    expect_eq(statuses(d, p), {"f": "failed", "n": "skipped", "u": "upstream_failed", "z": "skipped",
                               "a": "completed"}, "after the failure")
    e = expect_error(d.call, "invalid_state", "task.retry", task_id=made["n"]["id"])
    assert "skipped" in e.message, e.message
    open(f"{w}/fixed", "w").close()
    d.call("task.retry", task_id=made["f"]["id"])
    d.wait_tasks(p)
    expect_eq(statuses(d, p), {"f": "completed", "n": "completed", "u": "completed", "z": "completed",
                               "a": "completed"}, "after the retry")
    expect_eq([ran(w, x) for x in "nuza"], [1, 1, 1, 1], "runs")


@test
def a_failure_is_not_retried_while_a_task_that_runs_after_it_still_runs():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, [
        {"name": "f", "title": "f", "command": "false"},
        {"name": "u", "title": "u", "command": "true", "depends_on": ["f"]},
        {"name": "a", "title": "a", "command": f"touch {w}/a-started; sleep 60",
         "depends_on": ["u"], "trigger": "u.failed"},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: os.path.exists(f"{w}/a-started"), timeout=30, what="a to start")
    before = state(d, p)
    e = expect_error(d.call, "invalid_state", "task.retry", task_id=made["f"]["id"])
    assert made["a"]["id"] in e.message, e.message
    e = expect_error(d.call, "invalid_state", "task.depend", task_id=made["u"]["id"],
                     on=made["f"]["id"])
    expect_eq(state(d, p)[1], before[1], "no event after the refusals")
    d.call("project.set_autonomous", project=p["id"], enabled=False)
    d.call("task.cancel", task_id=made["a"]["id"])

    def retried():
        try:
            return d.call("task.retry", task_id=made["f"]["id"])
        except DagdError as e:      # its sandbox may still be stopping
            assert e.code == "invalid_state", e
            return None
    wait_for(retried, timeout=30, what="task.retry once the cancelled task stopped")
    expect_eq(statuses(d, p), {"f": "ready", "u": "waiting", "a": "cancelled"}, "after the retry")


@test
def task_edit_changes_the_rule_of_a_skipped_task_and_it_runs():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, [
        {"name": "a", "title": "a", "command": "true"},
        {"name": "b", "title": "b", "command": mark(w, "b"), "depends_on": ["a"], "trigger": "any_failed"},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p)
    expect_eq(statuses(d, p)["b"], "skipped", "b")
    e = expect_error(d.call, "bad_request", "task.edit", task_id=made["b"]["id"], trigger="zz.done")
    assert "not one of the task's dependencies" in e.message, e.message
    r = d.call("task.edit", task_id=made["b"]["id"], trigger="a.succeeded")
    expect_eq(r["changed"], ["trigger"], "changed")
    d.wait_tasks(p)
    expect_eq((statuses(d, p)["b"], ran(w, "b")), ("completed", 1), "b after the edit")
    e = expect_error(d.call, "invalid_state", "task.edit", task_id=made["b"]["id"], trigger="all_done")


def finally_batch(w, second):
    fin = ("echo $DAGD_DAG_STATUS $DAGD_DAG_COMPLETED $DAGD_DAG_FAILED $DAGD_DAG_SKIPPED "
           f"$DAGD_DAG_CANCELLED >> {w}/fin")
    return [
        {"name": "a", "title": "a", "command": "true"},
        {"name": "b", "title": "b", "command": second},
        {"name": "c", "title": "c", "command": mark(w, "c"), "depends_on": ["b"]},
        {"name": "fin", "title": "fin", "command": fin, "finally": True},
        {"name": "fin2", "title": "fin2", "command": mark(w, "fin2"), "finally": True},
    ]


@test
def finally_runs_after_a_success_with_the_dag_status():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, finally_batch(w, "true"))
    expect_eq((made["fin"]["finally"], made["fin"]["trigger"]), (True, "all_done"), "fin's JSON")
    expect_eq(sorted(made["fin"]["depends_on"]), sorted(made[n]["id"] for n in "abc"),
              "a finally task depends on the rest of the batch, not on the other finally task")
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    expect_eq(read_file(f"{w}/fin"), "succeeded 3 0 0 0\n", "fin's environment")
    expect_eq(ran(w, "fin2"), 1, "runs of fin2")


@test
def finally_runs_after_a_failure_with_the_dag_status():
    d, w = daemon(), workdir()
    p = d.project()
    batch(d, p, finally_batch(w, "false"))
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_tasks(p)
    expect_eq(statuses(d, p), {"a": "completed", "b": "failed", "c": "upstream_failed",
                               "fin": "completed", "fin2": "completed"}, "statuses")
    expect_eq(read_file(f"{w}/fin"), "failed 1 2 0 0\n", "fin's environment")
    expect_eq((ran(w, "c"), ran(w, "fin2")), (0, 1), "runs")


@test
def finally_runs_after_a_cancel_but_not_when_cancelled_itself():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, finally_batch(w, f"touch {w}/b-started; sleep 60"))
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: os.path.exists(f"{w}/b-started"), timeout=30, what="b to start")
    d.call("task.cancel", task_id=made["fin2"]["id"])
    d.call("task.cancel", task_id=made["b"]["id"])
    d.wait_tasks(p)
    expect_eq(statuses(d, p), {"a": "completed", "b": "cancelled", "c": "upstream_failed",
                               "fin": "completed", "fin2": "cancelled"}, "statuses")
    expect_eq(read_file(f"{w}/fin"), "failed 1 1 0 1\n", "fin's environment")
    expect_eq(ran(w, "fin2"), 0, "runs of the cancelled finally task")


@test(timeout=180)
def a_kill_9_keeps_rules_statuses_and_waiting_finally_tasks():
    d, w = Daemon().start(), workdir()
    p = d.project()
    made = batch(d, p, [
        {"name": "a", "title": "a", "command": "true"},
        {"name": "sk", "title": "sk", "command": mark(w, "sk"), "depends_on": ["a"], "trigger": "any_failed"},
        {"name": "slow", "title": "slow", "command": f"touch {w}/slow-started; sleep 2; {mark(w, 'slow')}"},
        {"name": "r", "title": "r", "command": mark(w, "r"), "depends_on": ["slow", "sk"],
         "trigger": "slow.succeeded && sk.skipped"},
        {"name": "fin", "title": "fin", "command": f"echo $DAGD_DAG_STATUS $DAGD_DAG_SKIPPED >> {w}/fin",
         "finally": True},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: os.path.exists(f"{w}/slow-started"), timeout=30, what="slow to start")
    d.wait_task_status(made["sk"]["id"], "skipped")
    d.kill()
    d.start()
    got = {t["name"]: t for t in d.tasks(p)}
    expect_eq(got["sk"]["status"], "skipped", "sk after the restart")
    expect_eq((got["r"]["status"], got["r"]["trigger"]),
              ("waiting", "slow.succeeded && sk.skipped"), "r after the restart")
    expect_eq((got["fin"]["status"], got["fin"]["finally"], got["fin"]["trigger"]),
              ("waiting", True, "all_done"), "fin after the restart")
    d.wait_tasks(p)
    expect_eq(statuses(d, p), {"a": "completed", "sk": "skipped", "slow": "completed", "r": "completed",
                               "fin": "completed"}, "statuses")
    expect_eq([ran(w, n) for n in ("sk", "slow", "r")], [0, 1, 1], "runs")
    expect_eq(read_file(f"{w}/fin"), "succeeded 1\n", "fin ran once, with the skipped count")
    d.stop()


@test
def bad_rules_and_finally_outside_a_batch_are_refused_changing_nothing():
    d, w = daemon(), workdir()
    p = d.project()
    made = batch(d, p, [{"name": "a", "title": "a", "command": "true"},
                        {"name": "other", "title": "o", "command": "true"}])
    a = made["a"]["id"]
    before = state(d, p)
    cases = [
        (dict(trigger="all_succeded", depends_on=[a]), "did you mean 'all_succeeded'"),
        (dict(trigger="sometimes", depends_on=[a]), "unknown rule"),
        (dict(trigger="a.succeeded && nope.failed", depends_on=[a]), "'nope' is not one of"),
        (dict(trigger="other.succeeded", depends_on=[a]), "'other' is not one of"),
        (dict(trigger="a.succeeded &&", depends_on=[a]), "at the end"),
        (dict(trigger="a.succeeded & a.failed", depends_on=[a]), "at character 13"),
        (dict(trigger="(a.succeeded", depends_on=[a]), "expected ')'"),
        (dict(trigger="a.finished", depends_on=[a]), "unknown state"),
        (dict(trigger="(" * 40 + "a.done" + ")" * 40, depends_on=[a]), "nested too deeply"),
        (dict(trigger="", depends_on=[a]), "empty"),
        (dict(trigger=5, depends_on=[a]), "trigger"),
        (dict(finally_=True), "batch"),
        (dict(finally_="yes"), "finally"),
    ]
    for args, words in cases:
        if "finally_" in args:
            args["finally"] = args.pop("finally_")
        e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="x",
                         command="true", **args)
        assert words in e.message, f"{args}: {e.message!r} lacks {words!r}"
    e = expect_error(d.call, "bad_request", "task.add_batch", project=p["id"], tasks=[
        {"name": "x", "title": "x", "command": "true"},
        {"name": "f", "title": "f", "command": "true", "finally": True, "trigger": "all_done"}])
    assert "tasks[1] ('f')" in e.message and "no 'trigger'" in e.message, e.message
    e = expect_error(d.call, "bad_request", "task.add_batch", project=p["id"], tasks=[
        {"name": "x", "title": "x", "command": "true", "depends_on": ["f"]},
        {"name": "f", "title": "f", "command": "true", "finally": True}])
    assert "finally task" in e.message, e.message
    e = expect_error(d.call, "bad_request", "task.add_batch", project=p["id"], tasks=[
        {"name": "x", "title": "x", "command": "true", "trigger": "y.done"},
        {"name": "y", "title": "y", "command": "true"}])
    assert "tasks[0] ('x')" in e.message and "'y' is not one of" in e.message, e.message
    expect_eq(state(d, p), before, "tasks and events after the refusals")

    # a dependency the expression names cannot be taken away
    t = d.add(p, "true", title="t", depends_on=[a, made["other"]["id"]], trigger="a.succeeded")
    e = expect_error(d.call, "bad_request", "task.undepend", task_id=t["id"], on=a)
    assert "change the trigger first" in e.message, e.message
    d.call("task.undepend", task_id=t["id"], on=made["other"]["id"])
    e = expect_error(d.call, "bad_request", "task.edit", task_id=t["id"], trigger="a.succeeded &")
    before = state(d, p)
    e = expect_error(d.call, "bad_request", "task.edit", task_id=t["id"], trigger="other.done")
    expect_eq(state(d, p), before, "after a refused edit")


@test
def dagctl_adds_applies_and_shows_triggers():
    d, w = daemon(), workdir()
    p = d.project()
    a = d.add(p, "true", title="a", name="a")["id"]
    rc, out, err = d.dagctl("task", "add", p["name"], "--title", "b", "--after", a, "--trigger", "any_failed",
                            "--", "true")
    assert rc == 0, err
    b = out.strip().split()[-1]
    expect_eq(d.task(b)["trigger"], "any_failed", "dagctl add --trigger")
    rc, out, err = d.dagctl("task", "show", b)
    assert rc == 0 and "any_failed" in out, (rc, out, err)
    with open(f"{w}/dag.json", "w") as f:
        f.write('{"project": "%s-applied", "tasks": ['
                '{"name": "x", "title": "x", "command": "false"},'
                '{"name": "y", "title": "y", "command": "true", "depends_on": ["x"], "trigger": "x.failed"},'
                '{"name": "z", "title": "z", "command": "true", "finally": true}]}' % p["name"])
    rc, out, err = d.dagctl("apply", f"{w}/dag.json")
    assert rc == 0, (rc, out, err)
    got = {t["name"]: t for t in d.tasks(f"{p['name']}-applied")}
    expect_eq((got["y"]["trigger"], got["z"]["finally"]), ("x.failed", True), "applied")


if __name__ == "__main__":
    main()
