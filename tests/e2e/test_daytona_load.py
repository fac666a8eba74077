"""The daytona executor under load, against the loopback Daytona of
tests/daytona: 50 tasks at once while the server delays every answer, and
the daemon keeps answering other clients meanwhile (`dagctl status`, whose
latency is measured and printed).  Without node and npm the test skips.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "daytona"))

from dagdtest import main  # noqa: E402
from daytonae2e import Server, daemon, daytona_test, expect_faithful, project, wait_no_sandboxes  # noqa: E402

TASKS = 50
LATENCY_MS = 150
# dagctl status must answer within this, even at the worst, while all run
STATUS_MAX_SEC = 1.0


@daytona_test(timeout=240)
def fifty_sandboxes_at_once_with_a_slow_api_leave_the_daemon_responsive():
    s = Server()
    s.faults(latencyMs=LATENCY_MS)
    d = daemon(s, poll_interval=0.2)
    p = project(d, max_concurrency=TASKS)
    for i in range(TASKS):
        d.add(p, f"sleep 2; echo task {i}", title=f"t{i}")
    samples = []
    peak = 0
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        rc, out, err = d.dagctl("status", timeout=10)
        samples.append(time.monotonic() - t0)
        assert rc == 0, f"dagctl status failed: {err}"
        peak = max(peak, len(s.live(instance=d.state_dir)))
        tasks = d.tasks(p)
        if all(t["status"] in ("completed", "failed", "cancelled") for t in tasks):
            break
        time.sleep(0.1)
    bad = [t for t in d.tasks(p) if t["status"] != "completed"]
    assert not bad, f"not completed: {[(t['id'], t['status'], t['error_message']) for t in bad][:5]}"
    samples.sort()
    median, worst = samples[len(samples) // 2], samples[-1]
    print(f"# {TASKS} tasks, {LATENCY_MS} ms added to every API answer, {peak} sandboxes live at the peak: "
          f"dagctl status took {median * 1000:.0f} ms median, {samples[int(len(samples) * 0.95)] * 1000:.0f} ms "
          f"p95, {worst * 1000:.0f} ms worst, over {len(samples)} calls")
    assert peak >= TASKS * 0.8, f"only {peak} sandboxes at once"
    assert worst < STATUS_MAX_SEC, f"dagctl status took {worst:.2f}s at the worst"
    wait_no_sandboxes(s, d, timeout=30)
    expect_faithful(s)


if __name__ == "__main__":
    main()
