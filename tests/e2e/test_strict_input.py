"""What comes in must be exactly right: strict RFC 8259 JSON, valid UTF-8, no
NUL in any string, integers in range, no duplicate keys; a cwd or command
that cannot run is refused when the task is added; a forged token is
refused; a peer that is not an operator cannot tell unknown task ids from
existing ones."""

import json
import os

from dagdtest import (Client, daemon, expect_eq, expect_error, main, read_env, run_as_nobody,
                      skip, test, wait_for, workdir)


def raw(c, line):
    """Send one raw line; the reply, checked to be valid UTF-8 and strict JSON."""
    c.send_raw(line + b"\n")
    data = c.read_line()
    assert data is not None, f"the daemon closed the connection after {line[:80]!r}"
    text = data.decode("utf-8")     # raises on invalid UTF-8
    return json.loads(text)


def refused(c, line, what):
    msg = raw(c, line)
    assert msg.get("ok") is False and msg["error"]["code"] == "bad_request", \
        f"{what}: expected bad_request, got {msg!r}"
    return msg["error"]["message"]


def task_count(d, p):
    return len(d.tasks(p))


@test
def invalid_utf8_is_refused_everywhere_and_never_echoed():
    d = daemon()
    p = d.project()
    bad = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"a\x80b"]
    with d.client() as c:
        for b in bad:
            for what, line in [
                    ("title", b'{"id":1,"cmd":"task.add","args":{"project":"%s","title":"t%s",'
                              b'"command":"true"}}' % (p["name"].encode(), b)),
                    ("command", b'{"id":1,"cmd":"task.add","args":{"project":"%s","title":"t",'
                                b'"command":["echo","%s"]}}' % (p["name"].encode(), b)),
                    ("env key", b'{"id":1,"cmd":"task.add","args":{"project":"%s","title":"t",'
                                b'"command":"true","env":{"K%s":"v"}}}' % (p["name"].encode(), b)),
                    ("project name", b'{"id":1,"cmd":"project.get","args":{"project":"x%s"}}' % b),
                    ("command name", b'{"id":1,"cmd":"no.such%s"}' % b),
                    ("key", b'{"id":1,"cmd":"daemon.status","args":{"%s":1}}' % b)]:
                message = refused(c, line, f"{what} with {b!r}")
                assert "UTF-8" in message, f"{what}: the refusal does not say why: {message!r}"
    expect_eq(task_count(d, p), 0, "tasks stored")
    # and what is valid, escaped or not, goes through intact
    with d.client() as c:
        msg = raw(c, b'{"id":2,"cmd":"task.add","args":{"project":"%s","title":"caf\\u00e9 '
                     b'\xe2\x9c\x93 \\ud83d\\ude00","command":"true"}}' % p["name"].encode())
        assert msg["ok"], msg
        expect_eq(msg["result"]["task"]["title"], "caf\u00e9 \u2713 \U0001F600", "title")


@test
def output_that_is_not_utf8_is_sent_as_replacement_characters():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "printf 'caf\\303\\251 \\377\\376 ok\\n\\342\\202\\n'")["id"]
    d.wait_task_status(t, "completed")
    with d.client() as c:
        msg = raw(c, json.dumps({"id": 1, "cmd": "task.logs", "args": {"task_id": t}}).encode())
        expect_eq(msg["result"]["lines"], ["caf\u00e9 \ufffd\ufffd ok", "\ufffd\ufffd"],
                  "lines of the log")


@test
def a_nul_in_any_string_is_refused():
    d = daemon()
    p = d.project()
    name = p["name"]
    cases = {
        "title": {"title": "n\u0000/../x", "command": "true"},
        "name": {"title": "t", "name": "n\u0000x", "command": "true"},
        "argv": {"title": "t", "command": ["echo", "a\u0000b"]},
        "env key": {"title": "t", "command": "true", "env": {"K\u0000": "v"}},
        "env value": {"title": "t", "command": "true", "env": {"K": "v\u0000w"}},
        "cwd": {"title": "t", "command": "true", "cwd": "/tmp\u0000/x"},
    }
    with d.client() as c:
        for what, args in cases.items():
            line = json.dumps({"id": 1, "cmd": "task.add", "args": dict(project=name, **args)})
            assert "\\u0000" in line
            message = refused(c, line.encode(), what)
            assert "\\u0000" in message, f"{what}: the refusal does not say why: {message!r}"
        refused(c, b'{"id":1,"cmd":"project.create","args":{"name":"n\\u0000x"}}', "project name")
    expect_eq(task_count(d, p), 0, "tasks stored")


@test
def only_strict_json_is_accepted():
    d = daemon()
    p = d.project()
    n = p["name"].encode()
    lenient = [
        b"{'cmd':'daemon.status'}",
        b'{"cmd":"daemon.status",}',
        b'{"cmd":"daemon.status","args":{"a":[1,2,]}}',
        b'{"cmd":"daemon.status" /* a comment */}',
        b'{"cmd":"daemon.status"} // a comment',
        b'{"cmd":"events.subscribe","args":{"since":01,"follow":false}}',
        b'{"cmd":"daemon.status","args":{"x":NaN}}',
        b'{"cmd":"daemon.status","args":{"x":Infinity}}',
        b'{"cmd":"daemon.status","args":{"x":-Infinity}}',
        b'{"cmd":"daemon.status","args":{"x":1e999}}',
        b'{"cmd":"daemon.status","args":{"x":.5}}',
        b'{"cmd":"daemon.status","args":{"x":1.}}',
        b'{"cmd":"daemon.status","args":{"x":+1}}',
        b'{"cmd":"daemon.status","args":{"x":0x10}}',
        b'{"cmd":"daemon.status","args":{"x":"\\x41"}}',
        b'{"cmd":"daemon.status","args":{"x":"\\ud800"}}',
        b'{"cmd":"daemon.status","args":{"x":"\\udc00\\ud800"}}',
        b'{"cmd":"daemon.status","args":{"x":True}}',
        b'{cmd:"daemon.status"}',
        b'{"cmd":"task.add","args":{"project":"%s","title":"a\ttab","command":"true"}}' % n,
        b'{"cmd":"task.add","args":{"project":"%s","title":"a\x01","command":"true"}}' % n,
        b'{"cmd":"daemon.status","cmd":"project.list"}',
        b'{"cmd":"task.add","args":{"project":"%s","title":"a","title":"b","command":"true"}}' % n,
        b'{"cmd":"task.add","args":{"project":"%s","title":"a","command":"true",'
        b'"env":{"K":"1","K":"2"}}}' % n,
        b'{"cmd":"task.add","args":{"project":"%s","title":"a","command":"true",'
        b'"env":{"K":"1","\\u004b":"2"}}}' % n,
        b'{"cmd":"events.subscribe","args":{"since":18446744073709551616,"follow":false}}',
        b'{"cmd":"events.subscribe","args":{"since":9223372036854775808,"follow":false}}',
        b'{"cmd":"task.get","args":{"task_id":"t-1"},"id":123456789012345678901234567890}',
        b'[' * 100 + b']' * 100,
    ]
    with d.client() as c:
        for line in lenient:
            refused(c, line, repr(line[:80]))
        # the connection goes on, and exact JSON with every form it allows works
        msg = raw(c, b' {"id" : -9223372036854775808 ,\t\r "cmd":"events.subscribe","args":'
                     b'{"since":9223372036854775807,"follow":false,"limit":1E2}} ')
        # (limit 1E2 is a number but not an integer: refused by the argument, not the parser)
        assert msg.get("id") == -9223372036854775808, msg
        msg = raw(c, b'{"id":1.5e3,"cmd":"events.subscribe","args":{"since":9223372036854775807,'
                     b'"follow":false,"types":["\\u0041\\/"]}}')
        assert msg["ok"] and msg["id"] == 1500, msg
        expect_eq(msg["result"]["events"], [], "events after the largest seq")
    expect_eq(task_count(d, p), 0, "tasks stored")


@test
def a_cwd_or_command_that_cannot_run_is_refused_at_add_time():
    d, w = daemon(), workdir()
    p = d.project()
    f = os.path.join(w, "file")
    open(f, "w").close()
    for args, what in [({"cwd": "/nonexistent/dir"}, "does not exist"),
                       ({"cwd": f}, "not a directory"),
                       ({"cwd": ""}, "empty")]:
        e = expect_error(d.add, "bad_request", p, "true", **args)
        assert "cwd" in e.message, f"cwd {what}: the refusal does not name it: {e.message}"
    expect_error(d.add, "bad_request", p, [""])
    expect_error(d.add, "bad_request", p, ["", "x"])
    expect_error(d.call, "bad_request", "task.add_batch", project=p["name"],
                 tasks=[{"name": "a", "title": "a", "command": "true"},
                        {"name": "b", "title": "b", "command": "true", "cwd": f}])
    # all or nothing when the batch creates its project
    expect_error(d.call, "bad_request", "task.add_batch", project="made-by-batch",
                 create_project={}, tasks=[{"name": "a", "title": "a", "command": "true",
                                            "cwd": "/nonexistent"}])
    expect_error(d.call, "not_found", "project.get", project="made-by-batch")
    expect_eq(task_count(d, p), 0, "tasks stored")
    # what can run is taken, and runs there
    t = d.add(p, "pwd > out", cwd=w)
    d.call("task.start", task_id=t["id"])
    d.wait_task_status(t["id"], "completed")
    expect_eq(open(os.path.join(w, "out")).read().strip(), w, "the task's working directory")


def running_task(d, w):
    p = d.project(autonomous=True)
    t = d.add(p, f"env > {w}/env.tmp && mv {w}/env.tmp {w}/env; exec sleep 30")["id"]
    env = wait_for(lambda: read_env(f"{w}/env"), 20, what=f"{t}'s sandbox")
    d.wait_task_status(t, "running")
    return t, env["DAGD_TASK_TOKEN"]


def forgeries(token):
    return {
        "last character flipped": token[:-1] + ("0" if token[-1] != "0" else "1"),
        "first character flipped": ("0" if token[0] != "0" else "1") + token[1:],
        "prefix padded": token[:4] + "0" * (len(token) - 4),
        "prefix padded with its own first": token[:8] + token[0] * (len(token) - 8),
        "one longer": token + "0",
        "one shorter": token[:-1],
        "upper case": token.upper() if token.upper() != token else token + "x",
    }


@test
def a_forged_token_of_the_right_length_is_refused():
    d, w = daemon(), workdir()
    t, token = running_task(d, w)
    for what, forged in forgeries(token).items():
        assert forged != token
        expect_error(d.call, "permission_denied", "task.complete", task_id=t, token=forged,
                     success=True)
    expect_eq(d.task(t)["status"], "running", "status after the forgeries")
    d.call("task.complete", task_id=t, token=token)
    expect_eq(d.task(t)["status"], "completed", "status after the real token")


@test
def a_non_operator_cannot_tell_unknown_task_ids_from_existing_ones():
    if os.geteuid() != 0:
        skip("needs root to run a client as user nobody")
    d, w = daemon(), workdir()
    t, token = running_task(d, w)
    os.chmod(d.sock, 0o666)
    sock = d.sock
    unknown = "t-999999"

    def as_nobody():
        out = []
        with Client(sock) as c:
            for tid in (t, unknown):
                for args in ({}, {"token": token[:-1] + "x"}, {"token": "0" * len(token)},
                             {"token": token}):
                    if tid == t and args.get("token") == token:
                        continue
                    r = c.request("task.complete", dict(task_id=tid, **args))
                    out.append([tid, r["ok"], r.get("error", {}).get("code"),
                                (r.get("error", {}).get("message") or "").replace(tid, "ID")])
        return out

    out = run_as_nobody(as_nobody)
    known = [x[1:] for x in out if x[0] == t]
    unk = [x[1:] for x in out if x[0] == unknown][:len(known)]
    for reply in known + unk:
        expect_eq(reply[:2], [False, "permission_denied"], "a non-operator's reply")
    expect_eq(unk, known, "replies for an unknown and an existing task")
    expect_eq(d.task(t)["status"], "running", "status")


if __name__ == "__main__":
    main()
