"""slurmtest - a throw-away Slurm cluster for the tests of dagd's slurm executor
(stdlib only).

A cluster is one host: munged, slurmctld and slurmd started as root, all on
127.0.0.1, with every file they keep (munge key and socket, slurm.conf, state,
spool, logs, pid files) under one directory.  slurm.conf names the node
`localhost` (NodeAddr=127.0.0.1) with the CPUs and memory `slurmd -C` finds,
schedules a job as soon as it is submitted, lets up to four jobs share a
core (the tests run side by side on small machines), and forgets a finished job's
record after MIN_JOB_AGE seconds.  The clients find it through SLURM_CONF.

cluster() is the cluster to test against:
  - $DAGD_TEST_SLURM_CONF, the slurm.conf of a cluster .ci/run started;
  - else, as root with the Slurm daemons installed, a private cluster started
    for this process and stopped at its exit;
  - else there is none: the tests skip, or fail when DAGD_REQUIRE_SLURM=1.

As a script (what .ci/run uses):
  slurmtest.py start DIR      start a cluster under DIR; prints its slurm.conf
  slurmtest.py stop DIR       stop that cluster, remove DIR
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MIN_JOB_AGE = 5
PORTS = (16817, 16818)         # slurmctld, slurmd: not the defaults of a real cluster
DAEMONS = ("slurmd", "slurmctld", "munged")


class ClusterUnavailable(Exception):
    """No Slurm cluster can be had here."""


def required():
    return os.environ.get("DAGD_REQUIRE_SLURM") == "1"


def _which(name):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def _node_line():
    """CPUs and RealMemory as slurmd -C finds them."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    cpus = re.search(r"\bCPUs=(\d+)", out)
    mem = re.search(r"\bRealMemory=(\d+)", out)
    if not cpus or not mem:
        raise ClusterUnavailable(f"slurmd -C said nothing usable: {out!r}")
    return f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus.group(1)} RealMemory={mem.group(1)} State=UNKNOWN"


def _write_conf(d, ports):
    conf = os.path.join(d, "slurm.conf")
    lines = [
        "ClusterName=dagdtest",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={d}/munge/munge.sock",
        f"StateSaveLocation={d}/ctld",
        f"SlurmdSpoolDir={d}/slurmd",
        f"SlurmctldPidFile={d}/slurmctld.pid",
        f"SlurmdPidFile={d}/slurmd.pid",
        f"SlurmctldLogFile={d}/slurmctld.log",
        f"SlurmdLogFile={d}/slurmd.log",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        # schedule at submit and at each end, not after seconds
        "SchedulerParameters=defer_batch=0,sched_min_interval=0,batch_sched_delay=0,sbatch_wait_nodes=0,"
        "sched_interval=1,bf_interval=1",
        "MessageTimeout=10",
        "ReturnToService=2",
        "KillWait=2",
        f"MinJobAge={MIN_JOB_AGE}",
        "InactiveLimit=0",
        "SlurmdTimeout=300",
        "MaxJobCount=100000",
        _node_line(),
        # up to 4 jobs share a core: tests run side by side on a small machine
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4",
    ]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf


def _env(conf):
    env = dict(os.environ)
    env["SLURM_CONF"] = conf
    return env


def _pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _stop_pid(pid, timeout=15):
    if not pid or not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _pidfile(d, name):
    return os.path.join(d, "munge/munged.pid" if name == "munged" else f"{name}.pid")


def sinfo_state(conf):
    p = subprocess.run(["sinfo", "--noheader", "-o", "%t"], env=_env(conf), capture_output=True,
                       text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


def _wait_idle(conf, timeout=60):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = sinfo_state(conf)
        if state == "idle":
            return
        time.sleep(0.2)
    raise ClusterUnavailable(f"the node is not idle after {timeout}s (sinfo: {state!r})")


def start_slurmctld(d):
    """(Re)starts slurmctld on the state it saved."""
    conf = os.path.join(d, "slurm.conf")
    subprocess.run([_which("slurmctld"), "-f", conf], env=_env(conf), check=True, timeout=60,
                   capture_output=True)
    deadline = time.monotonic() + 30
    while sinfo_state(conf) is None:
        if time.monotonic() > deadline:
            raise ClusterUnavailable("slurmctld does not answer:\n" + log_tail(d, "slurmctld"))
        time.sleep(0.1)


def stop_slurmctld(d):
    _stop_pid(_pid(_pidfile(d, "slurmctld")))


def log_tail(d, name, n=30):
    try:
        with open(os.path.join(d, f"{name}.log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def start(d, ports=PORTS):
    """Starts a cluster under d (made if need be), its daemons on ports
    (slurmctld's, slurmd's); returns its slurm.conf."""
    for name in ("slurmctld", "slurmd", "munged", "sinfo", "sbatch"):
        if not _which(name):
            raise ClusterUnavailable(f"{name} is not installed")
    if os.geteuid() != 0:
        raise ClusterUnavailable("the Slurm daemons of the tests run as root")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    for sub in ("munge", "ctld", "slurmd"):
        os.makedirs(os.path.join(d, sub), mode=0o700, exist_ok=True)
    key = os.path.join(d, "munge/munge.key")
    if not os.path.exists(key):
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
    conf = _write_conf(d, ports)
    try:
        subprocess.run([_which("munged"), "--force", f"--key-file={key}",
                        f"--socket={d}/munge/munge.sock", f"--pid-file={d}/munge/munged.pid",
                        f"--log-file={d}/munge/munged.log", f"--seed-file={d}/munge/munged.seed"],
                       check=True, timeout=30, capture_output=True)
        start_slurmctld(d)
        subprocess.run([_which("slurmd"), "-f", conf, "-N", "localhost"], env=_env(conf), check=True,
                       timeout=60, capture_output=True)
        _wait_idle(conf)
    except (subprocess.SubprocessError, OSError, ClusterUnavailable) as e:
        detail = "\n".join(x for x in (log_tail(d, "slurmctld"), log_tail(d, "slurmd")) if x)
        stop(d, remove=False)
        err = getattr(e, "stderr", None)
        raise ClusterUnavailable(f"cannot start the cluster: {e} {err or ''}\n{detail}")
    return conf


def _kill_steps(conf):
    """Kills what slurmd of this cluster left running (slurmstepd outlives
    slurmd, and jobs whose controller is gone are never cancelled): every
    slurmstepd whose environment names conf, and their descendants."""
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        procs[int(pid)] = (comm, ppid, f"SLURM_CONF={conf}".encode() in env)
    doomed = {pid for pid, (comm, _, mine) in procs.items() if comm == "slurmstepd" and mine}
    grew = True
    while grew:
        more = {pid for pid, (_, ppid, _) in procs.items() if ppid in doomed} - doomed
        doomed |= more
        grew = bool(more)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def stop(d, remove=True):
    """Stops what start(d) started, whatever state it is in; removes d."""
    conf = os.path.join(d, "slurm.conf")
    if os.path.exists(conf) and _pid(_pidfile(d, "slurmctld")):
        # what runs is cancelled, so that slurmd leaves no job processes behind
        subprocess.run(["scancel", "--full", "--user=root"], env=_env(conf), capture_output=True, timeout=30)
    for name in DAEMONS:
        _stop_pid(_pid(_pidfile(d, name)))
    _kill_steps(conf)
    if remove:
        shutil.rmtree(d, ignore_errors=True)


_private = None
_conf = None


def cluster():
    """The slurm.conf of the cluster to test against (see above)."""
    global _private, _conf
    if _conf:
        return _conf
    conf = os.environ.get("DAGD_TEST_SLURM_CONF")
    if conf:
        if not os.path.exists(conf):
            raise ClusterUnavailable(f"DAGD_TEST_SLURM_CONF={conf} does not exist")
        _conf = conf
        return conf
    _private = tempfile.mkdtemp(prefix="dagd-slurm-")
    atexit.register(stop, _private)
    _conf = start(_private, free_ports())
    return _conf


def free_ports():
    """Two TCP ports of 127.0.0.1 nothing listens on now."""
    socks = [socket.socket() for _ in range(2)]
    try:
        for so in socks:
            so.bind(("127.0.0.1", 0))
        return tuple(so.getsockname()[1] for so in socks)
    finally:
        for so in socks:
            so.close()


class Private:
    """A cluster of one test's own (`with Private() as conf:`), on other
    ports than the shared one: for what would disturb the tests beside it."""

    def __init__(self, ports=None):
        self.ports = ports or free_ports()
        self.dir = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="dagd-slurm-own-")
        try:
            return start(self.dir, self.ports)
        except BaseException:
            stop(self.dir)
            raise

    def __exit__(self, *exc):
        stop(self.dir)


def main(argv):
    if len(argv) == 3 and argv[1] == "start":
        try:
            print(start(os.path.abspath(argv[2])))
        except ClusterUnavailable as e:
            print(f"slurmtest: {e}", file=sys.stderr)
            return 1
        return 0
    if len(argv) == 3 and argv[1] == "stop":
        stop(os.path.abspath(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
