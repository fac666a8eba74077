"""A database that cannot be written: the change is refused with
`unavailable`, nothing of it is kept (in memory or on disk), the daemon goes on
serving, and once space is back the same change goes through.  A database
another dagd holds is not opened at all."""

import errno
import os
import sqlite3
import subprocess

from dagdtest import DAGD, Daemon, expect_eq, expect_error, main, skip, test


def big_batch(n=400):
    # ~1 KiB a task: far more than the write-ahead log can hold in pages it owns
    return [{"name": f"t{i}", "title": "x" * 1000, "command": ["true"]} for i in range(n)]


def fill(path):
    """Write to path until the file system is full (unbuffered: nothing is
    left to write, and fail, at its close)."""
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, chunk) > 0:
            pass
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


@test(timeout=120)
def a_full_disk_refuses_the_change_keeps_serving_and_recovers():
    if os.geteuid() != 0:
        skip("mounting a small tmpfs needs root")
    d = Daemon()
    os.makedirs(d.state_dir)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", d.state_dir]).returncode:
        skip("cannot mount a tmpfs here")
    try:
        d.start()
        p = d.project()
        first = d.add(p, ["true"], title="before the disk filled")
        filler = os.path.join(d.state_dir, "filler")
        fill(filler)

        expect_error(d.call, "unavailable", "task.add_batch", project=p["id"], tasks=big_batch())
        # the refusal carries the request's own id, whatever it holds
        odd = 'q"}, \\ caf\u00e9 {"id":1}'
        with d.client(timeout=30) as c:
            c.send({"id": odd, "cmd": "task.add_batch", "args": {"project": p["id"], "tasks": big_batch()}})
            r = c.read_reply()
        expect_eq((r.get("id"), r.get("ok"), r.get("error", {}).get("code")), (odd, False, "unavailable"),
                  "the refusal of a request whose id needs escaping")
        # nothing of the refused batch is there, and the daemon still answers
        expect_eq([t["id"] for t in d.tasks(p)], [first["id"]], "tasks after the refused batch")
        status = d.call("daemon.status")
        expect_eq(status["tasks"], 1, "tasks counted by daemon.status")
        events = d.events(0, project=p["id"])
        expect_eq([e for e in events if e["type"] == "TASK_CREATED"
                   and e["entity_id"] != first["id"]], [], "events of the refused batch")

        assert "cannot commit to the database" in d.stderr(), \
            "the refusal did not come from the store:\n" + d.stderr_tail()

        os.unlink(filler)
        made = d.call("task.add_batch", project=p["id"], tasks=big_batch())["tasks"]
        expect_eq(len(made), 400, "tasks added once space is back")
        ids = {t["id"] for t in made}
        assert first["id"] not in ids, "an id was given twice"
        d.restart()
        expect_eq(len(d.tasks(p)), 401, "tasks after a restart")
        d.stop()
    finally:
        if d.running():
            d.kill()
        subprocess.run(["umount", "-l", d.state_dir])


@test(timeout=60)
def a_second_dagd_on_the_same_state_is_refused_and_the_first_goes_on():
    d = Daemon().start()
    p = d.project(autonomous=False)
    t = d.add(p, "true", title="kept")
    other = os.path.join(d.dir, "s2")
    r = subprocess.run([DAGD, "--socket", other,
                        "--state-dir", d.state_dir, "--plugin-dir", d.plugin_dir],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0, f"a second dagd started on the same state: {r.stderr}"
    assert "held by another process" in r.stderr, r.stderr
    assert not os.path.exists(other), "the second dagd made its socket"
    # no one else writes behind the daemon's back: a writer is refused too
    db = sqlite3.connect(os.path.join(d.state_dir, "dagd.db"), timeout=0)
    try:
        db.execute("UPDATE tasks SET status = 'completed'")
        db.commit()
        raise AssertionError("another process wrote the database")
    except sqlite3.OperationalError as e:
        assert "locked" in str(e), e
    db.close()
    expect_eq(d.task(t["id"])["status"], "ready", "the task, after both")
    t2 = d.add(p, "true", title="still served")
    expect_eq(d.task(t2["id"])["status"], "ready", "a task added after")
    d.stop()


@test(timeout=120)
def the_wal_is_copied_into_the_database_as_it_grows_and_nothing_is_lost():
    """The daemon checkpoints the WAL itself, after the replies of the commit
    that made one due: many commits well past the WAL's 1,000 pages leave a
    WAL of about that size and a database file that holds their pages (in
    WAL mode only a checkpoint writes it), and a kill -9 loses none of it."""
    d = Daemon().start()
    db, wal = (os.path.join(d.state_dir, f) for f in ("dagd.db", "dagd.db-wal"))
    p = d.project(autonomous=False)
    start = os.path.getsize(db)
    batches, each = 40, 400
    for k in range(batches):
        d.call("task.add_batch", project=p["id"],
               tasks=[{"name": f"b{k}.{i}", "title": "x" * 200, "command": ["true"]} for i in range(each)])
    written, kept = os.path.getsize(db) - start, os.path.getsize(wal)
    # 16,000 tasks of 200 bytes and more: over 3 MiB of rows alone
    assert written > 3 << 20, f"the database file grew by {written} bytes only: no checkpoint copied the WAL"
    assert kept < 8 << 20, f"the WAL holds {kept} bytes: it is not reused after its checkpoints"
    d.kill()
    d.start()
    names = {t["name"] for t in d.tasks(p)}
    expect_eq(len(names), batches * each, "tasks after a kill -9")
    assert f"b{batches - 1}.{each - 1}" in names, "the last batch's last task is gone"
    d.stop()


if __name__ == "__main__":
    main()
