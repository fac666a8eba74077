"""dagctl's views of a project: `board` (not watching) and `graph` of a fixed
DAG at fixed widths, compared with the golden files in tests/e2e/golden/;
the time a card shows; and `wait`, whose exit status says whether all
completed.

Set DAGD_UPDATE_GOLDEN=1 to write the golden files from what dagctl prints
(then read the diff before keeping it)."""

import json
import os
import re
import subprocess
import time

from dagdtest import DAGCTL, Daemon, expect_eq, main, parse_time, test, wait_for, workdir

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
UPDATE = os.environ.get("DAGD_UPDATE_GOLDEN") == "1"
# the clock stands still before every task's time: each card says "0s"
FROZEN = {"DAGCTL_NOW": "2000-01-01T00:00:00Z", "LC_ALL": "C.UTF-8", "NO_COLOR": ""}

# One task of every status.  Started by hand, one at a time, so that the
# statuses, attempts and ids are always the same.
DAG = {"project": "golden", "tasks": [
    {"name": "fetch", "title": "Fetch the sources", "command": "true"},
    {"name": "compile", "title": "Compile everything, with a title long enough to be cut",
     "command": "exec sleep 600", "depends_on": ["fetch"]},
    {"name": "docs", "title": "Build the documentation", "command": "exit 1",
     "depends_on": ["fetch"], "max_retries": 1, "retry_backoff": 0.05},
    {"name": "link", "title": "Link", "command": "true", "depends_on": ["compile"]},
    {"name": "publish", "title": "Publish the docs", "command": "true", "depends_on": ["docs"]},
    {"name": "lint", "title": "Lint", "command": "true", "validation_command": "exec sleep 600",
     "depends_on": ["fetch"]},
    {"name": "package", "title": "Package", "command": "true", "depends_on": ["link", "lint"]},
    {"name": "smoke", "title": "Smoke test", "command": "true"},
    {"name": "bench", "title": "Benchmark", "command": "true"},
    {"name": "changelog", "title": "Changelog", "command": "true", "depends_on": ["fetch"]},
]}

_golden_daemon = None


def golden_daemon():
    """A daemon of this file's own with the fixed DAG in place (ids t-1..t-10)."""
    global _golden_daemon
    if _golden_daemon is not None and _golden_daemon.running():
        return _golden_daemon
    d = Daemon(shared=True).start()
    _golden_daemon = d
    path = os.path.join(d.dir, "dag.json")
    with open(path, "w") as f:
        json.dump(DAG, f)
    rc, out, err = d.dagctl("apply", path)
    assert rc == 0, f"apply: {err}"
    ids = {t["name"]: t["id"] for t in d.tasks("golden")}
    expect_eq(sorted(ids.values(), key=lambda i: int(i[2:])), [f"t-{n}" for n in range(1, 11)],
              "the ids of the DAG")
    d.call("task.cancel", task_id=ids["bench"])
    d.call("task.start", task_id=ids["fetch"])
    d.wait_task_status(ids["fetch"], "completed")
    d.call("task.start", task_id=ids["docs"])
    d.wait_task_status(ids["publish"], "upstream_failed")
    d.call("task.start", task_id=ids["compile"])
    d.wait_task_status(ids["compile"], "running")
    d.call("task.start", task_id=ids["lint"])
    d.wait_task_status(ids["lint"], "validating")
    got = {t["name"]: (t["status"], t["attempt"]) for t in d.tasks("golden")}
    expect_eq(got, {"fetch": ("completed", 1), "compile": ("running", 1), "docs": ("failed", 2),
                    "link": ("waiting", 0), "publish": ("upstream_failed", 0),
                    "lint": ("validating", 1), "package": ("waiting", 0),
                    "smoke": ("ready", 0), "bench": ("cancelled", 0),
                    "changelog": ("ready", 0)}, "statuses of the DAG")
    return d


def check_golden(name, text):
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return
    assert os.path.exists(path), f"no golden file {name} (make it with DAGD_UPDATE_GOLDEN=1)"
    with open(path) as f:
        want = f.read()
    if text != want:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                            f"golden/{name}", "dagctl"))
        raise AssertionError(f"output differs from golden/{name}:\n{diff}")


def golden_run(name, *args, env=FROZEN):
    d = golden_daemon()
    rc, out, err = d.dagctl(*args, env=env)
    assert rc == 0, f"dagctl {' '.join(args)} exited {rc}: {err}"
    assert "\x1b" not in out, f"dagctl {' '.join(args)} wrote escapes into a pipe: {out!r}"
    for line in out.splitlines():
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
    check_golden(name, out)
    return out


def widest(text):
    return max(len(line) for line in text.splitlines())


@test
def board_of_a_fixed_dag_matches_the_golden_files_at_several_widths():
    for width in (120, 80, 40):
        out = golden_run(f"board-{width}.txt", "board", "golden", "--width", width)
        assert widest(out) <= width, f"a line wider than {width}:\n{out}"
    out = golden_run("board-80x16.txt", "board", "golden", "--width", 80, "--height", 16)
    assert len(out.splitlines()) <= 16, f"a board 16 high is {len(out.splitlines())}:\n{out}"
    assert "+2 more" in out, f"no '+N more' when the failed lane overflows:\n{out}"
    golden_run("board-60-ascii.txt", "board", "golden", "--width", 60,
               env=dict(FROZEN, LC_ALL="C"))


@test
def board_header_says_the_mode_and_counts_the_lanes():
    d = golden_daemon()
    out = golden_run("board-120.txt", "board", "golden", "--width", 120)
    first, counts = out.splitlines()[:2]
    assert first.startswith("golden (p-1)") and first.endswith("Start Processing · 2 ready"), first
    expect_eq(counts, "waiting 2 · ready 2 · running 1 · validating 1 · done 1 · failed 3"
              "  (10 tasks)", "counts")
    p = d.project(autonomous=True)
    d.wait_task_status(d.add(p, "exec sleep 600", title="runs")["id"], "running")
    rc, out, err = d.dagctl("board", p["name"], "--width", 120, env=FROZEN)
    assert out.splitlines()[0].endswith("Autonomous: ON · 1 running"), out


@test
def board_json_has_the_lanes_with_their_tasks():
    d = golden_daemon()
    rc, out, err = d.dagctl("--json", "board", "golden")
    assert rc == 0, err
    b = json.loads(out)
    expect_eq(b["project"]["name"], "golden", "project")
    lanes = {lane["name"]: [t["id"] for t in lane["tasks"]] for lane in b["lanes"]}
    expect_eq(lanes, {"waiting": ["t-4", "t-7"], "ready": ["t-8", "t-10"], "running": ["t-2"],
                      "validating": ["t-6"], "done": ["t-1"], "failed": ["t-5", "t-3", "t-9"]},
              "lanes")


@test
def graph_of_a_fixed_dag_matches_the_golden_files():
    out = golden_run("graph-80.txt", "graph", "golden", "--width", 80)
    assert widest(out) <= 80, out
    out = golden_run("graph-36.txt", "graph", "golden", "--width", 36)
    assert widest(out) <= 36, out
    golden_run("graph-ascii.txt", "graph", "golden", "--width", 80, env=dict(FROZEN, LC_ALL="C"))
    dot = golden_run("graph.dot", "graph", "golden", "--format", "dot")
    if __import__("shutil").which("dot"):
        p = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        assert p.returncode == 0, f"dot refuses the graph: {p.stderr}"


@test
def graph_json_and_usage_errors():
    d = golden_daemon()
    rc, out, err = d.dagctl("--json", "graph", "golden")
    assert rc == 0, err
    tasks = json.loads(out)["tasks"]
    expect_eq([t["id"] for t in tasks], [f"t-{n}" for n in range(1, 11)], "tasks in id order")
    expect_eq(d.dagctl("graph", "golden", "--format", "svg")[0], 2, "an unknown format")
    expect_eq(d.dagctl("graph", "no-such-project")[0], 1, "an unknown project")
    expect_eq(d.dagctl("board", "no-such-project")[0], 1, "board of an unknown project")
    rc, out, err = d.dagctl("board", "golden", "--watch")
    expect_eq(rc, 2, "board --watch without a terminal")
    assert "terminal" in err, err


@test
def a_card_says_how_long_its_task_has_been_in_its_status():
    d = Daemon().start()
    p = d.project()
    t = d.add(p, "true", title="waits")
    since = parse_time(d.task(t["id"])["status_changed_at"])
    for secs, shown in ((42, "42s"), (3725, "1h02m"), (125, "2m05s"), (90000, "1d01h")):
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(since) + 1 + secs)) + "Z"
        rc, out, err = d.dagctl("board", p["name"], "--width", 120, env={"DAGCTL_NOW": now})
        assert rc == 0, err
        assert f"#0 · {shown}" in out or f"#0 - {shown}" in out, \
            f"{secs + 1}s (less a fraction) is not shown as {shown}:\n{out}"


def card_second_line(board, task_id):
    """The line under a card's id, in its lane's column, stripped."""
    lines = board.splitlines()
    i = next(k for k, line in enumerate(lines) if re.search(rf"\b{task_id}\b", line))
    col = re.search(rf"\b{task_id}\b", lines[i]).start()
    return re.split(r"\s{2,}", lines[i + 1][col:].strip())[0]


@test
def a_card_of_a_task_waiting_out_its_retry_backoff_says_when_it_is_retried():
    d = Daemon().start()
    p = d.project(autonomous=True)
    t = d.add(p, "exit 1", title="flaky", max_retries=1, retry_backoff=60)["id"]
    other = d.add(p, "exit 1", title="other", depends_on=[t])["id"]
    d.wait_task_status(t, "ready", timeout=30)
    task = d.task(t)
    expect_eq(task["attempt"], 1, "the task waits for its second attempt")
    retry = parse_time(task["not_before"])
    # (at 120 columns a lane is 18 wide: too narrow for the attempt as well)
    for secs, width, shown in ((12, 160, "#1 · retry in 12s"), (75, 160, "#1 · retry in 1m15s"),
                               (12, 120, "retry in 12s")):
        # the clock `secs` before the retry (with the same fraction of a second)
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(retry) - secs)) + \
            task["not_before"][19:]
        rc, out, err = d.dagctl("board", p["name"], "--width", width,
                                env={"DAGCTL_NOW": now, "LC_ALL": "C.UTF-8"})
        assert rc == 0, err
        lines = out.splitlines()
        expect_eq(lines[5].index(t), lines[3].index("READY"), f"{t}'s column: READY's\n{out}")
        expect_eq(card_second_line(out, t), shown, f"{t}'s card at {width} columns\n{out}")
        assert re.fullmatch(r"#0 · (\d+[dhm])?\d+[dhms]", card_second_line(out, other)) and \
            out.count("retry in") == 1, f"only the task in backoff says so:\n{out}"
    # once the backoff is over (by the clock), the card says how long it has been ready
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(retry) + 5)) + "Z"
    rc, out, err = d.dagctl("board", p["name"], "--width", 120, env={"DAGCTL_NOW": now})
    assert rc == 0 and "retry in" not in out, f"a backoff that is over still shows:\n{out}"
    d.call("task.cancel", task_id=t)
    rc, out, err = d.dagctl("board", p["name"], "--width", 120)
    assert rc == 0 and "retry in" not in out, f"a cancelled task still shows a retry:\n{out}"


@test
def wait_exits_0_when_all_completed_1_otherwise_3_on_timeout_4_if_unknown():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    a = d.add(p, f"while [ ! -e {w}/go ]; do sleep 0.02; done", title="a")["id"]
    b = d.add(p, "true", title="b", depends_on=[a])["id"]
    waiter = subprocess.Popen([DAGCTL, "--socket", d.sock,
                               "wait", "--project", p["name"]], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert waiter.poll() is None, "wait --project returned while a task runs"
    rc, out, err = d.dagctl("wait", a, "--timeout", "0.3")
    expect_eq(rc, 3, f"wait with a timeout that passes ({err.strip()})")
    open(f"{w}/go", "w").close()
    out, err = waiter.communicate(timeout=30)
    expect_eq(waiter.returncode, 0, f"wait --project once all completed ({err.strip()})")
    expect_eq(out.strip(), f"{p['name']}: 2 tasks, 2 completed", "what wait --project prints")
    rc, out, err = d.dagctl("wait", b)
    expect_eq((rc, out.strip()), (0, f"{b}: completed"), "wait of a completed task")

    q = d.project(autonomous=True)
    c = d.add(q, "exit 3", title="c", name="c")["id"]
    e = d.add(q, "true", title="e", depends_on=[c])["id"]
    rc, out, err = d.dagctl("wait", "--project", q["id"])
    expect_eq(rc, 1, "wait --project when a task failed")
    expect_eq(out.strip(), f"{q['name']}: 2 tasks, 1 failed, 1 upstream_failed", "its counts")
    rc, out, err = d.dagctl("wait", e)
    expect_eq((rc, out.strip()), (1, f"{e}: upstream_failed"), "wait of an upstream_failed task")
    rc, out, err = d.dagctl("--json", "wait", c)
    expect_eq((rc, [t["status"] for t in json.loads(out)["tasks"]]), (1, ["failed"]), "--json")
    expect_eq(d.dagctl("wait")[0], 2, "wait for nothing")
    rc, out, err = d.dagctl("wait", "c", "--project", q["id"])
    expect_eq((rc, out.strip()), (1, f"{c}: failed"), "wait for a task named in a project")
    expect_eq(d.dagctl("wait", "t-999999")[0], 4, "wait for an unknown task")


@test
def wait_goes_on_across_a_restart_of_the_daemon():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    a = d.add(p, f"while [ ! -e {w}/go ]; do sleep 0.02; done", title="a")["id"]
    d.wait_task_status(a, "running")
    waiter = subprocess.Popen([DAGCTL, "--socket", d.sock,
                               "wait", a], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    # (on a busy machine dagctl can take longer than a fixed pause to start)
    wait_for(lambda: d.call("daemon.status")["clients"] >= 2, 20, what="dagctl wait to connect")
    time.sleep(0.3)
    d.restart()
    open(f"{w}/go", "w").close()
    out, err = waiter.communicate(timeout=30)
    expect_eq((waiter.returncode, out.strip()), (0, f"{a}: completed"), f"wait: {err}")
    assert "lost dagd" in err and "reconnected" in err, f"what wait said: {err!r}"


def _stop_golden():
    global _golden_daemon
    if _golden_daemon is not None:
        d, _golden_daemon = _golden_daemon, None
        d.stop()
        d.cleanup()


@test
def the_golden_daemon_exits_0_on_sigterm():
    if _golden_daemon is None:
        golden_daemon()
    _stop_golden()


if __name__ == "__main__":
    try:
        main()
    finally:
        if _golden_daemon is not None:
            _golden_daemon.cleanup()
