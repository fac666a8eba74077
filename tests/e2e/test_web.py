"""dagctl web in a real headless Chromium against a real dagd: the lanes,
the spec's header (the toggle, "Autonomous: ON" and "Start Processing" with
their counts), live updates without a reload, a toggle flipped elsewhere, a
daemon restarted mid-run, the log view, the keyboard, both screen sizes, and
a board of 10,000 cards.  Screenshots go into BUILD/web-artifacts/."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web"))

from dagdtest import Daemon, Timeout, daemon, expect_eq, main, test  # noqa: E402
import webtest  # noqa: E402
from webtest import Web, browser, close_browser, stop_webs  # noqa: E402

LANES_JS = """return Object.fromEntries([...document.querySelectorAll('.lane')].map(l =>
  [l.dataset.lane, [...l.querySelectorAll('.card')].map(c => c.dataset.id)]))"""
HEADER_JS = """const b = document.querySelector('#process'), t = document.querySelector('#auto-toggle');
return { label: b.querySelector('.label').textContent, badge: (b.querySelector('.badge') || {}).textContent || null,
  cls: b.className, pressed: t.getAttribute('aria-pressed'), state: t.querySelector('.state').textContent,
  icon: b.querySelector('svg path').getAttribute('d'), bg: getComputedStyle(b).backgroundColor,
  border: getComputedStyle(b).borderColor, color: getComputedStyle(b).color }"""
PLAY, PAUSE = "M7 4v16l13-8z", "M6 4h4v16H6zM14 4h4v16h-4z"


def web_test(fn=None, own_daemon=False, timeout=120):
    """A test with a browser page and `dagctl web` for the shared daemon (or
    one of its own); the page must have logged no error (a CSP violation
    would be one)."""
    def wrap(f):
        def run():
            d = Daemon().start() if own_daemon else daemon()
            w = Web(d)
            try:
                br = browser()
                f(d, w, br)
                problems = br.problems()
                assert not problems, f"the page logged errors: {problems}"
                w.stop()
            finally:
                stop_webs()
        run.__name__ = f.__name__
        return test(run, timeout=timeout)
    return wrap(fn) if fn else wrap


def open_view(br, w, hash, width=1280, height=800):
    """A fresh page at the URL with the secret (which becomes a cookie), then the view."""
    br.page(width, height)
    status = br.goto(w.url)
    expect_eq(status, 200, "the page after the secret's redirect")
    br.eval(f"location.hash = '{hash}'")


def open_board(br, w, pid, width=1280, height=800, timeout=15):
    open_view(br, w, f"#/p/{pid}", width, height)
    br.wait("window.boardTimes && document.querySelector('#process .label')", what="the board",
            timeout=timeout * 1000)
    br.eval("window.notReloaded = 42")


def lanes(br):
    return br.eval(LANES_JS)


def header(br):
    return br.eval(HEADER_JS)


def wait_lanes(br, want, what="the lanes", timeout=30):
    """Waits until each lane named in want holds exactly these cards (in any order)."""
    cond = " && ".join(f"[...document.querySelectorAll('.lane-{lane} .card')].map(c => c.dataset.id).sort().join() "
                       f"=== {','.join(sorted(ids))!r}" for lane, ids in want.items())
    br.wait(cond, timeout=timeout * 1000, what=what)


@web_test
def the_lanes_show_the_right_cards_under_the_specs_header_at_both_sizes(d, w, br):
    p = d.project("build-pipeline")
    a = d.add(p, ["sleep", "60"], title="Compile the sources")
    b = d.add(p, ["true"], title="Run the unit tests", depends_on=[a["id"]], priority="high")
    c = d.add(p, "echo linting; exit 3", title="Lint")
    e = d.add(p, ["true"], title="Package", depends_on=[b["id"], c["id"]])
    f = d.add(p, ["sleep", "60"], title="Long soak test")
    g = d.add(p, ["true"], title="Fetch dependencies")
    for t in (c, f, g):
        d.call("task.start", task_id=t["id"])
    d.wait_tasks(p, until=lambda ts: {t["id"]: t["status"] for t in ts} == {
        a["id"]: "ready", b["id"]: "waiting", c["id"]: "failed", e["id"]: "upstream_failed",
        f["id"]: "running", g["id"]: "completed"})

    want = {"waiting": [b["id"]], "ready": [a["id"]], "running": [f["id"]], "validating": [],
            "done": [g["id"]], "failed": [c["id"], e["id"]]}
    for width, height in ((1280, 800), (390, 844)):
        open_board(br, w, p["id"], width, height)
        got = lanes(br)
        expect_eq({k: sorted(v) for k, v in got.items()}, {k: sorted(v) for k, v in want.items()},
                  f"the lanes at {width}x{height}")
        h = header(br)
        expect_eq((h["label"], h["badge"], h["pressed"], h["state"]), ("Start Processing", "1", "false", "Off"),
                  "the manual header")
        expect_eq(h["icon"], PLAY, "the play icon")
        expect_eq(h["bg"], "rgb(22, 163, 74)", "Start Processing is filled green")
        # status by text, not only by colour; the failure's reason on the failed card
        for t in (a, b, c, e, f, g):
            st = d.task(t["id"])["status"].replace("_", " ")
            expect_eq(br.eval(f"document.querySelector('.card[data-id=\"{t['id']}\"] .status').textContent"),
                      st, f"the status written on {t['id']}")
        why = br.eval(f"document.querySelector('.card[data-id=\"{c['id']}\"] .why').textContent")
        expect_eq(why, d.task(c["id"])["error_message"], "the failure on the failed card")
        # the header fits the screen: nothing sideways, the button whole
        box = br.eval("""const r = document.querySelector('#process').getBoundingClientRect(),
          t = document.querySelector('#auto-toggle').getBoundingClientRect();
          return { left: Math.min(r.left, t.left), right: Math.max(r.right, t.right), top: r.top, bottom: r.bottom,
                   scroll: document.documentElement.scrollWidth }""")
        assert box["left"] >= 0 and box["right"] <= width and box["bottom"] <= height, \
            f"the header's controls are off screen at {width}x{height}: {box}"
        assert box["scroll"] <= width, f"the page scrolls sideways at {width}x{height}: {box}"
        if width == 1280:
            assert box["top"] < 120 and box["right"] > 1100, f"the toggle is not top right: {box}"
        webtest_shot = br.screenshot(f"board-{width}x{height}.png")
        assert os.path.getsize(webtest_shot) > 10000

    # autonomous: "Autonomous: ON", outlined green, a pause icon, the running count
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    br.wait("document.querySelector('#process .label').textContent === 'Autonomous: ON' && "
            "document.querySelector('#process .badge').textContent === '2'", what="Autonomous: ON · 2")
    h = header(br)
    expect_eq((h["pressed"], h["state"], h["icon"]), ("true", "On", PAUSE), "the autonomous header")
    expect_eq(h["bg"], "rgb(255, 255, 255)", "Autonomous: ON is outlined, not filled")
    expect_eq((h["border"], h["color"]), ("rgb(34, 197, 94)", "rgb(22, 163, 74)"), "its green outline and text")
    br.screenshot("board-autonomous-390x844.png")
    open_board(br, w, p["id"])
    br.screenshot("board-autonomous-1280x800.png")

    # the graph: a node a task, an edge a dependency, dependencies above their dependents
    br.click("nav.tabs a[href$='/graph']")
    br.wait("document.querySelectorAll('svg.graph .node').length === 6", what="the graph's nodes")
    expect_eq(br.eval("document.querySelectorAll('svg.graph .edge').length"), 3, "the graph's edges")
    ys = br.eval("""return Object.fromEntries([...document.querySelectorAll('svg.graph .node')].map(n =>
      [n.dataset.id, +n.querySelector('rect').getAttribute('y')]))""")
    assert ys[a["id"]] < ys[b["id"]] < ys[e["id"]] and ys[c["id"]] < ys[e["id"]], f"the layers: {ys}"
    expect_eq(br.eval(f"document.querySelector('svg.graph .node[data-id=\"{c['id']}\"] .node-meta').textContent"),
              f"{c['id']} · failed", "a node says its status")
    br.screenshot("graph-1280x800.png")
    for t in (a, f):
        d.call("task.cancel", task_id=t["id"])


@web_test
def turning_the_toggle_on_starts_the_ready_tasks_and_the_cards_move_live(d, w, br):
    p = d.project()
    ts = [d.add(p, ["sleep", "2"], title=f"step {i}") for i in range(3)]
    last = d.add(p, ["true"], title="join", depends_on=[t["id"] for t in ts])
    ids = [t["id"] for t in ts]
    open_board(br, w, p["id"])
    wait_lanes(br, {"ready": ids, "waiting": [last["id"]]})
    expect_eq((header(br)["label"], header(br)["badge"]), ("Start Processing", "3"), "three processable")

    br.click("#auto-toggle")
    br.wait("document.querySelector('#auto-toggle').getAttribute('aria-pressed') === 'true'", what="aria-pressed")
    wait_lanes(br, {"running": ids, "ready": []}, what="the three cards in the running lane")
    h = header(br)
    expect_eq((h["label"], h["badge"]), ("Autonomous: ON", "3"), "the badge counts the running tasks")
    wait_lanes(br, {"done": ids + [last["id"]], "running": []}, what="every card done")
    expect_eq(header(br)["badge"], "0", "nothing running")
    expect_eq(br.eval("window.notReloaded"), 42, "the page was not reloaded")
    expect_eq(d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"], True, "the mode")
    expect_eq([t["status"] for t in d.tasks(p)], ["completed"] * 4, "the tasks")


@web_test
def start_processing_in_manual_mode_releases_the_ready_tasks(d, w, br):
    p = d.project()
    ts = [d.add(p, ["sleep", "1"], title=f"part {i}") for i in range(2)]
    after = d.add(p, ["true"], title="after both", depends_on=[t["id"] for t in ts])
    ids = [t["id"] for t in ts]
    open_board(br, w, p["id"])
    wait_lanes(br, {"ready": ids})
    br.click("#process")
    wait_lanes(br, {"done": ids, "ready": [after["id"]]}, what="the two done, the next one ready")
    h = header(br)
    expect_eq((h["label"], h["badge"], h["pressed"]), ("Start Processing", "1", "false"),
              "still manual, one processable")
    expect_eq(d.task(after["id"])["status"], "ready", "the dependent waits for the next Start Processing")
    expect_eq(br.eval("window.notReloaded"), 42, "the page was not reloaded")
    br.click("#process")
    wait_lanes(br, {"done": ids + [after["id"]]}, what="the last one done")


@web_test
def a_toggle_flipped_by_dagctl_shows_up_and_the_keyboard_flips_it_back(d, w, br):
    p = d.project()
    open_board(br, w, p["id"])
    rc, _, err = d.dagctl("autonomous", p["id"], "on")
    expect_eq(rc, 0, f"dagctl autonomous on ({err})")
    br.wait("document.querySelector('#auto-toggle').getAttribute('aria-pressed') === 'true' && "
            "document.querySelector('#process .label').textContent === 'Autonomous: ON'", what="the toggle on")
    # the keyboard: focus the toggle, Space
    br.do("focus", selector="#auto-toggle")
    br.do("key", key="Space")
    br.wait("document.querySelector('#auto-toggle').getAttribute('aria-pressed') === 'false'", what="toggled off")
    expect_eq(d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"], False,
              "the mode after Space")
    expect_eq(br.eval("window.notReloaded"), 42, "the page was not reloaded")

    # the settings page: its switch follows too, and sets max_concurrency
    br.eval(f"location.hash = '#/p/{p['id']}/settings'")
    br.wait("document.querySelector('#settings-auto')", what="the settings page")
    expect_eq(br.eval("document.querySelector('#settings-auto').getAttribute('aria-pressed')"), "false", "switch")
    d.dagctl("autonomous", p["id"], "on")
    br.wait("document.querySelector('#settings-auto').getAttribute('aria-pressed') === 'true' && "
            "document.querySelector('#settings-auto .state').textContent === 'On'", what="the switch on")
    br.do("focus", selector="#settings-auto")
    br.do("key", key="Enter")
    br.wait("document.querySelector('#settings-auto').getAttribute('aria-pressed') === 'false'", what="switch off")
    expect_eq(d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"], False,
              "the mode after Enter")
    # typed and entered; typed again if the page drew the field anew in
    # between (the switch's own event arriving late), at most three times
    for attempt in range(3):
        br.eval("document.querySelector('#max-conc').value = ''")
        br.do("focus", selector="#max-conc")
        br.do("key", key="3")
        br.do("key", key="Enter")
        try:
            webtest.wait_until(lambda: d.call("project.get", project=p["id"])["project"]["max_concurrency"] == 3,
                               what="max_concurrency 3", timeout=5 if attempt < 2 else 15)
            break
        except Timeout:
            if attempt == 2:
                raise
    br.screenshot("settings-1280x800.png")


@web_test
def a_failed_attempt_with_retries_left_counts_down_on_its_card(d, w, br):
    p = d.project()
    t = d.add(p, "echo broken; exit 1", title="flaky", max_retries=1, retry_backoff=40)
    open_board(br, w, p["id"])
    d.call("task.start", task_id=t["id"])
    sel = f".lane-ready .card[data-id=\"{t['id']}\"] .retry"
    text = br.wait(f"document.querySelector('{sel}') && document.querySelector('{sel}').textContent", what="a countdown")
    first = int(text.split()[2].rstrip("s"))
    assert text.startswith("retry in ") and 0 < first <= 60, f"the countdown reads {text!r}"
    br.wait(f"parseInt(document.querySelector('{sel}').textContent.split(' ')[2]) < {first}", what="it counts down")
    meta = br.eval(f"document.querySelector('.card[data-id=\"{t['id']}\"] .meta').textContent")
    assert "#1" in meta and "ready" in meta, f"the card's line: {meta!r}"
    d.call("task.cancel", task_id=t["id"])
    wait_lanes(br, {"failed": [t["id"]], "ready": []}, what="the cancelled card")


@web_test
def a_held_card_says_so_and_a_removed_one_leaves_the_board(d, w, br):
    p = d.project()
    t = d.add(p, ["true"], title="kept back")
    gone = d.add(p, ["true"], title="removed")
    open_board(br, w, p["id"])
    wait_lanes(br, {"ready": [t["id"], gone["id"]]}, what="two ready cards")
    d.call("task.hold", task_id=t["id"])
    sel = f".lane-ready .card[data-id=\"{t['id']}\"] .retry"
    br.wait(f"document.querySelector('{sel}') && document.querySelector('{sel}').textContent == 'held'",
            what="the card says held")
    d.call("task.remove", task_id=gone["id"])
    wait_lanes(br, {"ready": [t["id"]]}, what="the removed card gone")
    d.call("task.release", task_id=t["id"])
    br.wait(f"!document.querySelector('{sel}')", what="held no more")


@web_test(own_daemon=True)
def a_daemon_restarted_mid_run_is_followed_without_losing_a_cards_state(d, w, br):
    p = d.project(autonomous=False)
    a = d.add(p, ["true"], title="first")
    b = d.add(p, ["sleep", "2"], title="second", depends_on=[a["id"]])
    c = d.add(p, ["true"], title="third", depends_on=[b["id"]])
    open_board(br, w, p["id"])
    br.click("#auto-toggle")
    wait_lanes(br, {"done": [a["id"]], "running": [b["id"]]}, what="the second task running")
    d.stop()                             # the sandbox goes on without the daemon
    br.wait("!document.querySelector('#banner').hidden", what="the banner")
    expect_eq(br.eval("document.querySelector('#banner').textContent.includes('not reachable')"), True, "banner")
    time.sleep(2.5)                      # the second task ends while the daemon is away
    d.start()
    br.wait("document.querySelector('#banner').hidden", what="the banner gone", timeout=20000)
    wait_lanes(br, {"done": [a["id"], b["id"], c["id"]]}, what="every card done after the restart")
    got = lanes(br)
    for t in d.tasks(p):
        expect_eq(t["status"], "completed", f"{t['id']} in the daemon")
    expect_eq(sorted(got["done"]), sorted([a["id"], b["id"], c["id"]]), "the done lane")
    expect_eq(sum(len(v) for v in got.values()), 3, "no card lost or doubled")
    expect_eq(br.eval("window.notReloaded"), 42, "the page was not reloaded")


@web_test
def the_task_page_follows_the_log_and_its_actions_work(d, w, br):
    p = d.project()
    t = d.add(p, "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.4; done", title="counts to six")
    after = d.add(p, ["true"], title="after", depends_on=[t["id"]])
    open_view(br, w, f"#/t/{t['id']}")
    br.wait("document.querySelector('#act-start') && !document.querySelector('#act-start').disabled",
            what="the task page")
    expect_eq(br.eval("document.querySelector('.command').textContent"),
              "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.4; done", "the command")
    expect_eq(br.eval("[...document.querySelectorAll('.facts dd a')].map(a => a.textContent)"), [after["id"]],
              "the dependents")
    br.click("#act-start")
    first = br.wait("document.querySelector('#log').textContent.includes('line-1') && "
                    "document.querySelector('#log').textContent", what="the first line")
    assert "line-6" not in first, f"the log came whole, not followed: {first!r}"
    br.wait("document.querySelector('#log').textContent.includes('line-6')", what="the last line")
    br.wait("document.querySelector('#log-state').textContent.includes('ended') && "
            "document.querySelector('.status-pill').textContent === 'completed'", what="the end")
    expect_eq(br.eval("document.querySelector('#log').textContent"),
              "".join(f"line-{i}\n" for i in range(1, 7)), "the log, each line once")
    br.screenshot("task-1280x800.png")

    # cancel, then retry, from the page
    s = d.add(p, ["sleep", "60"], title="to cancel")
    d.call("task.start", task_id=s["id"])
    d.wait_task_status(s["id"], "running")
    br.eval(f"location.hash = '#/t/{s['id']}'")
    br.wait("document.querySelector('#act-cancel') && !document.querySelector('#act-cancel').disabled",
            what="cancel enabled")
    br.click("#act-cancel")
    br.wait("document.querySelector('.status-pill').textContent === 'cancelled' && "
            "!document.querySelector('#act-retry').disabled", what="cancelled")
    expect_eq(d.task(s["id"])["status"], "cancelled", "in the daemon")
    br.click("#act-retry")
    br.wait("document.querySelector('.status-pill').textContent === 'ready'", what="back to ready")
    expect_eq(d.task(s["id"])["status"], "ready", "in the daemon after retry")


@web_test(own_daemon=True, timeout=240)
def ten_thousand_tasks_render_in_under_a_second_and_stay_live(d, w, br):
    p = d.project()
    n = 10000
    with d.client(timeout=180) as c:      # a sanitizer build on a busy machine takes its time
        c.call("task.add_batch", project=p["id"],
               tasks=[{"name": f"n{i}", "title": f"generated task {i}", "command": ["true"]} for i in range(n)])
    open_board(br, w, p["id"], timeout=60)
    times = br.wait("window.boardTimes", what="the first frame")
    expect_eq(times["tasks"], n, "tasks loaded")
    print(f"# a board of 10,000 tasks: fetched in {times['fetch']:.0f} ms, "
          f"drawn up to its first frame in {times['render']:.0f} ms")
    assert times["render"] < 1000, f"drawing the board of 10,000 tasks took {times['render']:.0f} ms"
    # a lane draws 500 cards, says how many it holds, and draws more on demand
    expect_eq(br.eval("document.querySelector('.lane-ready .count').textContent"), str(n), "the ready count")
    expect_eq(br.eval("document.querySelectorAll('.lane-ready .card').length"), 500, "cards drawn")
    expect_eq(br.eval("document.querySelector('.lane-ready .more').textContent"), "Show 500 more (9500 not shown)",
              "the more button")
    with d.client(timeout=60) as c:
        ids = [t["id"] for t in c.call("task.list", project=p["id"])["tasks"]]
    br.click(".lane-ready .more")
    shown = br.eval("[...document.querySelectorAll('.lane-ready .card')].map(c => c.dataset.id)")
    expect_eq(shown, ids[:1000], "the first 1000 cards, in order")

    # a burst of events: the page keeps answering while it applies them
    br.eval("""window.boardStats = null; window.gaps = []; let last = performance.now();
      window.probe = setInterval(() => { const t = performance.now(); gaps.push(t - last); last = t; }, 20)""")
    t0 = time.monotonic()
    with d.client() as c:
        for i in range(0, 400, 50):
            for tid in ids[i:i + 50]:
                c.send({"id": tid, "cmd": "task.cancel", "args": {"task_id": tid}})
            for _ in ids[i:i + 50]:
                assert c.read_reply()["ok"]
    burst = time.monotonic() - t0
    br.wait("document.querySelectorAll('.lane-failed .card').length === 400", what="400 cards moved")
    worst = br.eval("clearInterval(window.probe); return Math.max(...window.gaps)")
    stats = br.eval("window.boardStats")
    print(f"# 400 status events in {burst:.2f} s ({400 / burst:.0f}/s), applied in {stats['flushes']} batches, "
          f"the longest {stats['maxFlushMs']:.0f} ms; the longest the page did not answer: {worst:.0f} ms")
    expect_eq(stats["events"] >= 400, True, "events applied")
    assert stats["flushes"] < 100, f"{stats['flushes']} batches for 400 events: not batched"
    assert stats["maxFlushMs"] < 400, f"a batch of events took {stats['maxFlushMs']:.0f} ms to apply"
    # on a machine busy with other work a frame may come late; a frozen page is a failure
    assert worst < 1500, f"the page did not answer for {worst:.0f} ms"
    expect_eq(br.eval("document.querySelector('.lane-ready .count').textContent"), str(n - 400), "ready count")
    expect_eq(header(br)["badge"], str(n - 400), "the processable count")
    expect_eq(br.eval("[...document.querySelectorAll('.lane-ready .card')].map(c => c.dataset.id)"), ids[400:1400],
              "the ready lane refilled, in order")


if __name__ == "__main__":
    try:
        main()
    finally:
        close_browser()
