"""events.subscribe: history with since/limit, following live, the type and
project filters, and the shape of the events a task's life produces."""

import re

from dagdtest import (Timeout, daemon, expect_eq, main, parse_time, select_events, test)

TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def check_seqs(events, what):
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), f"{what}: seqs not strictly increasing: {seqs}"


CREATED = ["PROJECT_CREATED", "TASK_CREATED"]


@test
def history_pages_with_since_and_limit():
    d = daemon()
    start = d.call("daemon.status")["last_event_seq"]
    p = d.project()
    for i in range(7):
        d.add(p, "true", title=f"t{i}")
    r = d.call("events.subscribe", since=start, follow=False)
    everything = r["events"]
    check_seqs(everything, "history")
    expect_eq([e["seq"] for e in everything], list(range(start + 1, start + 1 + len(everything))),
              "seqs of the unfiltered history")
    expect_eq(r["last_seq"], everything[-1]["seq"], "last_seq")
    events = [e for e in everything if e["type"] in CREATED]
    expect_eq([e["type"] for e in events], ["PROJECT_CREATED"] + ["TASK_CREATED"] * 7, "types")
    for e in everything:
        assert TIME_RE.fullmatch(e["time"]), f"event time {e['time']!r}"
        expect_eq(e["project_id"], p["id"], "project_id of the event")
    expect_eq((events[0]["entity"], events[0]["entity_id"], events[0]["payload"]["project"]["id"]),
              ("project", p["id"], p["id"]), "PROJECT_CREATED")
    expect_eq((events[1]["entity"], events[1]["entity_id"]),
              ("task", events[1]["payload"]["task"]["id"]), "TASK_CREATED")

    pages, since = [], start
    while True:
        r = d.call("events.subscribe", since=since, follow=False, limit=3, project=p["id"],
                   types=CREATED)
        if not r["events"]:
            break
        assert len(r["events"]) <= 3, f"limit 3 answered {len(r['events'])} events"
        assert r["last_seq"] >= r["events"][-1]["seq"], r
        pages.append(r["events"])
        since = r["events"][-1]["seq"]
    expect_eq([len(x) for x in pages], [3, 3, 2], "page sizes")
    expect_eq(sum(pages, []), events, "the pages put together")


@test
def type_and_project_filters_apply_to_history_and_to_following():
    d = daemon()
    start = d.call("daemon.status")["last_event_seq"]
    p1, p2 = d.project(), d.project()
    with d.subscribe(project=p1["id"]) as by_project, \
            d.subscribe(types=["TASK_CREATED", "PROJECT_UPDATED"]) as by_type, \
            d.subscribe(project=p2["name"], types=["PROJECT_UPDATED"]) as both:
        t1 = d.add(p1, "true")["id"]
        t2 = d.add(p2, "true")["id"]
        d.call("project.update", project=p2["id"], max_concurrency=3)
        d.call("project.update", project=p1["id"], max_concurrency=4)
        d.project()     # the last event; none of the three wants it

        got = []
        while not got or got[-1]["type"] != "PROJECT_UPDATED":
            got.append(by_project.next_event(5))
        expect_eq({e["project_id"] for e in got}, {p1["id"]}, "projects of the events")
        assert ("TASK_CREATED", t1) in [(e["type"], e["entity_id"]) for e in got], got
        got = [by_type.next_event(5) for _ in range(4)]
        expect_eq([(e["type"], e["entity_id"]) for e in got],
                  [("TASK_CREATED", t1), ("TASK_CREATED", t2), ("PROJECT_UPDATED", p2["id"]),
                   ("PROJECT_UPDATED", p1["id"])], "types filter")
        got = both.next_event(5)
        expect_eq((got["type"], got["entity_id"]), ("PROJECT_UPDATED", p2["id"]), "both")
        expect_eq(got["payload"]["project"]["max_concurrency"], 3, "PROJECT_UPDATED payload")
        for c in (by_project, by_type, both):
            c.no_event(lambda e: True, within=0.3)

    hist = d.events(start, project=p1["id"], types=["PROJECT_UPDATED", "PROJECT_CREATED"])
    expect_eq([e["type"] for e in hist], ["PROJECT_CREATED", "PROJECT_UPDATED"], "history")


@test
def follow_from_since_replays_then_goes_live_without_gap_or_duplicate():
    d = daemon()
    start = d.call("daemon.status")["last_event_seq"]
    p = d.project()
    for i in range(5):
        d.add(p, "true", title=f"before {i}")
    with d.client() as c:
        r = c.subscribe(since=start)
        assert r["last_seq"] >= start + 6, f"subscribed answered {r}"
        last = None
        for i in range(5):
            last = d.add(p, "true", title=f"after {i}")["id"]
        got = []
        while not (got and got[-1]["type"] == "TASK_CREATED" and got[-1]["entity_id"] == last):
            got.append(c.next_event(5))
        expect_eq(got, d.events(start)[:len(got)], "events followed against the history")
        expect_eq([e["seq"] for e in got], list(range(start + 1, start + 1 + len(got))), "seqs")


@test
def default_subscription_gets_only_new_events_and_still_takes_commands():
    d = daemon()
    d.project()
    with d.client() as c:
        r = c.subscribe()
        seq = r["last_seq"]
        p = c.call("project.create", name=f"via-subscriber-{seq}")["project"]
        t = c.call("task.add", project=p["id"], title="x", command="true")["task"]
        expect_eq(c.call("task.get", task_id=t["id"])["task"]["id"], t["id"], "task.get")
        got = [c.next_event(5) for _ in range(2)]
        expect_eq([(e["seq"], e["type"]) for e in got],
                  [(seq + 1, "PROJECT_CREATED"), (seq + 2, "TASK_CREATED")], "events")


@test
def a_task_run_emits_the_documented_events():
    d = daemon()
    p = d.project()
    t = d.add(p, ["sh", "-c", "exit 0"])["id"]
    since = d.call("daemon.status")["last_event_seq"]
    d.call("task.start", task_id=t)
    d.wait_done(p)
    events = d.events(since, project=p["id"])
    check_seqs(events, "events of a run")
    changes = [(e["payload"]["old_status"], e["payload"]["new_status"])
               for e in select_events(events, "TASK_STATUS_CHANGED", task_id=t)]
    expect_eq(changes, [("ready", "spawning"), ("spawning", "running"), ("running", "completed")],
              "status changes")
    for e in select_events(events, "TASK_STATUS_CHANGED"):
        expect_eq((e["entity"], e["entity_id"], e["payload"]["project_id"],
                   e["payload"]["attempt"]), ("task", t, p["id"], 1), "TASK_STATUS_CHANGED")
    sp = select_events(events, "SANDBOX_SPAWNED")
    expect_eq([(e["entity"], e["entity_id"], e["payload"]["sandbox_id"], e["payload"]["task_id"],
                e["payload"]["executor"], e["payload"]["attempt"]) for e in sp],
              [("sandbox", f"{t}.1", f"{t}.1", t, "local", 1)], "SANDBOX_SPAWNED")
    ex = select_events(events, "SANDBOX_EXITED")
    expect_eq([(e["payload"]["sandbox_id"], e["payload"]["exit_code"], e["payload"]["signal"])
               for e in ex], [(f"{t}.1", 0, None)], "SANDBOX_EXITED")
    done = select_events(events, "TASK_COMPLETED")
    expect_eq([(e["payload"]["task_id"], e["payload"]["attempt"]) for e in done], [(t, 1)],
              "TASK_COMPLETED")
    task = d.task(t)
    assert parse_time(task["started_at"]) <= parse_time(task["finished_at"]), task
    expect_eq((task["sandbox_id"], task["attempt"]), (f"{t}.1", 1), "sandbox_id and attempt")


@test(timeout=240)
def a_follower_that_does_not_read_misses_nothing_and_blocks_nobody():
    d = daemon()
    p = d.project()
    with d.client(timeout=30) as slow:
        start = slow.subscribe(project=p["id"], types=["TASK_CREATED"])["last_seq"]
        title = "z" * 1000
        n = 0
        for _ in range(20):      # ~5 MB of events, far more than a socket buffer
            batch = [dict(name=f"n{n + i}", title=title, command="true") for i in range(200)]
            n += len(d.call("task.add_batch", project=p["id"], tasks=batch)["tasks"])
            with d.client(timeout=5) as other:
                other.call("daemon.status")
        got = []
        while len(got) < n:
            try:
                got.append(slow.next_event())
            except Timeout:
                raise AssertionError(f"the slow follower got {len(got)} of {n} events, then "
                                     f"nothing for {slow.timeout}s")
    expect_eq({e["type"] for e in got}, {"TASK_CREATED"}, "types")
    seqs = [e["seq"] for e in got]
    assert seqs[0] > start and seqs == sorted(set(seqs)), "events out of order or repeated"
    expect_eq(len(got), 4000, "events received")


if __name__ == "__main__":
    main()
