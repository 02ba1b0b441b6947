"""Private real dockerds for the tests (docs/ENGINES.md): socket, data root and pid file of their own."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit import require_or_skip


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


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s: one process of our own, never another."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dockerd:
    """A dockerd of our own: private socket, data root, exec root and pid file."""

    socket: str
    base: Path  # data root and log live here
    run: Path  # socket, exec root and pid file
    proc: subprocess.Popen[bytes]
    gateway: str  # the Linux bridge of its docker_gwbridge network (see init_swarm)


_GATEWAYS = itertools.count()


def find_dockerd(switch: str = "BAKERY_REQUIRE_ENGINE") -> str:
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
    if dockerd is None:
        require_or_skip(switch, "no dockerd here (apt-get install docker.io)")
    if os.geteuid() != 0:
        require_or_skip(switch, "starting a private dockerd needs root")
    assert dockerd is not None
    return dockerd


@contextmanager
def private_dockerd(*flags: str, prefix: str = "bakery-engine-", wrapper: Sequence[str] = (),
                    data_root: Path | None = None) -> Iterator[Dockerd]:
    """Start a dockerd with `flags`, wait for its socket; stop it (by its own process) and remove
    only what it made. `wrapper` prefixes the command (e.g. unshare for a hostname of its own)."""
    dockerd = find_dockerd()
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix=prefix, dir="/run" if os.access("/run", os.W_OK) else None))
    sock, log = str(run / "docker.sock"), base / "dockerd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*wrapper, dockerd, "--storage-driver=vfs", *flags, "-H", f"unix://{sock}",
             "--data-root", str(data_root or base / "data"), "--exec-root", str(run / "exec"),
             "--pidfile", str(run / "docker.pid")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    gateway = f"bkgw{os.getpid() % 100000}n{next(_GATEWAYS)}"
    try:
        _wait_socket(sock, proc, log)
        yield Dockerd(sock, base, run, proc, gateway)
    finally:
        stop_process(proc)
        unmount_under(run)
        subprocess.run(["ip", "link", "del", gateway], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


@contextmanager
def own_bridge() -> Iterator[str]:
    """A bridge for one engine, never docker0: a dockerd started with --bridge=none (other
    tests start such engines) deletes docker0 of every engine in the namespace."""
    bridge, octet = f"bkte{os.getpid() % 100000}", os.getpid() % 250 + 1
    for cmd in (["link", "add", bridge, "type", "bridge"], ["addr", "add", f"10.239.{octet}.1/24", "dev", bridge],
                ["link", "set", bridge, "up"]):
        subprocess.run(["ip", *cmd], check=True, capture_output=True)
    try:
        yield bridge
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _free_subnet() -> str:
    """A /24 in 10.238.0.0/16 that no route of this namespace covers yet."""
    import random

    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    start = random.randrange(250)
    for i in range(250):
        subnet = f"10.238.{(start + i) % 250 + 1}.0/24"
        if subnet not in routes:
            return subnet
    raise RuntimeError("no free /24 in 10.238.0.0/16 for a gateway bridge")


def init_swarm(docker: Callable[..., object], pool: str = "10.240.0.0/16", gateway: str | None = None) -> None:
    """Free ports, not 2377 and 4789, and a private address pool: other engines on this machine
    (a developer's, another test's) may hold them, and overlays would collide.

    `gateway` names the Linux bridge of this engine's docker_gwbridge network (created before
    `swarm init`, as Docker documents for customising it). Otherwise every swarm engine in the
    namespace shares one bridge called docker_gwbridge, and when another engine creates its
    gateway network it re-addresses that bridge: this engine's host-mode published ports then
    stop answering while its tasks stay healthy (seen here; the cause of a flaky "never answered")."""
    if gateway:
        docker("network", "create", "--driver", "bridge", "--subnet", _free_subnet(),
               "--opt", f"com.docker.network.bridge.name={gateway}",
               "--opt", "com.docker.network.bridge.enable_icc=false",
               "--opt", "com.docker.network.bridge.enable_ip_masquerade=true", "docker_gwbridge")
    port = free_port()
    docker("swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}",
           "--data-path-port", str(free_udp_port()), "--default-addr-pool", pool)


_free_port = free_port
