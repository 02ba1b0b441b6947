"""A private real dockerd serving the Docker API with mutual TLS on 127.0.0.1, in swarm mode.

The certificates are bakery's own: `python -m bakery certs` makes the cluster
CA and the operator's client certificate, `bakery.certs.ensure_node` the
server certificate for 127.0.0.1. The daemon gets its own data root, exec root,
pid file and sockets under temporary directories, no bridge and no iptables
rules (other engines on this machine keep theirs), and a swarm listening on a
free loopback port (never 2377). Only this daemon is ever stopped, by its own
process.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, _free_port, _wait_socket, unmount_under

CLUSTER = "tlstest"
HOSTNAME = f"{CLUSTER}-seed"  # its own UTS namespace: the swarm sees the name `bakery up` gives the seed


class Unavailable(Exception):
    pass


@dataclass(frozen=True)
class TlsEngine:
    port: int
    state_dir: Path
    cluster: str
    hostname: str  # the engine's node name in the swarm
    socket: str

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"
        return subprocess.run([cli, "-H", f"unix://{self.socket}", *args], capture_output=True, text=True,
                              check=True, timeout=120)


def _certs(state_dir: Path, cfg: Path) -> Path:
    from bakery import certs, state

    cfg.write_text(f"cluster:\n  name: {CLUSTER}\n")
    done = subprocess.run([sys.executable, "-m", "bakery", "certs", "--config", str(cfg), "--state-dir",
                           str(state_dir)], capture_output=True, text=True, cwd=REPO, timeout=120)
    if done.returncode != 0:
        raise Unavailable(f"bakery certs failed: {done.stderr}")
    cdir = state.cluster_dir(CLUSTER, state_dir)
    certs.ensure_node(cdir, "engine", None, ["127.0.0.1"])
    return cdir


@contextmanager
def running(dockerd: str) -> Iterator[TlsEngine]:
    """The engine; its cluster directory has the CA `bakery up` reuses for cluster CLUSTER in state_dir."""
    base = Path(tempfile.mkdtemp(prefix="bakery-tls-engine-", dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix="bakery-tls-engine-", dir="/run"))
    proc = None
    try:
        cdir = _certs(base / "state", base / "cluster.yml")
        port, sock, log = _free_port(), str(run / "docker.sock"), base / "dockerd.log"
        node = cdir / "nodes" / "engine"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [shutil.which("unshare") or "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', HOSTNAME,
                 dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false",
                 "--tlsverify", f"--tlscacert={cdir / 'ca' / 'ca.pem'}", f"--tlscert={node / 'server-cert.pem'}",
                 f"--tlskey={node / 'server-key.pem'}", "-H", f"tcp://127.0.0.1:{port}", "-H", f"unix://{sock}",
                 "--data-root", str(base / "data"), "--exec-root", str(run / "exec"),
                 "--pidfile", str(run / "docker.pid")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_socket(sock, proc, log)
        except RuntimeError as exc:
            raise Unavailable(str(exc)) from exc
        swarm_port = _free_port()
        eng = TlsEngine(port, base / "state", CLUSTER, "", sock)
        eng.docker("swarm", "init", "--advertise-addr", f"127.0.0.1:{swarm_port}",
                   "--listen-addr", f"127.0.0.1:{swarm_port}")
        hostname = eng.docker("info", "--format", "{{.Name}}").stdout.strip()
        yield TlsEngine(port, base / "state", CLUSTER, hostname, sock)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        unmount_under(run)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
