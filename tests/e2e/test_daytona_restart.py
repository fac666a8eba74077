"""The daytona executor across daemon restarts, against the loopback
Daytona of tests/daytona: sandboxes running when dagd stops (SIGTERM) or
dies (SIGKILL) are found again by their handle and their session, polled to
their end, and deleted; a command that ended while dagd was down is
collected; each task completes once, in one attempt, with its output and
result.  Without node and npm the tests skip.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "daytona"))

from dagdtest import expect_eq, main, workdir  # noqa: E402
from daytonae2e import (Server, daemon, daytona_test, expect_faithful, log_text, project,  # noqa: E402
                        wait_no_sandboxes, wait_until)


def start_waiting(s, d, w, n=3):
    """n tasks that print "before", wait for w/go, print "after" and write
    a result; returns once every command runs in its sandbox."""
    p = project(d, max_concurrency=n)
    go = os.path.join(w, "go")
    cmd = (f'echo "before $DAGD_TASK_ID"; while [ ! -e {go} ]; do sleep 0.1; done; '
           'echo "after $DAGD_TASK_ID"; printf \'{"n": "%s"}\' "$DAGD_TASK_ID" > "$DAGD_RESULT_FILE"')
    ids = [d.add(p, cmd, title=f"waiter {i}")["id"] for i in range(n)]
    wait_until(lambda: all(x["commands"] for t in ids for x in s.live(instance=d.state_dir, task=t))
               and len(s.live(instance=d.state_dir)) == n, what="every command running")
    return p, ids


def finish_and_check(s, d, p, ids):
    tasks = d.wait_done(p, timeout=60)
    for t in tasks:
        expect_eq(t["attempt"], 1, f"attempts of {t['id']}")
        text = log_text(d, t["id"])
        for word in ("before", "after"):
            expect_eq(text.count(f"{word} {t['id']}"), 1, f"'{word}' lines in the log of {t['id']}: {text!r}")
        with open(os.path.join(d.state_dir, "logs", t["id"], "1.result.json")) as f:
            expect_eq(json.load(f), {"n": t["id"]}, f"result of {t['id']}")
    wait_no_sandboxes(s, d)
    expect_faithful(s)


@daytona_test
def a_restart_mid_run_adopts_the_sandboxes_and_finishes():
    s = Server()
    w = workdir()
    d = daemon(s)
    p, ids = start_waiting(s, d, w)
    d.stop()
    d.start()
    open(os.path.join(w, "go"), "w").close()
    finish_and_check(s, d, p, ids)


@daytona_test
def a_daemon_killed_mid_run_adopts_the_sandboxes_and_finishes():
    s = Server()
    w = workdir()
    d = daemon(s)
    p, ids = start_waiting(s, d, w, n=2)
    d.kill()
    d.start()
    open(os.path.join(w, "go"), "w").close()
    finish_and_check(s, d, p, ids)


@daytona_test
def a_command_that_ended_while_the_daemon_was_down_is_collected():
    s = Server()
    w = workdir()
    d = daemon(s)
    p, ids = start_waiting(s, d, w, n=2)
    d.stop()
    open(os.path.join(w, "go"), "w").close()
    wait_until(lambda: all(c.get("exitCode") == 0 for x in s.live(instance=d.state_dir) for c in x["commands"]),
               what="the commands to exit")
    d.start()
    finish_and_check(s, d, p, ids)


if __name__ == "__main__":
    main()
