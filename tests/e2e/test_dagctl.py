"""dagctl: --json output parses, exit statuses 0/1/2, `apply` of a DAG file
(all or nothing), task add, modes, and completing tasks by hand."""

import json
import os

from dagdtest import (FINISHED, daemon, dagctl, expect_eq, expect_error, main, pid_alive, read_file,
                      test, wait_for, workdir)


def ok_json(d, *args):
    """dagctl --json ARGS must exit 0 and print one JSON object; return it."""
    rc, out, err = d.dagctl("--json", *args)
    assert rc == 0, f"dagctl --json {' '.join(args)} exited {rc}: {err.strip()}"
    try:
        obj = json.loads(out)
    except ValueError:
        raise AssertionError(f"dagctl --json {' '.join(args)} printed no JSON: {out[:500]!r}")
    assert isinstance(obj, dict), f"dagctl --json {' '.join(args)} printed {out[:200]!r}"
    return obj


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


@test
def json_output_of_every_read_command_parses():
    d = daemon()
    name = f"ctl-json-{os.getpid()}"
    p = ok_json(d, "project", "create", name, "--max-concurrency", "2")["project"]
    expect_eq((p["name"], p["max_concurrency"]), (name, 2), "created project")
    t = ok_json(d, "task", "add", name, "--title", "T", "--", "true")["task"]
    expect_eq(ok_json(d, "status")["pid"], d.proc.pid, "status pid")
    assert name in [x["name"] for x in ok_json(d, "project", "list")["projects"]], "project list"
    expect_eq(ok_json(d, "project", "show", name)["project"]["id"], p["id"], "project show")
    expect_eq([x["id"] for x in ok_json(d, "task", "list", name)["tasks"]], [t["id"]], "task list")
    expect_eq(ok_json(d, "task", "show", t["id"])["task"]["title"], "T", "task show")
    assert "local" in [e["name"] for e in ok_json(d, "executors")["executors"]], "executors"
    assert isinstance(ok_json(d, "unblocked")["tasks"], list), "unblocked"
    rc, out, err = d.dagctl("--json", "events", "--since", "0")
    assert rc == 0, f"dagctl events --since 0 exited {rc}: {err}"
    text = out.strip()
    try:
        events = json.loads(text)["events"]
    except (ValueError, KeyError, TypeError):
        events = [json.loads(line) for line in text.splitlines()]      # one event a line
    assert any(e.get("entity_id") == t["id"] for e in events), "events lack the new task"


@test
def exit_status_is_0_on_success_1_on_a_daemon_error_2_on_usage_or_no_daemon():
    d = daemon()
    rc, out, err = d.dagctl("project", "list")
    expect_eq(rc, 0, f"project list ({err.strip()})")
    rc, out, err = d.dagctl("project", "show", "no-such-project")
    expect_eq(rc, 1, "project show of an unknown project")
    assert "no-such-project" in err or "not" in err.lower(), f"message: {err!r}"
    rc, out, err = d.dagctl("task", "show", "t-999999")
    expect_eq(rc, 1, "task show of an unknown task")
    expect_eq(d.dagctl("no-such-command")[0], 2, "an unknown command")
    expect_eq(d.dagctl("project", "create")[0], 2, "a missing operand")
    expect_eq(d.dagctl("task", "add", "x", "--", "true")[0], 2, "task add without --title")
    expect_eq(d.dagctl("project", "create", "x", "--max-concurrency", "zero")[0], 2, "a bad number")
    expect_eq(d.dagctl("complete", "--result", "{not json")[0], 2, "bad JSON for --result")
    rc, out, err = dagctl("--socket", os.path.join(workdir(), "nothing-here"), "status")
    expect_eq(rc, 2, "no daemon behind the socket")
    assert err.strip(), "no message when the daemon cannot be reached"
    for args in (["--help"], ["task", "add", "--help"], ["help", "apply"]):
        rc, out, err = d.dagctl(*args)
        expect_eq(rc, 0, f"dagctl {' '.join(args)}")
        assert "usage" in out.lower(), f"dagctl {' '.join(args)} prints no usage: {out[:200]!r}"


@test
def apply_loads_a_dag_file_that_then_runs_to_the_end():
    d, w = daemon(), workdir()
    name = f"applied-{os.getpid()}"
    path = write_json(f"{w}/dag.json", {
        "project": name, "max_concurrency": 2,
        "tasks": [
            {"name": "a", "title": "A", "command": f"touch {w}/a"},
            {"name": "b", "title": "B", "command": ["touch", f"{w}/b"], "depends_on": ["a"]},
            {"name": "c", "title": "C", "command": f"test -f {w}/a && touch {w}/c",
             "depends_on": ["a"], "priority": "high"},
            {"name": "d", "title": "D", "command": f"test -f {w}/b && test -f {w}/c",
             "depends_on": ["b", "c"]},
        ]})
    rc, out, err = d.dagctl("apply", path)
    assert rc == 0, f"dagctl apply exited {rc}: {err}"
    tasks = {t["name"]: t for t in d.tasks(name)}
    expect_eq(sorted(tasks), ["a", "b", "c", "d"], "names of the tasks")
    expect_eq(sorted(tasks["d"]["depends_on"]), sorted([tasks["b"]["id"], tasks["c"]["id"]]),
              "d's dependencies")
    for t in tasks.values():
        assert t["id"] in out, f"dagctl apply does not print {t['id']}: {out!r}"
    expect_eq(d.dagctl("autonomous", name, "on")[0], 0, "dagctl autonomous on")
    d.wait_done(name)


@test
def apply_of_a_bad_file_creates_nothing():
    d, w = daemon(), workdir()
    name = f"not-applied-{os.getpid()}"
    path = write_json(f"{w}/cycle.json", {"project": name, "tasks": [
        {"name": "a", "title": "A", "command": "true", "depends_on": ["b"]},
        {"name": "b", "title": "B", "command": "true", "depends_on": ["a"]}]})
    rc, out, err = d.dagctl("apply", path)
    expect_eq(rc, 1, f"apply of a cycle ({err.strip()})")
    expect_error(d.call, "not_found", "project.get", project=name)
    with open(f"{w}/broken.json", "w") as f:
        f.write('{"project": "x", "tasks": [')
    expect_eq(d.dagctl("apply", f"{w}/broken.json")[0], 2, "apply of a file that is not JSON")
    expect_eq(d.dagctl("apply", f"{w}/absent.json")[0], 2, "apply of a missing file")


@test
def task_add_start_and_complete_by_hand():
    d, w = daemon(), workdir()
    p = d.project()
    first = d.add(p, f"echo $$ > {w}/first.pid; exec sleep 30", title="first")["id"]
    rc, out, err = d.dagctl("task", "add", p["name"], "--title", "second", "--after", first,
                            "--retries", "1", "--priority", "low", "--env", "X=1",
                            "--", "sh", "-c", f'echo "$0" > {w}/arg', "a b")
    assert rc == 0, f"task add exited {rc}: {err}"
    second = out.split()[0] if out.split() else ""
    t = d.task(second)
    expect_eq((t["depends_on"], t["max_retries"], t["priority"], t["env"], t["command"]),
              ([first], 1, "low", {"X": "1"}, ["sh", "-c", f'echo "$0" > {w}/arg', "a b"]),
              "the added task")
    rc, out, err = d.dagctl("start", p["id"])
    assert rc == 0 and first in out, f"dagctl start: {rc} {out!r} {err!r}"
    d.wait_task_status(first, "running")
    wait_for(lambda: read_file(f"{w}/first.pid"), what="the first task's pid")
    rc, out, err = d.dagctl("complete", first, "--result", '{"by": "hand"}')
    assert rc == 0, f"dagctl complete exited {rc}: {err}"
    expect_eq(d.task(first)["result"], {"by": "hand"}, "result")
    # completed by hand, its process is stopped as by a cancel
    pid = int(read_file(f"{w}/first.pid"))
    wait_for(lambda: not pid_alive(pid), timeout=15, what="the task completed by hand to be stopped")
    expect_eq(d.dagctl("complete", first, "--result", '{"by": "someone else"}')[0], 1,
              "a conflicting report")
    expect_eq(d.dagctl("task", "start", second)[0], 0, "dagctl task start")
    done = d.wait_tasks(p)
    assert all(x["status"] == "completed" for x in done), done
    expect_eq(read_file(f"{w}/arg"), "a b\n", "argv given after --")


@test
def complete_failed_by_hand_fails_the_task():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "exec sleep 30")["id"]
    d.wait_task_status(t, "running")
    rc, out, err = d.dagctl("complete", t, "--error", "gave up")
    assert rc == 0, f"dagctl complete --error exited {rc}: {err}"
    task = d.wait_task_status(t, FINISHED)
    expect_eq((task["status"], task["error_message"]), ("failed", "gave up"), "task")


if __name__ == "__main__":
    main()
