"""dagctl as an operator uses it every day: tasks named PROJECT/NAME (or NAME
with -p) wherever a task is taken, wait's exit codes and what it says, logs of
a task that never ran, the common short options, --json and -q on every
listing, retry backoff shown, status's uptime and executors, and dagd's own
lines on stderr stamped with the time unless the journal reads them."""

import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import time

from dagdtest import (DAGCTL, SRC, Daemon, daemon, skip, expect_eq, main, parse_time, select_events,
                      test, wait_for)


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



def on_terminal(d, *args, then=None, timeout=30):
    """dagctl ARGS with its stdout on a pseudo-terminal, then() a second after
    it started: (rc, what it printed there, stderr)."""
    master, slave = pty.openpty()
    env = dict(os.environ, DAGD_SOCKET=d.sock)
    p = subprocess.Popen([DAGCTL] + list(args), stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    if then:
        time.sleep(1)
        then()
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    return rc, out.decode(errors="replace").replace("\r", ""), p.stderr.read().decode()


@test
def wait_exits_1_failed_3_timed_out_4_not_found_and_says_what_is_left():
    d = daemon()
    p = d.project()["name"]
    bad = d.add(p, "exit 3", name="bad")
    slow = d.add(p, ["sleep", "60"], name="slow")
    d.call("task.start", task_id=bad["id"])
    rc, out, err = d.dagctl("wait", f"{p}/bad", "--timeout", "30")
    expect_eq(rc, 1, f"wait of a task that failed ({err.strip()})")
    assert "failed" in out, f"wait prints no status: {out!r}"

    rc, out, err = d.dagctl("wait", slow["id"], "--timeout", "0.5")
    expect_eq(rc, 3, f"wait that timed out ({err.strip()})")
    assert slow["id"] in err and "ready" in err, f"what is left is not said: {err!r}"
    rc, out, err = d.dagctl("--json", "wait", "-p", p, "--timeout", "0.5")
    expect_eq(rc, 3, "wait --json that timed out")
    left = json.loads(out)
    expect_eq([t["id"] for t in left["left"]], [slow["id"]], "--json: what is left")
    expect_eq(left["timed_out"], True, "--json: timed_out")

    expect_eq(d.dagctl("wait", "t-999999", "--timeout", "5")[0], 4, "wait of no such task")
    expect_eq(d.dagctl("wait", f"{p}/nothing", "--timeout", "5")[0], 4, "wait of no such name")
    expect_eq(d.dagctl("wait", "-p", "no-such-project", "--timeout", "5")[0], 4,
              "wait of no such project")
    d.call("task.cancel", task_id=slow["id"])


@test
def wait_points_out_ready_tasks_of_a_manual_project_and_prints_changes_on_a_terminal():
    d = daemon()
    p = d.project()["name"]
    a = d.add(p, "true", name="a")
    d.add(p, "true", name="b")
    rc, out, err = d.dagctl("wait", "-p", p, "--timeout", "0.5")
    expect_eq(rc, 3, "wait on a manual project nobody starts")
    assert f"2 ready tasks wait for `dagctl start {p}`" in err, f"no hint at a start: {err!r}"

    rc, out, err = on_terminal(d, "wait", "-p", p, "--timeout", "30",
                               then=lambda: d.call("project.start", project=p))
    expect_eq(rc, 0, f"wait on a terminal ({err.strip()})")
    assert f"{a['id']} a: " in out and "-> completed" in out, f"no changes printed: {out!r}"



@test
def logs_of_a_task_that_never_ran_says_so_and_follow_ends_with_how_it_ended():
    d = daemon()
    p = d.project()["name"]
    t = d.add(p, "echo out; exit 3", name="t")["id"]
    rc, out, err = d.dagctl("logs", t)
    expect_eq((rc, out), (0, ""), "logs of a task that never ran")
    assert f"{t} has not run (it is ready)" in err, f"logs does not say it never ran: {err!r}"
    d.call("task.start", task_id=t)
    rc, out, err = d.dagctl("logs", "-p", p, "t", "--follow", timeout=30)
    expect_eq(rc, 1, f"logs --follow of a task that failed ({err.strip()})")
    assert "out" in out, f"the output: {out!r}"
    assert f"{t} is failed (attempt 1): exited with code 3" in err, f"how it ended: {err!r}"
    ok = d.add(p, "echo fine", name="ok")["id"]
    d.call("task.start", task_id=ok)
    rc, out, err = d.dagctl("logs", f"{p}/ok", "--follow", timeout=30)
    expect_eq(rc, 0, f"logs --follow of a task that completed ({err.strip()})")
    assert f"{ok} is completed (attempt 1)" in err, f"how it ended: {err!r}"



@test
def short_options_quiet_and_json_errors_follow_one_convention():
    d = daemon()
    p = d.project(autonomous=True)["name"]
    rc, out, err = d.dagctl("-q", "task", "add", p, "--title", "A", "--name", "a", "--", "echo", "hi")
    expect_eq((rc, out), (0, ""), f"dagctl -q task add ({err.strip()})")
    rc, out, err = d.dagctl("task", "show", "-q", f"{p}/a")
    expect_eq((rc, out), (0, ""), "task show -q")
    t = d.tasks(p)[0]["id"]
    rc, out, err = d.dagctl("logs", "-f", t, timeout=30)
    expect_eq(rc, 0, f"logs -f ({err.strip()})")
    assert "hi" in out, f"logs -f printed {out!r}"
    out = ctl_ok(d, "--json", "events", "-p", p, "-n", "2")
    evs = [json.loads(line) for line in out.splitlines()]
    expect_eq([e["seq"] for e in evs], [e["seq"] for e in d.events(project=p)][-2:],
              "events -p PROJECT -n 2: the last two of the project")

    rc, out, err = d.dagctl("--json", "task", "show", "t-999999")
    expect_eq(rc, 1, "--json task show of no such task")
    expect_eq(json.loads(err)["error"]["code"], "not_found", "--json: the error as JSON on stderr")
    rc, out, err = d.dagctl("task", "show", "--json", f"{p}/zz")
    expect_eq(json.loads(err)["error"]["code"], "not_found", "--json: a name not there")
    assert "zz" in json.loads(err)["error"]["message"], err
    rc, out, err = d.dagctl("task", "show", "t-999999")
    assert err.startswith("dagctl: not_found: "), f"without --json, a line: {err!r}"


@test
def every_listing_takes_json_and_quiet_and_task_list_takes_p():
    d = daemon()
    p = d.project()["name"]
    a = d.add(p, "true", name="a")["id"]
    other = d.project()["name"]
    d.add(other, "true", name="b")
    # each listing: --json prints JSON (the events, a line each), -q nothing
    listings = [("project", "list"), ("task", "list", p), ("task", "list", "-p", p),
                ("unblocked", "-p", p), ("events", "-p", p, "-n", "5"), ("executors",),
                ("status",), ("board", p), ("graph", p)]
    for cmd in listings:
        out = ctl_ok(d, *cmd, "--json")
        docs = [json.loads(line) for line in out.splitlines()] if cmd[0] == "events" \
            else [json.loads(out)]
        assert docs and all(isinstance(x, dict) for x in docs), f"{cmd} --json: {out!r}"
        rc, out, err = d.dagctl("-q", *cmd)
        expect_eq((rc, out), (0, ""), f"dagctl -q {' '.join(cmd)} ({err.strip()})")
        rc, out, err = d.dagctl(*cmd, "--quiet")
        expect_eq((rc, out), (0, ""), f"dagctl {' '.join(cmd)} --quiet ({err.strip()})")
    # task list -p PROJECT: that project's tasks, as task list PROJECT gives them
    tasks = json.loads(ctl_ok(d, "--json", "task", "list", "-p", p))["tasks"]
    expect_eq([t["id"] for t in tasks], [a], "task list -p PROJECT")
    expect_eq(ctl_ok(d, "task", "list", "--project", p).splitlines()[1:],
              ctl_ok(d, "task", "list", p).splitlines()[1:], "task list --project = PROJECT")
    rc, out, err = d.dagctl("task", "list", other, "-p", p)
    expect_eq(rc, 2, "task list PROJECT -p PROJECT: which one?")
    assert "given twice" in err, err


@test
def status_shows_uptime_as_a_duration_and_each_executors_health():
    d = daemon()
    out = ctl_ok(d, "status")
    line = next(x for x in out.splitlines() if x.startswith("uptime:"))
    assert re.fullmatch(r"uptime: +(\d+d)?(\d+h)?(\d+m)?\d+s|uptime: +\d+[dh]\d\d[hm]", line), \
        f"uptime is not a duration: {line!r}"
    executors = d.call("executor.list")["executors"]
    assert any(e["error"] is None for e in executors), "no executor loaded"
    for e in executors:
        line = next((x for x in out.splitlines() if x.startswith(f"executor {e['name']}:")), None)
        assert line, f"no line for executor {e['name']}:\n{out}"
        if e["error"] is None:
            assert re.search(r": +ok, \d+ active", line), f"a loaded executor: {line!r}"
        else:
            assert "NOT LOADED: " in line and e["error"] in line, f"a failed one: {line!r}"
    s = json.loads(ctl_ok(d, "--json", "status"))
    assert isinstance(s["uptime"], (int, float)), "--json: uptime in seconds, as it is"
    expect_eq([(x["name"], x["loaded"], x["error"]) for x in s["executors"]["each"]],
              [(e["name"], e["error"] is None, e["error"]) for e in executors],
              "daemon.status's executors, each")


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@test
def dagd_stamps_its_stderr_lines_with_the_time_unless_the_journal_reads_them():
    d = Daemon(env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}).start()
    lines = [x for x in d.stderr().splitlines() if x]
    assert lines, "dagd said nothing at start"
    for line in lines:
        m = re.match(rf"({STAMP}) dagd: ", line)
        assert m, f"a line without its time: {line!r}"
        assert abs(parse_time(m.group(1)) - time.time()) < 120, f"the time is not now: {line!r}"
    d.stop()
    # a JOURNAL_STREAM that is not its stderr: still stderr, but read as the
    # journal reads a service's: the priority in front, no time
    j = Daemon(env=dict(os.environ, JOURNAL_STREAM="1:1")).start()
    lines = [x for x in j.stderr().splitlines() if x]
    assert lines, "dagd said nothing at start"
    for line in lines:
        assert re.match(r"<\d>dagd: ", line) and not re.search(STAMP, line), \
            f"under the journal, a line with a time or without its priority: {line!r}"
    j.stop()


@test
def events_refuses_unknown_types_and_starts_at_a_time_or_a_seq():
    d = daemon()
    p = d.project()
    for i in range(4):
        d.add(p, "true", name=f"t{i}")
        time.sleep(0.05)
    rc, out, err = d.dagctl("events", "--type", "TASK_CRATED")
    expect_eq(rc, 2, "events --type of no such type")
    assert "TASK_CRATED" in err and "TASK_CREATED" in err, f"no list of the types: {err!r}"
    evs = d.events(project=p["id"])
    third = evs[2]
    t = parse_time(third["time"])
    want = [e["seq"] for e in evs if parse_time(e["time"]) >= t]
    out = ctl_ok(d, "--json", "events", "-p", p["name"], "--since", third["time"])
    expect_eq([json.loads(line)["seq"] for line in out.splitlines()], want, "--since TIME")
    # the same moment, written with an offset
    local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t) + 3600)) + \
        third["time"][19:-1] + "+01:00"
    out = ctl_ok(d, "--json", "events", "-p", p["name"], "--since", local)
    expect_eq([json.loads(line)["seq"] for line in out.splitlines()], want, "--since TIME+01:00")
    out = ctl_ok(d, "--json", "events", "-p", p["name"], "--since", str(third["seq"]))
    expect_eq([json.loads(line)["seq"] for line in out.splitlines()],
              [e["seq"] for e in evs if e["seq"] > third["seq"]], "--since SEQ")
    expect_eq(d.dagctl("events", "--since", "yesterday")[0], 2, "--since of neither")


@test
def a_second_cancel_answers_success_and_changes_nothing():
    d = daemon()
    p = d.project()
    t = d.add(p, "true", name="t")["id"]
    ctl_ok(d, "task", "cancel", t)
    before = d.events(project=p["id"])
    out = ctl_ok(d, "task", "cancel", t)
    assert "cancelled" in out, f"the second cancel says {out!r}"
    expect_eq(d.call("task.cancel", task_id=t)["task"]["status"], "cancelled", "task.cancel again")
    expect_eq(d.events(project=p["id"]), before, "events after cancelling a cancelled task")


@test
def human_output_shows_times_as_how_long_ago_and_json_as_they_are():
    d = daemon()
    p = d.project()
    t = d.add(p, "true", timeout=600)
    out = ctl_ok(d, "task", "show", t["id"])
    line = next(x for x in out.splitlines() if x.startswith("created_at:"))
    assert t["created_at"] in line and line.endswith("s ago)"), f"created_at: {line!r}"
    line = next(x for x in out.splitlines() if x.startswith("timeout:"))
    assert line.endswith("(10m00s)"), f"timeout: {line!r}"
    shown = json.loads(ctl_ok(d, "--json", "task", "show", t["id"]))["task"]
    expect_eq(shown["created_at"], t["created_at"], "--json: the time as it is")



@test
def a_task_waiting_out_its_retry_backoff_shows_as_ready_retry_in():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "exit 1", name="flaky", max_retries=1, retry_backoff=60)["id"]
    # the backoff is 60 s or more: the retry is minutes away
    d.wait_tasks(p, until=lambda ts: ts[0]["status"] == "ready" and ts[0]["attempt"] == 1)
    out = ctl_ok(d, "task", "list", p["name"])
    row = next(x for x in out.splitlines() if t in x)
    assert re.search(r"ready \(retry in \d+(m\d\d)?s\)", row), f"task list: {row!r}"
    out = ctl_ok(d, "task", "show", t)
    line = next(x for x in out.splitlines() if x.startswith("status:"))
    assert re.search(r"ready \(retry in \d+(m\d\d)?s\)$", line), f"task show: {line!r}"
    expect_eq(json.loads(ctl_ok(d, "--json", "task", "show", t))["task"]["status"], "ready",
              "--json: the status as it is")
    d.call("task.cancel", task_id=t)
    out = ctl_ok(d, "task", "list", p["name"])
    assert "retry in" not in out, f"a cancelled task still shows a retry: {out!r}"



@test
def task_retry_takes_several_tasks_or_every_failed_one_of_a_project():
    d = daemon()
    p = d.project()
    ids = {n: d.add(p, "exit 1", name=n)["id"] for n in ("a", "b", "c", "e")}
    for t in ids.values():
        d.call("task.start", task_id=t)
    d.wait_done(p, status="failed")
    out = ctl_ok(d, "task", "retry", "a", f"{p['name']}/b", "-p", p["name"])
    for n in ("a", "b"):
        assert f"{ids[n]}: ready" in out, f"task retry of two: {out!r}"
        expect_eq(d.task(ids[n])["status"], "ready", f"{n} after task retry")
    rc, out, err = d.dagctl("task", "retry", "t-999999", ids["e"])
    expect_eq(rc, 1, "task retry of one that is not there and one that is")
    expect_eq(d.task(ids["e"])["status"], "ready", "the one that is was retried all the same")
    d.call("task.start", task_id=ids["e"])
    d.wait_task_status(ids["e"], "failed")
    expect_eq(d.dagctl("task", "retry", "--all-failed")[0], 2, "--all-failed without a project")
    out = json.loads(ctl_ok(d, "--json", "task", "retry", "--all-failed", "-p", p["name"]))
    expect_eq(sorted(t["id"] for t in out["tasks"]), sorted([ids["c"], ids["e"]]),
              "--all-failed: the failed ones")
    assert all(t["status"] != "failed" for t in d.tasks(p)), "a failed task is left"
    out = json.loads(ctl_ok(d, "--json", "task", "retry", "--all-failed", "-p", p["name"]))
    expect_eq(out["tasks"], [], "--all-failed when none failed")



@test
def graph_of_a_task_draws_the_part_of_its_project_it_is_in():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", name="a")["id"]
    b = d.add(p, "true", name="b", depends_on=[a])["id"]
    c = d.add(p, "true", name="c", depends_on=[b])["id"]
    x = d.add(p, "true", name="x")["id"]
    y = d.add(p, "true", name="y", depends_on=[x, b])["id"]
    out = json.loads(ctl_ok(d, "--json", "graph", f"{p['name']}/c"))
    expect_eq(sorted(t["id"] for t in out["tasks"]), sorted([a, b, c]), "graph PROJECT/NAME")
    out = json.loads(ctl_ok(d, "--json", "graph", b))
    expect_eq(sorted(t["id"] for t in out["tasks"]), sorted([a, b, c, y]), "graph t-N")
    out = ctl_ok(d, "graph", f"{p['name']}/x", "--width", "200")
    drawn = set(re.findall(r"t-\d+", out))
    expect_eq(drawn, {x, y}, "the tree of graph PROJECT/NAME")
    expect_eq(d.dagctl("graph", f"{p['name']}/zz")[0], 1, "graph of a name not there")
    out = json.loads(ctl_ok(d, "--json", "graph", p["name"]))
    expect_eq(len(out["tasks"]), 5, "graph PROJECT: all of it")


def complete(d, line):
    """What bash completes for the words of `line`, in its order."""
    words = line.split(" ")
    script = (f"source {shlex.quote(os.path.join(SRC, 'ctl/dagctl.bash-completion'))}\n"
              f"COMP_WORDS=({' '.join(shlex.quote(x) for x in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "_dagctl\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, DAGD_SOCKET=d.sock,
               PATH=os.path.dirname(DAGCTL) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, env=env, timeout=30)
    assert p.returncode == 0 and not p.stderr, f"completion of {line!r}: {p.stderr}"
    return [x for x in p.stdout.split("\n") if x]


@test
def bash_completes_short_options_and_offers_failed_tasks_first_to_retry():
    if not shutil.which("bash"):
        skip("no bash")
    d = daemon()
    p = d.project()
    ok = d.add(p, "true", name="ok")["id"]
    bad = d.add(p, "exit 1", name="bad")["id"]
    d.call("task.start", task_id=bad)
    d.wait_task_status(bad, "failed")
    failed = {t["id"] for t in d.call("task.list", status="failed")["tasks"]}
    for line in ("dagctl task retry ", f"dagctl task retry {bad} "):
        offered = complete(d, line)
        assert ok in offered and bad in offered, f"{line!r} offers {offered}"
        expect_eq(set(offered[:len(failed)]), failed, f"{line!r}: the failed tasks first")
    assert p["name"] in complete(d, "dagctl task show -p "), "-p completes projects"
    assert "--last" in complete(d, "dagctl events --"), "events options"
    assert "--validation" in complete(d, "dagctl logs --"), "logs options"
    assert p["name"] in complete(d, "dagctl task list -p "), "task list -p completes projects"
    assert ok in complete(d, f"dagctl task show -p {p['name']} "), "TASK after -p PROJECT"


main()
