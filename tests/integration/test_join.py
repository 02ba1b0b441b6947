"""The join agent and the TLS split, against real engines.

1. The join-token service (bakery-join serve) on the engine fixture's swarm:
   a worker certificate gets the worker token and is refused the manager
   token; certificates not signed by the join CA get no TLS session at all.
2. A real dockerd started with the rendered daemon.json serves the API with
   mutual TLS: the operator's certificate works, a node's join or server
   certificate and plain TCP do not.
3. Two engines in their own network namespaces (../shared/ENGINE.md §2): the
   agent inits the swarm on the seed and joins a worker through the seed's
   join service, exactly as it runs at boot.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from testkit import require_or_skip
from testkit.engine import Engine, _wait_socket, find_dockerd, private_dockerd
from testkit.render_util import cloud_config_parts, render, written_files

pytestmark = pytest.mark.engine

AGENT_PATH = "/usr/local/lib/bakery/bakery-join"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def materialise(payload: bytes, root: Path) -> dict[str, Any]:
    """Write a node's files under `root`; return join.json rewritten to point there."""
    files = written_files(cloud_config_parts(payload)[0])
    for path, entry in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(entry["content"])
        os.chmod(dest, int(entry["permissions"], 8))
    cfg = json.loads(files["/etc/bakery/join.json"]["content"]) if "/etc/bakery/join.json" in files else {}
    for key, value in cfg.get("tls", {}).items():
        cfg["tls"][key] = str(root / value.lstrip("/"))
    return cfg


def load_agent(root: Path) -> Any:
    path = str(root / AGENT_PATH.lstrip("/"))
    loader = importlib.machinery.SourceFileLoader("bakery_join_agent", path)
    spec = importlib.util.spec_from_loader("bakery_join_agent", loader)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_cfg(root: Path, cfg: dict[str, Any]) -> Path:
    path = root / "join.json"
    path.write_text(json.dumps(cfg))
    return path


def wait_port(host: str, port: int, proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "join service exited early"
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {host}:{port}")


@pytest.fixture()
def token_service(engine: Engine, tmp_path: Path, capsysbinary):  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    seed = materialise(render(["--role", "seed"], state, capsysbinary), tmp_path / "seed")
    port = free_port()
    seed.update(docker_socket=engine.socket, join_port=port, serve_address="127.0.0.1")
    log = tmp_path / "serve.log"
    env = dict(os.environ, BAKERY_JOIN_CONFIG=str(write_cfg(tmp_path / "seed", seed)))
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "seed" / AGENT_PATH.lstrip("/")), "serve"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", port, proc)
        yield {"state": state, "port": port, "log": log, "tmp": tmp_path}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def node_cfg(svc: dict[str, Any], role: str, capsysbinary: Any, name: str | None = None) -> tuple[Any, dict]:
    root = svc["tmp"] / (name or role)
    args = ["--role", role] + (["--name", name] if name else [])
    cfg = materialise(render(args, svc["state"], capsysbinary), root)
    cfg.update(join_port=svc["port"])
    return load_agent(root), cfg


def test_worker_gets_only_the_worker_token(engine, token_service, capsysbinary):
    agent, cfg = node_cfg(token_service, "worker", capsysbinary)
    worker_token = engine.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    manager_token = engine.docker("swarm", "join-token", "-q", "manager").stdout.strip()
    ctx = agent.client_context(cfg)
    token, managers = agent.fetch_token(cfg, "localhost", ctx)
    assert token == worker_token
    assert len(managers) == 1 and managers[0].startswith("127.0.0.1:")
    cfg["join_class"] = "manager"  # a tampered config cannot change the certificate's class
    with pytest.raises(OSError, match="answered 403"):
        agent.fetch_token(cfg, "localhost", ctx)
    log = token_service["log"].read_text()
    assert worker_token not in log and manager_token not in log


def test_manager_gets_the_manager_token(engine, token_service, capsysbinary):
    agent, cfg = node_cfg(token_service, "manager", capsysbinary, name="manager-1")
    token, _ = agent.fetch_token(cfg, "127.0.0.1", agent.client_context(cfg))
    assert token == engine.docker("swarm", "join-token", "-q", "manager").stdout.strip()


@pytest.mark.parametrize("which", ["operator", "server-cert", "none"])
def test_certificates_outside_the_join_ca_get_no_session(which, token_service, capsysbinary):
    agent, cfg = node_cfg(token_service, "worker", capsysbinary)
    ctx = ssl.create_default_context(cafile=cfg["tls"]["ca"])
    client = token_service["state"] / "default" / "client"
    if which == "operator":
        ctx.load_cert_chain(client / "cert.pem", client / "key.pem")
    elif which == "server-cert":
        ctx.load_cert_chain(cfg["tls"]["cert"], cfg["tls"]["key"])
    with pytest.raises((ssl.SSLError, OSError)):
        agent.fetch_token(cfg, "localhost", ctx)


def test_join_on_a_node_already_in_a_swarm_does_nothing(engine, tmp_path, capsysbinary):
    root = tmp_path / "w"
    cfg = materialise(render(["--role", "worker"], tmp_path / "s", capsysbinary), root)
    cfg.update(docker_socket=engine.socket, endpoints=["127.0.0.1"], join_port=free_port())
    env = dict(os.environ, BAKERY_JOIN_CONFIG=str(write_cfg(root, cfg)))
    res = subprocess.run([sys.executable, str(root / AGENT_PATH.lstrip("/")), "join"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "already part of a swarm (active)" in res.stderr


# --- 2. a real dockerd with the rendered daemon.json -------------------------------------------


def test_dockerd_with_rendered_daemon_json_enforces_mutual_tls(tmp_path, capsysbinary):
    state = tmp_path / "state"
    root = tmp_path / "node"
    materialise(render(["--role", "worker"], state, capsysbinary), root)
    daemon = json.loads((root / "etc/docker/daemon.json").read_text())
    for key in ("tlscacert", "tlscert", "tlskey"):
        daemon[key] = str(root / daemon[key].lstrip("/"))
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps(daemon))
    port = free_port()
    with private_dockerd("--config-file", str(conf), "--iptables=false", "--bridge=none",
                         "-H", f"tcp://127.0.0.1:{port}", prefix="bakery-tls-") as d:
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"

        def version(*tls: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([cli, "-H", f"tcp://127.0.0.1:{port}", *tls, "version", "--format",
                                   "{{.Server.Version}}"], capture_output=True, text=True, timeout=30)

        client = state / "default" / "client"
        ok = version("--tlsverify", f"--tlscacert={client}/ca.pem", f"--tlscert={client}/cert.pem",
                     f"--tlskey={client}/key.pem")
        assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
        tls = root / "etc/bakery/tls"
        for cert, key in (("join-cert.pem", "join-key.pem"), ("server-cert.pem", "server-key.pem")):
            bad = version("--tlsverify", f"--tlscacert={client}/ca.pem", f"--tlscert={tls}/{cert}",
                          f"--tlskey={tls}/{key}")
            assert bad.returncode != 0, f"{cert} must not open the Docker API"
        assert version().returncode != 0  # plain HTTP
        labels = json.loads(subprocess.run([cli, "-H", f"unix://{d.socket}", "info", "--format",
                                            "{{json .Labels}}"], capture_output=True, text=True).stdout)
        assert "bakery.role=worker" in labels


# --- 3. two engines, two network namespaces, the agent as it runs at boot ---------------------

NET = "10.213.77"


class Netns:
    """A bridge and namespaces this test creates, and removes, itself."""

    def __init__(self, tag: str) -> None:
        self.bridge = f"bkj{tag}"
        self.names: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def sh(self, *cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    def up(self) -> None:
        self.sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.sh("ip", "addr", "add", f"{NET}.1/24", "dev", self.bridge)
        self.sh("ip", "link", "set", self.bridge, "up")
        self.sh("iptables", "-I", *self.rule)

    def add(self, name: str, octet: int) -> str:
        self.sh("ip", "netns", "add", name)
        self.names.append(name)
        veth = f"{self.bridge}{octet}"
        self.sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        self.sh("ip", "link", "set", veth, "master", self.bridge, "up")
        self.sh("ip", "-n", name, "addr", "add", f"{NET}.{octet}/24", "dev", "eth0")
        self.sh("ip", "-n", name, "link", "set", "eth0", "up")
        self.sh("ip", "-n", name, "link", "set", "lo", "up")
        self.sh("ip", "-n", name, "route", "add", "default", "via", f"{NET}.1")
        return f"{NET}.{octet}"

    def run(self, name: str, *cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net=/var/run/netns/{name}", *cmd], capture_output=True,
                              text=True, **kw)

    def spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        with log.open("wb") as out:
            self.procs.append(subprocess.Popen(["nsenter", f"--net=/var/run/netns/{name}", *cmd], stdout=out,
                                               stderr=subprocess.STDOUT, env=env, start_new_session=True))

    def down(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["iptables", "-D", *self.rule], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def test_seed_inits_and_worker_joins_through_the_join_service(tmp_path, capsysbinary):
    dockerd = find_dockerd()
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            require_or_skip("BAKERY_REQUIRE_ENGINE", f"{tool} is missing")
    conf = tmp_path / "bakery.yml"
    conf.write_text(f"swarm: {{seed: '{NET}.11'}}\n")
    state = tmp_path / "state"
    net = Netns(str(os.getpid() % 10000))
    try:
        net.up()
        nodes: dict[str, tuple[str, Path, Path]] = {}
        for role, octet in (("seed", 11), ("worker", 12)):
            ns = f"bkj{os.getpid() % 10000}-{role}"
            addr = net.add(ns, octet)
            root = tmp_path / role
            cfg = materialise(render(["--role", role, "--config", str(conf)], state, capsysbinary), root)
            sock = root / "docker.sock"
            cfg["docker_socket"] = str(sock)
            env_file = write_cfg(root, cfg)
            net.spawn(ns, [dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false",
                           "-H", f"unix://{sock}", "--data-root", str(root / "data"),
                           "--exec-root", f"/run/bkj-{os.getpid()}-{role}",
                           "--pidfile", str(root / "d.pid")], root / "dockerd.log")
            nodes[role] = (ns, root, env_file)
            assert addr
        for role, (_, root, _) in nodes.items():
            _wait_socket(str(root / "docker.sock"), net.procs[-1 if role == "worker" else 0], root / "dockerd.log")

        def agent(role: str, verb: str) -> subprocess.CompletedProcess[str]:
            ns, root, env_file = nodes[role]
            env = dict(os.environ, BAKERY_JOIN_CONFIG=str(env_file))
            return net.run(ns, sys.executable, str(root / AGENT_PATH.lstrip("/")), verb, env=env, timeout=300)

        seed = agent("seed", "join")
        assert seed.returncode == 0, seed.stderr
        assert f"initialised the swarm, advertising {NET}.11" in seed.stderr
        ns, root, env_file = nodes["seed"]
        net.spawn(ns, [sys.executable, str(root / AGENT_PATH.lstrip("/")), "serve"], root / "serve.log",
                  env=dict(os.environ, BAKERY_JOIN_CONFIG=str(env_file)))
        worker = agent("worker", "join")
        assert worker.returncode == 0, worker.stderr
        assert f"joined the swarm as worker through {NET}.11, advertising {NET}.12" in worker.stderr
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"
        seed_sock = f"unix://{nodes['seed'][1]}/docker.sock"
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run([cli, "-H", seed_sock, "node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}"],
                                 capture_output=True, text=True).stdout.split("\n")
            states = sorted(line.strip() for line in out if line.strip())
            if states == ["Ready", "Ready Leader"] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert states == ["Ready", "Ready Leader"]
        again = agent("worker", "join")  # a reboot never joins twice
        assert again.returncode == 0 and "already part of a swarm" in again.stderr
        tokens = subprocess.run([cli, "-H", seed_sock, "swarm", "join-token", "-q", "worker"],
                                capture_output=True, text=True).stdout.strip()
        logs = seed.stderr + worker.stderr + (nodes["seed"][1] / "serve.log").read_text()
        assert tokens and tokens not in logs
    finally:
        net.down()
