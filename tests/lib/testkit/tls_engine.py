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
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.engine import _free_port, init_swarm, private_dockerd

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
                           str(state_dir)], capture_output=True, text=True, cwd="/", timeout=120)
    if done.returncode != 0:
        raise Unavailable(f"bakery certs failed: {done.stderr}")
    cdir = state.cluster_dir(CLUSTER, state_dir)
    certs.ensure_node(cdir, "engine", None, ["127.0.0.1"])
    return cdir


@contextmanager
def running() -> Iterator[TlsEngine]:
    """The engine; its cluster directory has the CA `bakery up` reuses for cluster CLUSTER in state_dir."""
    with tempfile.TemporaryDirectory(prefix="bakery-tls-engine-", dir="/var/tmp") as tmp:
        state = Path(tmp) / "state"
        cdir = _certs(state, Path(tmp) / "cluster.yml")
        port, node = _free_port(), cdir / "nodes" / "engine"
        tls = ["--tlsverify", f"--tlscacert={cdir / 'ca' / 'ca.pem'}", f"--tlscert={node / 'server-cert.pem'}",
               f"--tlskey={node / 'server-key.pem'}", "-H", f"tcp://127.0.0.1:{port}"]
        wrapper = [shutil.which("unshare") or "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', HOSTNAME]
        try:
            with private_dockerd("--bridge=none", "--iptables=false", *tls, prefix="bakery-tls-engine-",
                                 wrapper=wrapper) as d:
                eng = TlsEngine(port, state, CLUSTER, "", d.socket)
                init_swarm(eng.docker, gateway=d.gateway)
                hostname = eng.docker("info", "--format", "{{.Name}}").stdout.strip()
                yield TlsEngine(port, state, CLUSTER, hostname, d.socket)
        except RuntimeError as exc:  # dockerd never answered
            raise Unavailable(str(exc)) from exc
