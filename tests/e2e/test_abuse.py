"""The daemon under abuse: past its limit on open files, on a full disk, with
a log follower waiting on a line that never ends, and with output too big
to send at once it neither spins nor floods its log, keeps answering what
it can, and loses no line of output and no event."""

import errno
import os
import socket
import threading
import time

from dagdtest import (FINISHED, Daemon, Client, cpu_during, daemon, expect_eq, expect_error,
                      main, skip, test, wait_for)

# a sanitizer build at rest uses next to nothing; a spin uses all of a CPU
IDLE_CPU = 0.15


def status(d):
    with d.client(timeout=5) as c:
        return c.call("daemon.status")


@test
def past_the_fd_limit_accepting_pauses_instead_of_spinning():
    d = Daemon(prefix=["prlimit", "--nofile=64:64", "--"]).start()
    held = []
    try:
        for _ in range(120):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(d.sock)           # the backlog takes it, accepted or not
            held.append(s)
        time.sleep(0.5)
        cpu = cpu_during(d.proc.pid, 2)
        print(f"# daemon CPU with 120 connections at a limit of 64 fds: {cpu:.1%}")
        assert cpu < IDLE_CPU, f"the daemon used {cpu:.0%} of a CPU past its fd limit"
        said = [x for x in d.stderr().splitlines() if "cannot accept" in x]
        assert 1 <= len(said) <= 2, f"{len(said)} log lines about accepting:\n" + "\n".join(said[:5])
    finally:
        for s in held[:100]:
            s.close()
        del held[:100]
    st = wait_for(lambda: status(d), 10, what="daemon.status once fds are free")
    assert st["accept"]["pauses"] >= 1, st["accept"]
    assert "open files" in st["accept"]["last_error"], st["accept"]
    assert st["accept"]["last_error_at"], st["accept"]
    rc, out, err = d.dagctl("status")
    assert rc == 0 and "paused " in out and "open files" in out, f"dagctl status said: {out}{err}"
    # the connections held all along are served too
    for s in held:
        s.sendall(b'{"id":1,"cmd":"daemon.status"}\n')
        assert b'"ok":true' in s.recv(65536), "a connection from the backlog was not served"
        s.close()
    cpu = cpu_during(d.proc.pid, 1)
    assert cpu < IDLE_CPU, f"the daemon used {cpu:.0%} of a CPU afterwards"


def follow(d, task_id, **args):
    c = d.client(timeout=30)
    r = c.call("task.logs", task_id=task_id, follow=True, **args)
    return c, r


@test
def a_follower_waiting_on_a_line_without_its_newline_does_not_spin():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "printf 'first\\nx'; sleep 4; echo y")["id"]
    d.wait_task_status(t, "running")
    c, r = follow(d, t, offset=0)
    with c:
        time.sleep(0.5)
        cpu = cpu_during(d.proc.pid, 2)
        print(f"# daemon CPU with a follower on a held line: {cpu:.1%}")
        assert cpu < IDLE_CPU, f"the daemon used {cpu:.0%} of a CPU for a waiting follower"
        lines = list(r["lines"])
        while True:
            msg = c.read_msg(15)
            assert msg and "log" in msg, f"expected a log message, got {msg!r}"
            lines += msg["log"]["lines"]
            if msg["log"].get("end"):
                break
        expect_eq(lines, ["first", "xy"], "lines followed")


def collect(c, first):
    """Follow to the end; the lines, joining pieces, and the number of pieces."""
    lines, pieces, partial = list(first["lines"]), 0, bool(first.get("partial"))
    pieces += partial
    while True:
        msg = c.read_msg(60)
        assert msg and "log" in msg, f"expected a log message, got {str(msg)[:200]}"
        log = msg["log"]
        got = log["lines"]
        if partial and got:
            lines[-1] += got[0]
            got = got[1:]
        lines += got
        partial = bool(log.get("partial"))
        pieces += partial
        if log.get("end"):
            assert not partial, "the end came with a line still partial"
            return lines, pieces


@test
def followed_output_is_exactly_the_files_lines():
    d = daemon()
    p = d.project(autonomous=True)
    # many short lines, one of 600 kB, more short lines, ended long before
    # the follower reads
    t = d.add(p, "sleep 1; seq 1 300000; head -c 600000 /dev/zero | tr '\\0' y; echo;"
                 " seq 1 50000 | sed 's/^/line /'; printf 'no newline at the end'")["id"]
    d.wait_task_status(t, "running")
    c, r = follow(d, t, offset=0)
    with c:
        d.wait_task_status(t, FINISHED)
        time.sleep(0.5)
        lines, pieces = collect(c, r)
    with open(os.path.join(d.state_dir, "logs", t.replace("t-", "t-"), "1.log")) as f:
        want = f.read().split("\n")
    expect_eq(len(lines), len(want), "number of lines")
    bad = [i for i, (a, b) in enumerate(zip(lines, want)) if a != b]
    assert not bad, f"{len(bad)} lines differ, first at {bad[0]}: {lines[bad[0]][:80]!r}"
    assert pieces >= 2, f"the 600 kB line came in {pieces} partial pieces"


@test
def a_line_longer_than_a_feed_is_delivered_in_pieces_while_the_task_runs():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "head -c 700000 /dev/zero | tr '\\0' z; sleep 6; echo")["id"]
    d.wait_task_status(t, "running")
    c, r = follow(d, t, offset=0)
    # what is held back is the line's tail shorter than a feed (256 KiB);
    # where the pieces start depends on how much the first reply found
    want = 700000 - 256 * 1024 + 1
    with c:
        got, partial = "".join(r["lines"]), bool(r.get("partial"))
        deadline = time.monotonic() + 4
        while len(got) < want and time.monotonic() < deadline:
            msg = c.read_msg(max(deadline - time.monotonic(), 0.01))
            assert msg and "log" in msg, msg
            assert msg["log"].get("partial") or not msg["log"]["lines"], \
                "a piece of an unfinished line came without partial"
            got += "".join(msg["log"]["lines"])
        assert len(got) >= want, f"only {len(got)} bytes of the long line while it runs"
        assert set(got) == {"z"}, "the pieces are not the line's bytes"
        expect_eq(d.task(t)["status"], "running", "status while the pieces came")


def fill(path):
    """Write to path until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[:len(chunk) // 2]


@test(timeout=180)
def a_full_disk_neither_spins_nor_floods_and_reads_go_on():
    if os.geteuid() != 0:
        skip("needs root to mount a small file system for the state")
    mount = ('mount -t tmpfs -o size=16m tmpfs "$0" && exec "$@"')
    d = Daemon()
    os.makedirs(d.state_dir)
    d.prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c", mount, d.state_dir]
    d.start()
    p = d.project(autonomous=True)
    t = d.add(p, "sleep 2")["id"]
    d.wait_task_status(t, "running")
    # a follower from the start, which has read up to the task's start (its
    # events are committed a moment after the status reads running, the
    # sandbox's last): what comes on it from now is what the full disk lets
    # through
    sub = d.subscribe(since=0)
    since = sub.wait_event(lambda ev: ev["type"] == "SANDBOX_SPAWNED" and ev["payload"]["task_id"] == t,
                           10, what="the task's start")["seq"]
    filler = f"/proc/{d.proc.pid}/root{d.state_dir}/fill"
    fill(filler)
    # the task's end cannot be written
    wait_for(lambda: not status(d)["database"]["writable"], 20, what="a refused commit")
    time.sleep(0.5)
    cpu = cpu_during(d.proc.pid, 3)
    print(f"# daemon CPU on a full disk: {cpu:.1%}")
    assert cpu < IDLE_CPU, f"the daemon used {cpu:.0%} of a CPU on a full disk"
    said = [x for x in d.stderr().splitlines() if "commit" in x]
    assert 1 <= len(said) <= 2, f"{len(said)} log lines about commits:\n" + "\n".join(said[:5])
    # reads are answered from memory; writes are refused
    st = status(d)
    assert st["database"]["error"] and st["database"]["failing_since"], st["database"]
    assert st["database"]["refused_turns"] >= 1, st["database"]
    rc, out, err = d.dagctl("status")
    assert rc == 0 and "NOT WRITABLE" in out, f"dagctl status said: {out}{err}"
    with d.client() as c:
        # (what memory holds, though not yet on disk: the sandbox's end may be judged)
        assert c.call("task.get", task_id=t)["task"]["status"] in ("running",) + FINISHED
        assert [x["id"] for x in c.call("task.list", project=p["id"])["tasks"]] == [t]
        assert c.call("project.get", project=p["id"])["project"]["name"] == p["name"]
        c.call("events.subscribe", since=0, follow=False)
        expect_error(c.call, "unavailable", "task.add", project=p["id"], title="x", command="true")
        expect_error(c.call, "unavailable", "project.create", name="refused")
    sub.no_event(lambda ev: True, 1)
    # room again: the retry writes the task's end without being asked
    os.unlink(filler)
    st = wait_for(lambda: (lambda x: x if x["database"]["writable"] else None)(status(d)), 15,
                  what="the database writable again")
    d.wait_task_status(t, FINISHED, timeout=15)
    assert st["database"]["writable"] and st["database"]["error"] is None, st["database"]
    d.call("task.add", project=p["id"], title="after", command="true")
    time.sleep(0.5)
    got = []
    try:
        while True:
            got.append(sub.next_event(0.5))
    except Exception:
        pass
    seqs = [ev["seq"] for ev in got]
    expect_eq(seqs, sorted(set(seqs)), "seqs the subscriber got (no seq twice)")
    expect_eq(got, d.events(since), "what the subscriber got against the stored log")
    assert any(ev["payload"].get("task_id") == t for ev in got), "the task's end was not sent"
    assert not any(ev["payload"].get("name") == "refused" for ev in got), "a refused turn was sent"
    sub.close()


def flood_beside(line, per_send, first):
    """A client sends line without pause (per_send at a time) and reads its
    replies, while another adds five tasks, each of which must finish; the
    flooding client must be answered before (first replies) and after."""
    d = daemon()
    p = d.project(autonomous=True)
    flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flood.connect(d.sock)
    stop, answered = threading.Event(), [0]

    def send():
        try:
            while not stop.is_set():
                flood.sendall(line * per_send)
        except OSError:
            pass

    def drain():
        buf = b""
        while not stop.is_set():
            try:
                got = flood.recv(1 << 20)
            except OSError:
                return
            if not got:
                return
            buf += got
            answered[0] += buf.count(b"\n")
            buf = buf[buf.rfind(b"\n") + 1:]

    threads = [threading.Thread(target=send, daemon=True), threading.Thread(target=drain, daemon=True)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: answered[0] > first, 30, what="the flooding client's first replies")
        with d.client(timeout=30) as c:
            # each needs the turn to end: replies to changes go out after its commit
            for k in range(5):
                t = c.call("task.add", project=p["id"], title=f"t{k}", command="true")["task"]
                wait_for(lambda: c.call("task.get", task_id=t["id"])["task"]["status"] in FINISHED, 30,
                         what=f"task {t['id']} to finish beside the flood")
                expect_eq(c.call("task.get", task_id=t["id"])["task"]["status"], "completed", "its status")
        before = answered[0]
        wait_for(lambda: answered[0] > before, 30, what="the flooding client answered still")
    finally:
        stop.set()
        flood.shutdown(socket.SHUT_RDWR)
        flood.close()
        for t in threads:
            t.join(10)


@test
def a_client_that_never_stops_sending_neither_holds_the_turn_nor_the_others():
    """A client with lines always waiting is read once a turn: the turn
    still ends (the other clients' changes are committed and answered), and
    it is answered too."""
    flood_beside(b'{"id":1,"cmd":"daemon.status"}\n', 256, 1000)


@test
def a_client_sending_long_lines_without_pause_neither_holds_the_turn_nor_the_others():
    """The same with lines of 70 KB (each leaves its memory to give back to
    the system, which the daemon does at most a tenth of its time)."""
    flood_beside(b'{"id":1,"cmd":"daemon.status","args":{}' + b" " * 70000 + b"}\n", 4, 50)


if __name__ == "__main__":
    main()
