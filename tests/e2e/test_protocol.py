"""The line protocol: every bad input gets the right error while the daemon
keeps serving; ids are echoed; replies keep their order; the line limit; slow,
stalled and greedy clients never block the others."""

import json
import os
import socket
import time

from dagdtest import Client, Daemon, daemon, expect_eq, main, run_as_nobody, test


def reply_to(c, line):
    """Send one raw line; the reply."""
    c.send_raw(line + b"\n")
    msg = c.read_msg()
    assert msg is not None, f"the daemon closed the connection after {line[:80]!r}"
    return msg


def expect_reply_error(msg, code, rid=None, what=""):
    assert msg.get("ok") is False, f"{what}: expected error {code}, got {msg!r}"
    err = msg.get("error") or {}
    assert err.get("code") == code, f"{what}: expected error {code}, got {msg!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"{what}: no message"
    expect_eq(msg.get("id"), rid, f"{what}: id of the reply")


def still_serving(d, within=5):
    """A fresh connection is answered in time."""
    with d.client(timeout=within) as c:
        assert c.call("daemon.status")["pid"] == d.proc.pid


@test
def malformed_and_non_object_lines_get_bad_request_and_the_connection_goes_on():
    d = daemon()
    with d.client() as c:
        for line in [b'{"cmd": "daemon.status"', b"not json", b'{"id": 1, "cmd": }', b"}{",
                     b"[1, 2]", b'"daemon.status"', b"42", b"null", b"true"]:
            expect_reply_error(reply_to(c, line), "bad_request", None, repr(line))
        for line, rid in [(b'{"id": 3}', 3), (b'{"id": 4, "cmd": 42}', 4),
                          (b'{"id": 5, "cmd": "daemon.status", "args": [1]}', 5),
                          (b'{"id": 6, "cmd": "daemon.status", "args": "x"}', 6),
                          (b'{"id": "u", "cmd": "no.such.command"}', "u"),
                          (b'{"id": 7, "cmd": ""}', 7)]:
            expect_reply_error(reply_to(c, line), "bad_request", rid, repr(line))
        assert c.call("daemon.status")["pid"] == d.proc.pid
    still_serving(d)


@test
def missing_and_wrongly_typed_arguments_get_bad_request():
    d = daemon()
    p = d.project()["id"]
    t = d.add(p, "true")["id"]
    cases = [
        ("task.get", {}), ("task.get", {"task_id": 5}), ("task.get", {"task_id": None}),
        ("project.get", {}), ("project.create", {}), ("project.create", {"name": ""}),
        ("project.create", {"name": "has space"}), ("project.create", {"name": "x" * 65}),
        ("project.create", {"name": "p-12"}), ("project.create", {"name": "sl/ash"}),
        ("project.create", {"name": "ok-mc0", "max_concurrency": 0}),
        ("project.create", {"name": "ok-mcs", "max_concurrency": "2"}),
        ("project.create", {"name": "ok-aut", "autonomous": "yes"}),
        ("project.create", {"name": "ok-opt", "executor_options": []}),
        ("project.update", {"project": p, "max_concurrency": -1}),
        ("project.set_autonomous", {"project": p}),
        ("project.set_autonomous", {"project": p, "enabled": "yes"}),
        ("task.add", {"project": p, "command": "true"}),
        ("task.add", {"project": p, "title": "no command"}),
        ("task.add", {"project": p, "title": "t", "command": 5}),
        ("task.add", {"project": p, "title": "t", "command": ["echo", 1]}),
        ("task.add", {"project": p, "title": "t", "command": []}),
        ("task.add", {"project": p, "title": "t", "command": "true", "env": {"A": 1}}),
        ("task.add", {"project": p, "title": "t", "command": "true", "env": ["A=1"]}),
        ("task.add", {"project": p, "title": "t", "command": "true", "priority": "urgent"}),
        ("task.add", {"project": p, "title": "t", "command": "true", "timeout": -1}),
        ("task.add", {"project": p, "title": "t", "command": "true", "timeout": "5"}),
        ("task.add", {"project": p, "title": "t", "command": "true", "max_retries": -1}),
        ("task.add", {"project": p, "title": "t", "command": "true", "depends_on": [5]}),
        ("task.add", {"project": p, "title": 7, "command": "true"}),
        ("task.add_batch", {"project": p}), ("task.add_batch", {"project": p, "tasks": {}}),
        ("task.list", {"status": "bogus"}), ("task.list", {"status": 3}),
        ("task.depend", {"task_id": t}), ("task.depend", {"task_id": t, "on": 5}),
        ("task.complete", {"task_id": t, "success": "yes"}),
        ("events.subscribe", {"since": "x", "follow": False}),
        ("events.subscribe", {"types": "TASK_CREATED", "follow": False}),
        ("events.subscribe", {"follow": "no"}),
        ("task.unblocked", {"limit": "x"}),
        ("task.logs", {"task_id": t, "max_bytes": "x"}),
    ]
    with d.client() as c:
        for i, (cmd, args) in enumerate(cases):
            msg = c.request(cmd, args)
            expect_reply_error(msg, "bad_request", msg.get("id"), f"{cmd} {json.dumps(args)}")
        expect_eq([x["id"] for x in d.tasks(p)], [t], "tasks after the bad requests")
    still_serving(d)


@test
def unknown_ids_get_not_found():
    d = daemon()
    p = d.project()["id"]
    t = d.add(p, "true")["id"]
    cases = [
        ("task.get", {"task_id": "t-999999"}), ("task.get", {"task_id": "garbage"}),
        ("task.cancel", {"task_id": "t-999999"}), ("task.retry", {"task_id": "t-999999"}),
        ("task.start", {"task_id": "t-999999"}), ("task.logs", {"task_id": "t-999999"}),
        ("task.hold", {"task_id": "t-999999"}), ("task.release", {"task_id": "t-999999"}),
        ("task.edit", {"task_id": "t-999999", "title": "x"}), ("task.remove", {"task_id": "t-999999"}),
        ("project.clean", {"project": "no-such-name"}),
        ("task.depend", {"task_id": "t-999999", "on": t}),
        ("task.undepend", {"task_id": "t-999999", "on": t}),
        ("project.get", {"project": "p-999999"}), ("project.get", {"project": "no-such-name"}),
        ("project.update", {"project": "no-such-name", "max_concurrency": 2}),
        ("project.delete", {"project": "no-such-name"}),
        ("project.start", {"project": "no-such-name"}),
        ("project.set_autonomous", {"project": "no-such-name", "enabled": True}),
        ("task.add", {"project": "no-such-name", "title": "t", "command": "true"}),
        ("task.list", {"project": "no-such-name"}),
    ]
    with d.client() as c:
        for cmd, args in cases:
            msg = c.request(cmd, args)
            expect_reply_error(msg, "not_found", msg.get("id"), f"{cmd} {json.dumps(args)}")
    still_serving(d)


@test
def request_ids_are_echoed_as_given():
    d = daemon()
    with d.client() as c:
        for rid in ["abc", 0, -3, 1.5, {"a": [1, None]}, [1, "x"], None, True, "x" * 1000]:
            msg = reply_to(c, json.dumps({"id": rid, "cmd": "daemon.status"}).encode())
            expect_eq((msg.get("ok"), msg.get("id")), (True, rid), "ok and id")
        msg = reply_to(c, b'{"cmd": "daemon.status"}')
        assert msg["ok"] and msg.get("id") is None, f"reply to a request without id: {msg}"


@test
def pipelined_requests_are_answered_in_order():
    d = daemon()
    with d.client() as c:
        cmds = ["daemon.status", "project.list", "no.such", "task.get", "executor.list"] * 20
        c.send_raw(b"".join(json.dumps({"id": i, "cmd": cmd}).encode() + b"\n"
                            for i, cmd in enumerate(cmds)))
        replies = [c.read_msg() for _ in cmds]
    expect_eq([r["id"] for r in replies], list(range(len(cmds))), "ids of the replies")
    expect_eq([r["ok"] for r in replies[:5]], [True, True, False, False, True], "ok of the first")


@test
def oversized_line_closes_only_its_connection():
    """A line over 1 MiB from someone who is not an operator is refused and
    its connection closed; the others go on."""
    d = daemon()

    def as_nobody():
        with Client(d.sock, timeout=20) as big:
            try:
                big.send_raw(b'{"cmd": "daemon.status", "id": "' + b"x" * (2 << 20) + b'"}\n')
            except (BrokenPipeError, ConnectionResetError):
                pass
            msg = big.read_msg()
            return [msg, big.read_line()]

    with d.client() as other:
        other.call("daemon.status")
        msg, after = run_as_nobody(as_nobody)
        assert msg is not None, "the connection was closed without a bad_request reply"
        expect_eq((msg.get("ok"), (msg.get("error") or {}).get("code")), (False, "bad_request"),
                  "reply to the oversized line")
        assert "longer than 1048576 bytes" in msg["error"]["message"], msg["error"]["message"]
        assert after is None, "the connection stays open after an oversized line"
        other.call("daemon.status")
    still_serving(d)


@test
def line_under_the_limit_is_accepted():
    d = daemon()
    rid = "y" * 1000000
    with d.client(timeout=20) as c:
        msg = reply_to(c, json.dumps({"id": rid, "cmd": "daemon.status"}).encode())
        assert msg.get("ok") is True and msg.get("id") == rid, "a 1,000,000-byte id was refused"


@test
def an_operators_line_may_be_longer_but_not_without_bound():
    """Operators send whole DAGs in one line (a batch of 100,000 tasks is
    ~5 MB): their limit is 256 MiB, and past it the same refusal."""
    d = daemon()
    rid = "z" * (3 << 20)
    with d.client(timeout=60) as c:
        msg = reply_to(c, json.dumps({"id": rid, "cmd": "daemon.status"}).encode())
        assert msg.get("ok") is True and msg.get("id") == rid, "a 3 MiB line from an operator was refused"
    with d.client(timeout=120) as big:
        chunk = b"x" * (1 << 20)
        try:
            big.send_raw(b'{"cmd": "daemon.status", "id": "')
            for _ in range(257):
                big.send_raw(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        msg = big.read_msg()
        assert msg is not None, "the connection was closed without a bad_request reply"
        expect_eq((msg.get("ok"), (msg.get("error") or {}).get("code")), (False, "bad_request"),
                  "reply to a line over the operators' limit")
        assert "longer than 268435456 bytes" in msg["error"]["message"], msg["error"]["message"]
    still_serving(d)


def rss_mib(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


@test(timeout=120)
def a_long_lines_room_is_given_back_while_its_connection_stays_open():
    """An operator's line of 24 MiB, and a reply as long (it repeats the
    id), leave no room held once they are done: the client's buffers past
    4 MiB are mappings of their own, let go once empty, not kept for the
    connection's life nor left in malloc's heap.  (ASan's quarantine, which
    holds what is freed, is set to none: the test build's heap behaves as
    the daemon's does.)"""
    d = Daemon(env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"))
    d.start()
    with d.client() as c:
        c.call("daemon.status")
        before = rss_mib(d)
    rid = "w" * (24 << 20)
    with d.client(timeout=60) as c:
        msg = reply_to(c, json.dumps({"id": rid, "cmd": "daemon.status"}).encode())
        assert msg.get("ok") is True and msg.get("id") == rid, "a 24 MiB line from an operator was refused"
        del msg
        c.call("daemon.status")         # the same connection, still open
        after = rss_mib(d)
        assert after < before + 12, f"VmRSS {before:.0f} MiB before the long line, {after:.0f} MiB after it"
    still_serving(d)


@test
def half_a_line_and_a_stall_does_not_block_others():
    d = daemon()
    with d.client() as stalled:
        stalled.send_raw(b'{"id": 1, "cmd": "daemon.sta')
        for _ in range(3):
            with d.client(timeout=5) as c:
                c.call("project.list")
        d.project()
        stalled.send_raw(b'tus"}\n')
        expect_eq(stalled.read_msg().get("ok"), True, "the stalled request, finished")


@test(timeout=180)
def client_that_never_reads_its_replies_does_not_block_others():
    d = Daemon().start()
    for _ in range(60):
        d.project()         # makes each project.list reply about 25 KB
    greedy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    greedy.connect(d.sock)
    greedy.setblocking(False)
    line = b'{"cmd": "project.list"}\n' * 100
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            try:
                greedy.send(line)
            except BlockingIOError:
                still_serving(d, 2)     # the daemon stopped reading it; others go on
                time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                break                   # dropped: fine too
    finally:
        greedy.close()
    still_serving(d, 2)


@test
def many_clients_at_once_are_each_answered():
    d = daemon()
    clients = [d.client() for _ in range(40)]
    try:
        for i, c in enumerate(clients):
            c.send({"id": i, "cmd": "daemon.status"})
        for i, c in reversed(list(enumerate(clients))):
            msg = c.read_msg()
            expect_eq((msg.get("id"), msg.get("ok")), (i, True), f"reply to client {i}")
        status = clients[0].call("daemon.status")
        assert status["clients"] >= 40, f"daemon.status counts {status['clients']} clients"
    finally:
        for c in clients:
            c.close()
    still_serving(d)


if __name__ == "__main__":
    main()
