"""dagctl web over plain HTTP (urllib and curl, no browser): the page's
secret and the cookie it becomes, the Origin check, the headers, and the
spec's two routes: PATCH projects/P/autonomous-execution and POST
sandboxes/S/task-complete, which takes the attempt's token."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web"))

import dagdtest  # noqa: E402
from dagdtest import daemon, expect_eq, main, read_env, select_events, test, wait_for, workdir  # noqa: E402
from webtest import Web, stop_webs  # noqa: E402


def web_test(fn):
    """A test with `dagctl web` for the shared daemon, stopped (cleanly) after."""
    def run():
        w = Web(daemon())
        try:
            fn(daemon(), w)
            w.stop()
        finally:
            stop_webs()
    run.__name__ = fn.__name__
    return test(run)


def curl(*args):
    """(HTTP status, parsed body) of curl with these arguments."""
    p = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"curl failed: {p.stderr}"
    body, _, status = p.stdout.rpartition("\n")
    try:
        return int(status), json.loads(body)
    except ValueError:
        return int(status), body


@web_test
def requests_without_the_secret_get_401(d, w):
    for path in ("/", "/app.js", "/api/v1/projects", "/api/v1/events"):
        status, _, _ = w.http("GET", path, cookie=False)
        expect_eq(status, 401, f"GET {path} without the secret")
        status, _, _ = w.http("GET", path, cookie=False, headers={"Cookie": "dagctl_web=" + "0" * 64})
        expect_eq(status, 401, f"GET {path} with a wrong secret")
    status, _, _ = w.http("POST", f"/api/v1/projects/x/start", body={}, cookie=False)
    expect_eq(status, 401, "POST without the secret")
    status, _, _ = w.http("GET", "/?token=" + "1" * 64, cookie=False)
    expect_eq(status, 401, "a wrong secret in the URL")

    # the secret of the URL becomes a cookie the page's script cannot read
    status, h, _ = w.http("GET", "/?token=" + w.token, cookie=False)
    expect_eq(status, 303, "the URL with the secret")
    cookie = h["Set-Cookie"]
    assert cookie.startswith(f"dagctl_web={w.token};"), cookie
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie, f"{attr} missing from {cookie!r}"
    expect_eq(h["Location"], "/", "where it sends the browser")

    status, h, body = w.http("GET", "/")
    expect_eq(status, 200, "the page with the cookie")
    assert "<title>dagd board</title>" in body
    csp = h["Content-Security-Policy"]
    for part in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
        assert part in csp, f"{part} missing from the CSP {csp!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    expect_eq(h["X-Content-Type-Options"], "nosniff", "nosniff")
    status, h, _ = w.http("GET", "/api/v1/projects")
    expect_eq(status, 200, "the API with the cookie")
    assert "Content-Security-Policy" in h


@web_test
def a_post_from_another_origin_gets_403_and_changes_nothing(d, w):
    p = d.project()
    t = d.add(p, ["true"])
    for method, path, body in (("POST", f"/api/v1/projects/{p['id']}/start", None),
                               ("POST", f"/api/v1/projects/{p['id']}/autonomous", {"enabled": True}),
                               ("PATCH", f"/api/v1/projects/{p['id']}/autonomous-execution", {"enabled": True}),
                               ("POST", f"/api/v1/tasks/{t['id']}/cancel", None)):
        status, _, r = w.http(method, path, body=body, headers={"Origin": "http://evil.example"})
        expect_eq(status, 403, f"{method} {path} from another origin")
        expect_eq(r["error"]["code"], "forbidden", "the error")
        status, _, _ = w.http(method, path, body=body, headers={"Sec-Fetch-Site": "cross-site"})
        expect_eq(status, 403, f"{method} {path} from another site")
    expect_eq(d.task(t["id"])["status"], "ready", "the task")
    expect_eq(d.task(t["id"])["released"], False, "released")
    expect_eq(d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"], False,
              "autonomous")

    # from the page's own origin it works
    status, _, r = w.http("POST", f"/api/v1/projects/{p['id']}/start", headers={"Origin": w.origin})
    expect_eq(status, 200, "POST from the page's origin")
    expect_eq(r["released"], [t["id"]], "released")
    d.wait_done(p)


@web_test
def an_approval_is_decided_from_the_page_and_a_rejection_needs_a_message(d, w):
    p = d.project(autonomous=True)
    gates = [d.call("task.add", project=p["id"], title=f"g{i}", kind="approval")["task"]["id"] for i in range(2)]
    o = {"Origin": w.origin}
    status, _, r = w.http("POST", f"/api/v1/tasks/{gates[0]}/approve", body={"result": {"ok": True}}, headers=o)
    expect_eq((status, r["task"]["status"], r["task"]["result"]), (200, "completed", {"ok": True}), "approve")
    status, _, r = w.http("POST", f"/api/v1/tasks/{gates[1]}/reject", body={}, headers=o)
    expect_eq(status, 400, "a rejection without a message")
    expect_eq(d.task(gates[1])["status"], "awaiting_approval", "the gate after it")
    status, _, r = w.http("POST", f"/api/v1/tasks/{gates[1]}/reject", body={"message": "no"}, headers=o)
    expect_eq((status, r["task"]["status"]), (200, "failed"), "reject")
    status, _, r = w.http("POST", f"/api/v1/tasks/{gates[1]}/approve", headers=o)
    expect_eq(status, 409, "a second decision")


@web_test
def the_autonomous_execution_route_answers_the_project(d, w):
    p = d.project()
    seq = d.call("daemon.status")["last_event_seq"]
    status, r = curl("-X", "PATCH", "-b", f"dagctl_web={w.token}", "-H", "Content-Type: application/json",
                     "-d", '{"enabled": true}', f"{w.origin}/api/v1/projects/{p['id']}/autonomous-execution")
    expect_eq(status, 200, "PATCH autonomous-execution")
    expect_eq(r["id"], p["id"], "the project's id")
    expect_eq(r["autonomous_execution_enabled"], True, "the project's mode")
    evs = select_events(d.events(since=seq, project=p["id"]), "AUTONOMOUS_MODE_CHANGED")
    expect_eq([e["payload"]["enabled"] for e in evs], [True], "AUTONOMOUS_MODE_CHANGED")

    status, r = curl("-X", "PATCH", "-b", f"dagctl_web={w.token}", "-d", '{"enabled": false}',
                     f"{w.origin}/api/v1/projects/{p['name']}/autonomous-execution")
    expect_eq((status, r["autonomous_execution_enabled"]), (200, False), "by name, off")
    status, r = curl("-X", "PATCH", "-b", f"dagctl_web={w.token}", "-d", '{"enabled": "yes"}',
                     f"{w.origin}/api/v1/projects/{p['id']}/autonomous-execution")
    expect_eq((status, r["error"]["code"]), (400, "bad_request"), "a bad body")
    status, r = curl("-X", "PATCH", "-b", f"dagctl_web={w.token}", "-d", '{"enabled": true}',
                     f"{w.origin}/api/v1/projects/nosuch/autonomous-execution")
    expect_eq((status, r["error"]["code"]), (404, "not_found"), "no such project")
    status, r = curl("-X", "PATCH", "-d", '{"enabled": true}',
                     f"{w.origin}/api/v1/projects/{p['id']}/autonomous-execution")
    expect_eq(status, 401, "without the secret")


@web_test
def a_sandbox_completes_its_task_over_http_and_unblocks_the_dependents(d, w):
    wd = workdir()
    p = d.project()
    url = f"{w.origin}/api/v1/sandboxes/$DAGD_SANDBOX_ID/task-complete"
    # the sandbox reports with curl, then lingers: the report, not its exit, completes it
    report = (f"env > {wd}/a.env; curl -s -o {wd}/a.out -w '%{{http_code}}' -X POST "
              f"-H \"Authorization: Bearer $DAGD_TASK_TOKEN\" -H 'Content-Type: application/json' "
              f"-d '{{\"task_id\": \"'$DAGD_TASK_ID'\", \"success\": true, \"result\": {{\"via\": \"http\"}}}}' "
              f"\"{url}\" > {wd}/a.status; sleep 30")
    a = d.add(p, report, title="reports over HTTP")
    b = d.add(p, ["true"], title="after a", depends_on=[a["id"]])
    c = d.add(p, ["true"], title="also after a", depends_on=[a["id"]])
    other = d.add(p, f"env > {wd}/x.env; sleep 300", title="another task")
    seq = d.call("daemon.status")["last_event_seq"]
    d.call("project.start", project=p["id"])

    wait_for(lambda: dagdtest.read_file(f"{wd}/a.status"), timeout=30, what="the sandbox's report")
    expect_eq(dagdtest.read_file(f"{wd}/a.status"), "200", "the HTTP status the sandbox got")
    r = json.loads(dagdtest.read_file(f"{wd}/a.out"))
    expect_eq(r["status"], "accepted", "status")
    expect_eq(r["task_id"], a["id"], "task_id")
    expect_eq(r["new_status"], "completed", "new_status")
    expect_eq(sorted(r["unblocked_tasks"]), sorted([b["id"], c["id"]]), "unblocked_tasks")
    ta = d.task(a["id"])
    expect_eq((ta["status"], ta["result"]), ("completed", {"via": "http"}), "task a")
    unblocked = select_events(d.events(since=seq, project=p["id"]), "TASKS_UNBLOCKED", completed_task_id=a["id"])
    expect_eq(len(unblocked), 1, "TASKS_UNBLOCKED events")
    # unblocked: ready (the project is manual), and they run once released
    expect_eq([d.task(x["id"])["status"] for x in (b, c)], ["ready", "ready"], "the dependents")
    d.call("project.start", project=p["id"])
    d.wait_tasks(p, until=lambda ts: all(t["status"] == "completed" for t in ts if t["id"] in (b["id"], c["id"])))

    env = wait_for(lambda: read_env(f"{wd}/a.env"), what="a's environment")
    xenv = wait_for(lambda: read_env(f"{wd}/x.env"), what="the other task's environment")
    sb, token = env["DAGD_SANDBOX_ID"], env["DAGD_TASK_TOKEN"]
    route = f"{w.origin}/api/v1/sandboxes/{sb}/task-complete"
    body = json.dumps({"task_id": a["id"], "success": True, "result": {"via": "http"}})

    # the same report again: the same answer, nothing changes
    status, again = curl("-X", "POST", "-H", f"Authorization: Bearer {token}", "-d", body, route)
    expect_eq((status, again), (200, r), "the same report again")
    expect_eq(len(select_events(d.events(since=seq, project=p["id"]), "TASK_COMPLETED", task_id=a["id"])), 1,
              "TASK_COMPLETED events")
    # a different one is a conflict
    status, e = curl("-X", "POST", "-H", f"Authorization: Bearer {token}",
                     "-d", json.dumps({"task_id": a["id"], "success": False, "error_message": "no"}), route)
    expect_eq((status, e["error"]["code"]), (409, "conflict"), "a different report")
    # no token, another task's token, a stale attempt's sandbox id
    status, e = curl("-X", "POST", "-d", body, route)
    expect_eq((status, e["error"]["code"]), (401, "unauthorized"), "no token")
    status, e = curl("-X", "POST", "-H", f"Authorization: Bearer {xenv['DAGD_TASK_TOKEN']}", "-d", body, route)
    expect_eq((status, e["error"]["code"]), (403, "permission_denied"), "another task's token")
    stale = f"{a['id']}.{ta['attempt'] + 1}"
    status, e = curl("-X", "POST", "-H", f"Authorization: Bearer {token}", "-d", body,
                     f"{w.origin}/api/v1/sandboxes/{stale}/task-complete")
    expect_eq((status, e["error"]["code"]), (403, "permission_denied"), "another attempt's sandbox id")
    status, e = curl("-X", "POST", "-H", f"Authorization: Bearer {token}", "-d", body,
                     f"{w.origin}/api/v1/sandboxes/{xenv['DAGD_SANDBOX_ID']}/task-complete")
    expect_eq((status, e["error"]["code"]), (400, "bad_request"), "another task's sandbox id")
    # the other task with a's token, through its own sandbox id
    status, e = curl("-X", "POST", "-H", f"Authorization: Bearer {token}",
                     "-d", json.dumps({"task_id": other["id"]}),
                     f"{w.origin}/api/v1/sandboxes/{xenv['DAGD_SANDBOX_ID']}/task-complete")
    expect_eq((status, e["error"]["code"]), (403, "permission_denied"), "a's token for the other task")
    expect_eq(d.task(other["id"])["status"], "running", "the other task")
    d.call("task.cancel", task_id=other["id"])


@web_test
def a_stale_attempts_sandbox_cannot_complete_the_retried_task(d, w):
    wd = workdir()
    p = d.project()
    # the first attempt fails, the second waits for its report
    t = d.add(p, f"env > {wd}/env.$DAGD_ATTEMPT; [ $DAGD_ATTEMPT = 1 ] && exit 1; sleep 60",
              max_retries=1, retry_backoff=0.1)
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    old = wait_for(lambda: read_env(f"{wd}/env.1"), what="the first attempt's environment")
    new = wait_for(lambda: read_env(f"{wd}/env.2"), timeout=30, what="the second attempt's environment")
    d.wait_task_status(t["id"], "running")
    body = json.dumps({"task_id": t["id"], "success": True})

    def report(sandbox, token):
        return curl("-X", "POST", "-H", f"Authorization: Bearer {token}", "-d", body,
                    f"{w.origin}/api/v1/sandboxes/{sandbox}/task-complete")

    for sandbox, token, what in ((old["DAGD_SANDBOX_ID"], old["DAGD_TASK_TOKEN"], "the old sandbox, its token"),
                                 (old["DAGD_SANDBOX_ID"], new["DAGD_TASK_TOKEN"], "the old sandbox, the new token"),
                                 (new["DAGD_SANDBOX_ID"], old["DAGD_TASK_TOKEN"], "the new sandbox, the old token")):
        status, e = report(sandbox, token)
        expect_eq((status, e["error"]["code"]), (403, "permission_denied"), what)
    expect_eq(d.task(t["id"])["status"], "running", "the task after the refusals")
    status, r = report(new["DAGD_SANDBOX_ID"], new["DAGD_TASK_TOKEN"])
    expect_eq((status, r["new_status"]), (200, "completed"), "the current attempt's report")


@web_test
def no_task_token_ever_reaches_the_page(d, w):
    wd = workdir()
    p = d.project()
    t = d.add(p, f"env > {wd}/env; sleep 30")
    d.call("project.start", project=p["id"])
    env = wait_for(lambda: read_env(f"{wd}/env"), what="the sandbox's environment")
    token = env["DAGD_TASK_TOKEN"]
    seen = []
    for path in ("/api/v1/projects", f"/api/v1/projects/{p['id']}/board", f"/api/v1/projects/{p['id']}/tasks",
                 f"/api/v1/tasks/{t['id']}", f"/api/v1/tasks/{t['id']}/logs", "/api/v1/status"):
        status, _, body = w.http("GET", path)
        expect_eq(status, 200, path)
        seen.append(json.dumps(body))
    # the event stream, from the start
    p2 = subprocess.run(["curl", "-s", "-N", "-m", "2", "-b", f"dagctl_web={w.token}",
                         f"{w.origin}/api/v1/events?since=0"], capture_output=True, text=True)
    assert "TASK_STATUS_CHANGED" in p2.stdout and "SANDBOX_SPAWNED" in p2.stdout, p2.stdout[-500:]
    seen.append(p2.stdout)
    for text in seen:
        assert token not in text, "the task's token reached the page"
    d.call("task.cancel", task_id=t["id"])


@test
def it_serves_on_a_unix_socket_only_its_owner_may_use():
    d = daemon()
    path = os.path.join(workdir(), "web.sock")
    w = Web(d, listen=f"unix:{path}")
    try:
        expect_eq(oct(os.stat(path).st_mode & 0o777), "0o600", "the socket's mode")
        assert w.url.startswith("http://localhost/?token="), w.url
        status, r = curl("--unix-socket", path, "-b", f"dagctl_web={w.token}", "http://localhost/api/v1/projects")
        expect_eq(status, 200, "with the secret")
        assert isinstance(r["projects"], list), r
        status, _ = curl("--unix-socket", path, "http://localhost/api/v1/projects")
        expect_eq(status, 401, "without it")
        w.stop()
        assert not os.path.exists(path), "the socket is left behind"
    finally:
        stop_webs()


if __name__ == "__main__":
    main()
