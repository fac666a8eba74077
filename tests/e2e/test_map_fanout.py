"""Fan-out of a thousand items: at most map_concurrency children hold a slot
at once (replayed from the event log's status changes), every child is
made once, and the fan-in's array has every child's result in item order.
(Apart from test_map.py, for time: a thousand sandboxes under the
sanitizers take a while.)"""

import json

from dagdtest import ACTIVE, DAGCTL, daemon, expect_eq, main, read_file, select_events, test, workdir


def producer(d, p, result, name="list"):
    return d.add(p, [DAGCTL, "complete", "--result", json.dumps(result)], title=name,
                 name=name)["id"]


def children_of(tasks, mapped):
    return sorted((t for t in tasks if t.get("map_parent") == mapped), key=lambda t: t["map_index"])


@test(timeout=290)
def a_thousand_items_never_run_more_than_map_concurrency_at_once_and_fan_in_in_order():
    d, w = daemon(), workdir()
    p = d.project(max_concurrency=20)
    n, limit = 1000, 8
    lst = producer(d, p, list(range(n)))
    m = d.add(p, [DAGCTL, "complete", "--result", "{{item}}"], title="sq", name="sq",
              depends_on=[lst], map_over="list", map_concurrency=limit)["id"]
    after = d.add(p, f'cat "$DAGD_INPUTS" > {w}/inputs', title="after", depends_on=[m])["id"]
    since = d.call("daemon.status")["last_event_seq"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = d.wait_done(p, timeout=280)
    kids = children_of(tasks, m)
    expect_eq([k["name"] for k in kids], [f"sq[{i}]" for i in range(n)], "children, by index")
    expect_eq(json.loads(read_file(f"{w}/inputs")), {"sq": list(range(n))}, "the fan-in's array")
    ids = {k["id"] for k in kids}
    events = []
    last = since
    while True:
        got = d.call("events.subscribe", since=last, project=p["id"], follow=False, limit=100000)
        events += got["events"]
        if not got["events"]:
            break
        last = got["last_seq"]
    peak = 0
    status = {}
    for ev in events:
        if ev["type"] == "TASK_STATUS_CHANGED" and ev["payload"]["task_id"] in ids:
            status[ev["payload"]["task_id"]] = ev["payload"]["new_status"]
            peak = max(peak, sum(1 for s in status.values() if s in ACTIVE))
    assert 1 <= peak <= limit, f"{peak} children held a slot at once; map_concurrency {limit}"
    expect_eq(len(select_events(events, "TASK_CREATED")), n, "TASK_CREATED of the children")
    expect_eq([e["payload"]["count"] for e in select_events(events, "TASK_EXPANDED")], [n], "TASK_EXPANDED")
    assert after


if __name__ == "__main__":
    main()
