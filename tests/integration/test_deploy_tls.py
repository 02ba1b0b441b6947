"""`bakery deploy` over TCP with mutual TLS, against a second private dockerd started here.

The engine gets a server certificate from the cluster CA `bakery certs`
created, listens with `--tlsverify` on a free loopback port, and is a
one-node swarm (on a free port: another engine may hold 2377). It has no
default bridge and leaves iptables alone, so it does not disturb the other
engines on this machine; it is stopped by its own process handle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testkit.deploy import busybox_rootfs, import_image
from testkit.engine import _free_port, find_dockerd, init_swarm, private_dockerd

pytestmark = pytest.mark.engine
STACK = """\
version: "3.8"
services:
  app:
    image: local/busybox:1
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
"""


@dataclass(frozen=True)
class TlsEngine:
    url: str  # tcp://127.0.0.1:PORT, mutual TLS only
    local: str  # its unix socket, for setting up and checking
    state: Path  # bakery's state directory holding cluster `default`


def _bakery(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process: what an operator runs, environment included."""
    full = {**os.environ, **(env or {})}
    for key in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        if env is None or key not in env:
            full.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "bakery", *args], capture_output=True, text=True, env=full, timeout=180, cwd="/"
    )


def _certs(state: Path, server: Path) -> None:
    """The cluster's CAs and operator cert (`bakery certs`), and a server cert for 127.0.0.1."""
    from bakery.certs import ensure_node

    done = _bakery("certs", "--state-dir", str(state))
    assert done.returncode == 0, done.stderr
    node = ensure_node(state / "default", "local", None, ["127.0.0.1", "localhost"])
    server.mkdir()
    (server / "ca.pem").write_text(node.ca_pem)
    (server / "cert.pem").write_text(node.server_cert)
    (server / "key.pem").write_text(node.server_key)


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsEngine]:
    find_dockerd()
    work = tmp_path_factory.mktemp("tls-engine")
    state, server = work / "state", work / "server"
    _certs(state, server)
    port = _free_port()
    tls = ["--tlsverify", "--tlscacert", str(server / "ca.pem"), "--tlscert", str(server / "cert.pem"),
           "--tlskey", str(server / "key.pem"), "-H", f"tcp://127.0.0.1:{port}"]
    with private_dockerd("--bridge=none", "--iptables=false", *tls, prefix="bakery-tls-") as d:
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"
        local = f"unix://{d.socket}"
        # Both swarms live in this network namespace: a VXLAN port and address pool of its own keep
        # its overlay networks from colliding with the other engine's ("vxlan interface: file exists").
        init_swarm(lambda *a: subprocess.run([cli, "-H", local, *a], check=True, capture_output=True),
                   pool="10.241.0.0/16", gateway=d.gateway)
        import_image(local, busybox_rootfs(work / "rootfs"), ["local/busybox:1"], ["sh"])
        yield TlsEngine(f"tcp://127.0.0.1:{port}", local, state)


def _running(local: str, stack: str) -> str:
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    done = subprocess.run(
        [cli, "-H", local, "stack", "services", stack, "--format", "{{.Name}} {{.Replicas}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _stack_file(tmp_path: Path) -> str:
    path = tmp_path / "stack.yml"
    path.write_text(STACK)
    return str(path)


def test_cluster_certificates_deploy_over_mutual_tls(tls_engine, tmp_path):
    stack = _stack_file(tmp_path)
    done = _bakery(
        "deploy", "--cluster", "default", "--state-dir", str(tls_engine.state), "--host", tls_engine.url,
        "--name", "tls", "--stable-for", "0.5", "--timeout", "90", stack,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stack tls: 2 create"), done.stdout  # its network and the service
    assert _running(tls_engine.local, "tls") == "tls_app 2/2"


def test_docker_environment_variables_deploy_over_mutual_tls(tls_engine, tmp_path):
    """DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, as the Docker CLI takes them; and the
    machine's REQUESTS_CA_BUNDLE must not replace the cluster CA (docker/docker-py#2433)."""
    env = {
        "DOCKER_HOST": tls_engine.url,
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(tls_engine.state / "default" / "client"),
        "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
    }
    done = _bakery("deploy", "--name", "tlsenv", "--stable-for", "0.5", _stack_file(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert _running(tls_engine.local, "tlsenv") == "tlsenv_app 2/2"


def test_without_the_client_certificate_exits_4(tls_engine, tmp_path):
    stack = _stack_file(tmp_path)
    plain = _bakery("deploy", "--host", tls_engine.url, "--name", "nocert", stack)
    assert plain.returncode == 4, plain.stderr
    assert "only speaks mutual TLS" in plain.stderr and "--cluster" in plain.stderr
    assert "Traceback" not in plain.stderr

    # A client certificate from another cluster's CA: the engine refuses it.
    other = tmp_path / "other"
    assert _bakery("certs", "--state-dir", str(other)).returncode == 0
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(tls_engine.state / "default" / "client" / "ca.pem", mixed / "ca.pem")
    for name in ("cert.pem", "key.pem"):
        shutil.copy(other / "default" / "client" / name, mixed / name)
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(mixed)}
    foreign = _bakery("deploy", "--host", tls_engine.url, "--name", "nocert", stack, env=env)
    assert foreign.returncode == 4, foreign.stderr
    assert "refus" in foreign.stderr and "client certificate" in foreign.stderr, foreign.stderr
    assert "nocert" not in _running(tls_engine.local, "nocert")


def test_dry_run_without_the_client_certificate_plans_for_an_empty_swarm(tls_engine, tmp_path):
    done = _bakery("deploy", "--host", tls_engine.url, "--name", "drytls", "--dry-run", _stack_file(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "no engine reachable" in done.stderr and "only speaks mutual TLS" in done.stderr
    assert done.stdout.splitlines() == ["create    network drytls_default", "create    service drytls_app"]
