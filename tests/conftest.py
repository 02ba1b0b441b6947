"""Shared fixtures: a private real dockerd in swarm mode, and tool switches.

The engine recipe is ../shared/ENGINE.md §1: a private socket, data root and
pid file, vfs storage, swarm init on 127.0.0.1. Only the dockerd started here
is ever stopped (by its own pid file). Set BAKERY_TEST_DOCKER_HOST to use an
engine you already run instead.

Without an engine the engine tests skip; with BAKERY_REQUIRE_ENGINE=1 (CI)
they fail instead. BAKERY_REQUIRE_VALIDATORS=1 does the same for cloud-init
and systemd-analyze.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def require_or_skip(switch: str, reason: str) -> None:
    if os.environ.get(switch) == "1":
        pytest.fail(f"{reason} ({switch}=1 makes this a failure)")
    pytest.skip(reason)


def need_tool(name: str, switch: str = "BAKERY_REQUIRE_VALIDATORS") -> str:
    path = shutil.which(name)
    if path is None:
        require_or_skip(switch, f"{name} is not installed")
    assert path is not None
    return path


@dataclass
class Engine:
    host: str  # unix:///... usable as DOCKER_HOST
    socket: str

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cli = shutil.which("docker", path="/usr/local/bin") or shutil.which("docker") or "docker"
        res = subprocess.run([cli, "-H", self.host, *args], capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def client(self):  # type: ignore[no-untyped-def]
        import docker

        return docker.DockerClient(base_url=self.host, timeout=120)


def _wait_socket(sock: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    import http.client
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            conn = http.client.HTTPConnection("localhost")
            conn.sock = s
            conn.request("GET", "/_ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"dockerd did not answer on {sock}:\n{log.read_text()[-3000:]}")


def unmount_under(root: Path) -> None:
    """dockerd leaves the swarm's ingress namespace (nsfs) mounted in its exec root; only ours is touched."""
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", point], capture_output=True, check=False, timeout=30)


def free_udp_port() -> int:
    """A free UDP port in swarm's allowed data path range (1024-49151), below the ephemeral ones."""
    import random
    import socket

    start = random.randrange(20000, 30000)
    for port in range(start, start + 200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", port))  # noqa: S104 (only probing; VXLAN binds all addresses)
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port for the VXLAN data path")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    given = os.environ.get("BAKERY_TEST_DOCKER_HOST")
    if given:
        yield Engine(given, given.removeprefix("unix://"))
        return
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
    if dockerd is None:
        require_or_skip("BAKERY_REQUIRE_ENGINE", "no dockerd here (apt-get install docker.io)")
    if os.geteuid() != 0:
        require_or_skip("BAKERY_REQUIRE_ENGINE", "starting a private dockerd needs root")
    assert dockerd is not None
    base = Path(tempfile.mkdtemp(prefix="bakery-engine-", dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix="bakery-engine-", dir="/run" if os.access("/run", os.W_OK) else None))
    sock = str(run / "docker.sock")
    log = base / "dockerd.log"
    # Our own bridge, never docker0: a dockerd started with --bridge=none (other tests
    # start such engines) deletes docker0 of every engine in the namespace.
    bridge, octet = f"bkte{os.getpid() % 100000}", os.getpid() % 250 + 1
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "add", f"10.239.{octet}.1/24", "dev", bridge], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True, capture_output=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                dockerd,
                "--storage-driver=vfs",
                "--bridge", bridge,
                "-H", f"unix://{sock}",
                "--data-root", str(base / "data"),
                "--exec-root", str(run / "exec"),
                "--pidfile", str(run / "docker.pid"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_socket(sock, proc, log)
        eng = Engine(f"unix://{sock}", sock)
        # Free ports, not 2377 and 4789, and a private address pool: other engines on this
        # machine (a developer's, another test's) may hold them, and overlays would collide.
        port = _free_port()
        eng.docker("swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}",
                   "--data-path-port", str(free_udp_port()), "--default-addr-pool", "10.240.0.0/16")
        yield eng
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        unmount_under(run)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`local/busybox:1`, imported from Debian's busybox-static (no registry here)."""
    ref = "local/busybox:1"
    if engine.docker("image", "inspect", ref, check=False).returncode == 0:
        return ref
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        require_or_skip("BAKERY_REQUIRE_ENGINE", "busybox is not installed (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("busybox-root")
    (root / "bin").mkdir()
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text("hello from bakery\n")
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "httpd", "sleep", "echo", "cat", "wget", "ls", "true", "false", "env", "nc"):
        (root / "bin" / applet).symlink_to("busybox")
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    subprocess.run([cli, "-H", engine.host, "import", "-", ref], input=tar, check=True, capture_output=True)
    return ref
