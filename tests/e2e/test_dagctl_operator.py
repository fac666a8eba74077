"""dagctl as an operator uses it every day: tasks named PROJECT/NAME (or NAME
with -p) wherever a task is taken, wait's exit codes and what it says, logs of
a task that never ran, the common short options, and retry backoff shown."""

import json
import os

from dagdtest import daemon, expect_eq, main, test, wait_for


def ctl_ok(d, *args):
    rc, out, err = d.dagctl(*args)
    assert rc == 0, f"dagctl {' '.join(args)} exited {rc}: {err.strip()}"
    return out


@test
def tasks_are_named_project_slash_name_or_name_with_project_everywhere():
    d = daemon()
    p = d.project()["name"]
    a = ctl_ok(d, "task", "add", p, "--title", "A", "--name", "a", "--", "echo", "from-a").strip()
    b = ctl_ok(d, "task", "add", p, "--title", "B", "--name", "b", "--after", "a",
               "--", "true").strip()
    c = ctl_ok(d, "task", "add", p, "--title", "C", "--name", "c", "--after", f"{p}/b",
               "--", "sleep", "60").strip()
    expect_eq(d.task(b)["depends_on"], [a], "--after NAME in the task's project")
    expect_eq(d.task(c)["depends_on"], [b], "--after PROJECT/NAME")

    shown = json.loads(ctl_ok(d, "--json", "task", "show", f"{p}/a"))["task"]
    expect_eq(shown["id"], a, "task show PROJECT/NAME")
    shown = json.loads(ctl_ok(d, "--json", "task", "show", "b", "-p", p))["task"]
    expect_eq(shown["id"], b, "task show NAME -p PROJECT")
    shown = json.loads(ctl_ok(d, "--json", "task", "show", "--project", p, a))["task"]
    expect_eq(shown["id"], a, "an id with --project")

    rc, out, err = d.dagctl("task", "show", f"{p}/zz")
    expect_eq(rc, 1, "task show of a name that is not there")
    assert "'zz'" in err and p in err, f"the message names neither task nor project: {err!r}"
    rc, out, err = d.dagctl("task", "show", "b")
    expect_eq(rc, 2, "a bare name without a project")
    assert "--project" in err, f"no hint at --project: {err!r}"
    rc, out, err = d.dagctl("task", "show", "no-such-project/a")
    expect_eq(rc, 1, "a name in a project that is not there")

    ctl_ok(d, "task", "start", f"{p}/a")
    rc, out, err = d.dagctl("wait", f"{p}/a", "--timeout", "30")
    expect_eq(rc, 0, f"wait PROJECT/NAME ({err.strip()})")
    assert "from-a" in ctl_ok(d, "logs", "a", "-p", p), "logs NAME -p PROJECT"
    assert "from-a" in ctl_ok(d, "task", "logs", f"{p}/a"), "task logs PROJECT/NAME"
    ctl_ok(d, "task", "start", "-p", p, "b")
    expect_eq(d.dagctl("wait", "-p", p, "b", "--timeout", "30")[0], 0, "wait NAME -p PROJECT")

    ctl_ok(d, "task", "undepend", f"{p}/c", "--on", "b")
    expect_eq(d.task(c)["depends_on"], [], "task undepend by names")
    ctl_ok(d, "task", "depend", "c", "--on", "b", "-p", p)
    expect_eq(d.task(c)["depends_on"], [b], "task depend by names")
    ctl_ok(d, "task", "start", f"{p}/c")
    d.wait_task_status(c, "running")
    ctl_ok(d, "task", "cancel", f"{p}/c")
    expect_eq(d.task(c)["status"], "cancelled", "task cancel PROJECT/NAME")
    ctl_ok(d, "task", "retry", "c", "-p", p)
    assert d.task(c)["status"] not in ("cancelled",), "task retry NAME -p PROJECT"
    ctl_ok(d, "task", "start", f"{p}/c")
    d.wait_task_status(c, "running")
    out = ctl_ok(d, "complete", f"{p}/c", "--error", "by hand")
    assert c in out, f"complete PROJECT/NAME printed {out!r}"
    d.wait_task_status(c, "failed")


main()
