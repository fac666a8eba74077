"""dockertest - a Docker engine for the tests of dagd's docker executor (stdlib only).

engine() is the socket of the engine to test against:
  - $DAGD_TEST_DOCKER_SOCK, which .ci/run sets to an engine it started;
  - else, as root with dockerd installed, a private engine started for this
    process (everything under one temporary directory) and stopped at its exit;
  - else there is none: the tests skip, or fail when DAGD_REQUIRE_DOCKER=1.

image() is the test image: busybox (its applets linked in /bin and /usr/bin)
and dagctl-static as /usr/local/bin/dagctl, imported with `docker import`
semantics (POST /images/create?fromSrc=-).  Its tag is a hash of its content,
so it is imported once per content.

Api speaks the Engine API over the Unix socket.

As a script (what .ci/run uses):
  dockertest.py start DIR            start dockerd under DIR; prints its socket
  dockertest.py stop DIR             stop that dockerd, remove DIR
  dockertest.py image SOCK DAGCTL    import the test image; prints its name
"""

import atexit
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

API = "/v1.41"
BUSYBOX = os.environ.get("DAGD_TEST_BUSYBOX", "/bin/busybox")
IMAGE_REPO = "dagd-test"


class EngineUnavailable(Exception):
    """No Docker engine can be had here."""


class ApiError(Exception):
    def __init__(self, status, message):
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("docker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Api:
    """The Engine API at a Unix socket."""

    def __init__(self, sock):
        self.sock = sock

    def raw(self, method, path, body=None, headers=None, timeout=60, version=True):
        """(status, body bytes)."""
        c = _UnixConnection(self.sock, timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = dict(headers or {}, **{"Content-Type": "application/json"})
            c.request(method, (API if version else "") + path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def call(self, method, path, body=None, ok=(200, 201, 204, 304), **kw):
        """The parsed JSON answer (None if empty); ApiError unless the status is ok."""
        status, data = self.raw(method, path, body, **kw)
        if status not in ok:
            try:
                message = json.loads(data).get("message")
            except ValueError:
                message = data[:300]
            raise ApiError(status, message)
        return json.loads(data) if data.strip() else None

    def ping(self, timeout=2):
        try:
            status, data = self.raw("GET", "/_ping", timeout=timeout, version=False)
            return status == 200 and data.startswith(b"OK")
        except OSError:
            return False

    def containers(self, **labels):
        """Every container (running or not) with these labels (name=value,
        or name=None for any value)."""
        want = [k if v is None else f"{k}={v}" for k, v in labels.items()]
        q = urllib.parse.quote(json.dumps({"label": want}))
        return self.call("GET", f"/containers/json?all=1&filters={q}")

    def inspect(self, cid):
        """The container's inspection, or None if there is no such container."""
        try:
            return self.call("GET", f"/containers/{cid}/json")
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def remove(self, cid):
        # 409: someone else is removing it already
        self.call("DELETE", f"/containers/{cid}?force=1&v=1", ok=(204, 404, 409))

    def create(self, body, name=None):
        q = f"?name={name}" if name else ""
        return self.call("POST", f"/containers/create{q}", body)["Id"]

    def start(self, cid):
        self.call("POST", f"/containers/{cid}/start")

    def wait(self, cid, timeout=60):
        return self.call("POST", f"/containers/{cid}/wait", timeout=timeout)["StatusCode"]

    def logs(self, cid):
        """The container's output, stdout and stderr, without the frames."""
        status, data = self.raw("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
        out = b""
        while len(data) >= 8:
            n = int.from_bytes(data[4:8], "big")
            out += data[8:8 + n]
            data = data[8 + n:]
        return out.decode(errors="replace")

    def image_exists(self, name):
        status, _ = self.raw("GET", f"/images/{name}/json")
        return status == 200


# --- an engine of our own --------------------------------------------------


def start_engine(root, timeout=90):
    """Start dockerd with its data, state, pid file and socket under root (as
    the tests want it: vfs storage, no bridge, no iptables, no forwarding);
    returns its socket once it answers /_ping."""
    if os.geteuid() != 0:
        raise EngineUnavailable("starting dockerd needs root")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineUnavailable("dockerd is not installed (Debian: docker.io)")
    os.makedirs(root, exist_ok=True)
    sock = os.path.join(root, "docker.sock")
    cmd = [dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false",
           "--ip-forward=false", "--ip-masq=false",
           "--data-root", os.path.join(root, "data"), "--exec-root", os.path.join(root, "exec"),
           "--pidfile", os.path.join(root, "dockerd.pid"), "-H", "unix://" + sock]
    with open(os.path.join(root, "dockerd.log"), "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    api = Api(sock)
    deadline = time.monotonic() + timeout
    while not api.ping():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with open(os.path.join(root, "dockerd.log"), errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            raise EngineUnavailable(f"dockerd did not answer within {timeout}s:\n{tail}")
        time.sleep(0.2)
    return sock


def _pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes_under(root):
    """The engine's processes (dockerd, containerd, its shims) whose command
    line names root."""
    pids = []
    needle = root.encode()
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if not f.read().startswith(("dockerd", "containerd", "runc", "docker-")):
                        continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def stop_engine(root, timeout=30):
    """Stop the dockerd started under root, whatever it left, and remove root."""
    try:
        with open(os.path.join(root, "dockerd.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pid = None
    if pid and _pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for p in _processes_under(root):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == root or point.startswith(root + "/"):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)
    shutil.rmtree(root, ignore_errors=True)


_engine = None


def engine():
    """The engine's socket (see the module's doc); EngineUnavailable if none."""
    global _engine
    if _engine:
        return _engine
    sock = os.environ.get("DAGD_TEST_DOCKER_SOCK")
    if sock:
        if not Api(sock).ping(timeout=10):
            raise EngineUnavailable(f"DAGD_TEST_DOCKER_SOCK={sock} does not answer /_ping")
        _engine = sock
        return sock
    root = tempfile.mkdtemp(prefix="dagd-docker-")
    atexit.register(stop_engine, root)
    _engine = start_engine(root)
    return _engine


def required():
    return os.environ.get("DAGD_REQUIRE_DOCKER") == "1"


# --- the test image --------------------------------------------------------


def _busybox_applets():
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout
    return sorted(set(line.strip() for line in out.splitlines() if line.strip()))


def image_tar(dagctl_static):
    """The test image's root file system, as a tar (bytes), the same for the
    same content."""
    buf = io.BytesIO()

    def add(name, kind=tarfile.DIRTYPE, data=None, mode=0o755, link=None):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
        if link:
            info.linkname = link
        if data is not None:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            tar.addfile(info)

    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    with open(dagctl_static, "rb") as f:
        dagctl = f.read()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/local", "usr/local/bin",
                  "etc", "root", "home", "run", "var", "data"):
            add(d)
        add("tmp", mode=0o1777)
        add("bin/busybox", tarfile.REGTYPE, busybox)
        add("usr/local/bin/dagctl", tarfile.REGTYPE, dagctl)
        add("etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", mode=0o644)
        add("etc/group", tarfile.REGTYPE, b"root:x:0:\nnogroup:x:65534:\n", mode=0o644)
        for path in _busybox_applets():
            path = path.lstrip("/")
            if path == "bin/busybox":
                continue
            add(path, tarfile.SYMTYPE, link="/bin/busybox")
    return buf.getvalue()


def image(sock, dagctl_static):
    """The test image's name on the engine at sock, imported if missing."""
    if not os.path.exists(dagctl_static):
        raise AssertionError(f"no {dagctl_static}: build it with make")
    data = image_tar(dagctl_static)
    tag = hashlib.sha256(data).hexdigest()[:12]
    name = f"{IMAGE_REPO}:{tag}"
    api = Api(sock)
    if not api.image_exists(name):
        status, body = api.raw("POST", f"/images/create?fromSrc=-&repo={IMAGE_REPO}&tag={tag}",
                               body=data, headers={"Content-Type": "application/x-tar"},
                               timeout=300)
        if status != 200 or b'"error"' in body:
            raise AssertionError(f"cannot import the test image: HTTP {status}: {body[-500:]!r}")
    return name


def main(argv):
    if len(argv) == 3 and argv[1] == "start":
        print(start_engine(os.path.abspath(argv[2])))
    elif len(argv) == 3 and argv[1] == "stop":
        stop_engine(os.path.abspath(argv[2]))
    elif len(argv) == 4 and argv[1] == "image":
        print(image(argv[2], argv[3]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except EngineUnavailable as e:
        sys.stderr.write(f"dockertest: {e}\n")
        sys.exit(1)
