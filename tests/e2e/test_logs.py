"""task.logs with follow: every line of an attempt's output, in order, as it
is written, a partial line held until its newline, the end announced with
the task's status; and a follower that comes back with the offset it had
misses nothing and sees nothing twice, across a daemon restart."""

import os

from dagdtest import Daemon, expect_eq, main, test, workdir


def follow(c, task_id, **args):
    """Follow a log to its end; returns (first reply, lines, last message)."""
    first = c.call("task.logs", task_id=task_id, follow=True, **args)
    lines = list(first["lines"])
    last = first
    while first.get("following"):
        m = c.read_msg(20)
        assert "log" in m, f"expected a log line, got {m!r}"
        assert m["log"]["offset"] >= last["offset"], "offsets go backwards"
        lines += m["log"]["lines"]
        last = m["log"]
        if last.get("end"):
            break
    return first, lines, last


@test
def a_follower_sees_every_line_in_order_then_the_end():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    t = d.add(p, f"echo one; while [ ! -e {w}/go ]; do sleep 0.02; done; "
                 "for i in 2 3 4; do echo line $i; sleep 0.05; done; printf 'half'; sleep 0.2; "
                 "echo ' and half'; exit 3")
    d.wait_task_status(t["id"], "running")
    with d.client() as c:
        c.send({"id": 1, "cmd": "task.logs", "args": {"task_id": t["id"], "follow": True}})
        first = c.read_reply()
        assert first["ok"] and first["result"]["following"], first
        open(f"{w}/go", "w").close()
        lines, last = list(first["result"]["lines"]), first["result"]
        while not last.get("end"):
            m = c.read_msg(20)
            expect_eq(m.get("id"), 1, "the id of the follow request")
            lines += m["log"]["lines"]
            last = m["log"]
    expect_eq(lines, ["one", "line 2", "line 3", "line 4", "half and half"], "lines")
    expect_eq(last["status"], "failed", "status at the end")
    # the same log, read once afterwards
    expect_eq(d.call("task.logs", task_id=t["id"])["lines"], lines, "the log read at once")
    f = d.call("task.logs", task_id=t["id"], follow=True)
    expect_eq((f["following"], f["end"]), (False, True), "following a finished attempt")


@test(timeout=120)
def a_follower_resumes_from_its_offset_across_a_restart():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    t = d.add(p, f"i=0; while [ ! -e {w}/stop ]; do i=$((i+1)); echo n$i; sleep 0.01; done; echo last")
    d.wait_task_status(t["id"], "running")
    with d.client() as c:
        first = c.call("task.logs", task_id=t["id"], follow=True)
        lines, offset = list(first["lines"]), first["offset"]
        while len(lines) < 20:
            m = c.read_msg(20)["log"]
            lines += m["lines"]
            offset = m["offset"]
    d.restart()                                 # the task runs on; it is adopted
    with d.client() as c:
        open(f"{w}/stop", "w").close()
        _, rest, last = follow(c, t["id"], offset=offset)
    seen = lines + rest
    expect_eq(seen[-1], "last", "the last line")
    numbers = [int(x[1:]) for x in seen[:-1]]
    expect_eq(numbers, list(range(1, len(numbers) + 1)), "every line once, in order")
    expect_eq(last["status"], "completed", "status at the end")
    with open(os.path.join(d.state_dir, "logs", t["id"], "1.log")) as f:
        expect_eq(f.read().split("\n")[:-1], seen, "what the file holds")


if __name__ == "__main__":
    main()
