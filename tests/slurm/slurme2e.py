"""slurme2e - what the end-to-end tests of the slurm executor share.

conf() is the cluster's slurm.conf (see slurmtest); a test without a cluster
is skipped, and fails instead when DAGD_REQUIRE_SLURM=1.  daemon() starts a
dagd whose environment points the Slurm tools at that cluster.  @slurm_test
registers a test like dagdtest's @test and, whatever happens, cancels the
jobs of the daemons it started.
"""

import functools
import json
import os
import socket
import subprocess

import dagdtest
import slurmtest

_conf = None
_daemons = []           # the daemons of the current test


def conf():
    """The cluster's slurm.conf; skips (or fails, when required) without one."""
    global _conf
    if _conf is None:
        try:
            _conf = slurmtest.cluster()
        except slurmtest.ClusterUnavailable as e:
            if slurmtest.required():
                raise AssertionError(f"DAGD_REQUIRE_SLURM=1, but there is no Slurm cluster: {e}")
            dagdtest.skip(f"no Slurm cluster: {e}")
    return _conf


def env():
    e = dict(os.environ)
    e["SLURM_CONF"] = conf()
    return e


def tool(*args, check=True, timeout=30):
    """Runs a Slurm tool against the cluster; its stdout."""
    p = subprocess.run(list(args), env=env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"{' '.join(args)} failed: {p.stderr}"
    return p.stdout


def jobs(d):
    """{job name: (id, state)} of the jobs Slurm shows for daemon d."""
    out = tool("squeue", "--noheader", "--states=all", "--format=%i|%j|%T")
    prefix = "dagd-" + instance_hash(d.state_dir) + "-"
    return {name: (jid, state) for jid, name, state in
            (line.split("|") for line in out.splitlines() if line) if name.startswith(prefix)}


def instance_hash(instance):
    """The executor's hash of this host and a daemon's instance (FNV-1a, 48 bits)."""
    h = 0xcbf29ce484222325
    for b in f"{socket.gethostname()}:{instance}".encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return f"{h & 0xffffffffffff:012x}"


def job_of(d, task_id, attempt=1, timeout=30, running=True):
    """(id, state) of the task's job, once Slurm shows it (running, if asked)."""
    name = f"dagd-{instance_hash(d.state_dir)}-{task_id}.{attempt}"

    def find():
        j = jobs(d).get(name)
        return j if j and (not running or j[1] == "RUNNING") else None
    return dagdtest.wait_for(find, timeout=timeout, interval=0.2, what=f"the job of {task_id}")


def cancel_jobs(d):
    for jid, state in jobs(d).values():
        if state in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED"):
            tool("scancel", jid, check=False)


def slurm_test(fn=None, *, timeout=120):
    """@test, then the jobs of the test's daemons cancelled."""
    def register(f):
        @functools.wraps(f)
        def run():
            conf()
            try:
                f()
            finally:
                for d in _daemons:
                    try:
                        cancel_jobs(d)
                    except Exception:
                        pass
                _daemons.clear()
        return dagdtest.test(run, timeout=timeout)
    return register(fn) if fn else register


def daemon(kill_grace=1, args=(), start=True, extra_env=None, **options):
    """A dagd whose slurm executor has these options, its tools reaching the cluster."""
    opts = {"poll_interval": 0.2}
    opts.update(options)
    e = env()
    e.update(extra_env or {})
    d = dagdtest.Daemon(args=["--executor-options", "slurm=" + json.dumps(opts),
                              "--kill-grace", str(kill_grace)] + list(args), env=e)
    _daemons.append(d)
    return d.start() if start else d


def project(d, autonomous=True, max_concurrency=10, **options):
    """A project of d whose tasks run as Slurm jobs."""
    return d.project(executor="slurm", executor_options=options, autonomous=autonomous,
                     max_concurrency=max_concurrency)


def exited(d, p):
    """The SANDBOX_EXITED payloads of the project, by task id."""
    return {e["payload"]["task_id"]: e["payload"]
            for e in dagdtest.select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED")}


def log_text(d, task_id, attempt=None):
    args = {"task_id": task_id}
    if attempt:
        args["attempt"] = attempt
    return "\n".join(d.call("task.logs", **args)["lines"])


def spool(d):
    return os.path.join(d.state_dir, "slurm-spool")


def spool_files(d):
    try:
        return sorted(os.listdir(spool(d)))
    except FileNotFoundError:
        return []


def wait_spool_empty(d, timeout=15):
    dagdtest.wait_for(lambda: not spool_files(d), timeout=timeout, interval=0.1,
                      what=f"an empty spool (left: {spool_files(d)})")


def sleep_until(path):
    return f"while [ ! -e {path} ]; do sleep 0.1; done"


def touch(path):
    with open(path, "w"):
        pass
