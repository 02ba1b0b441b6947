"""The join agent as a node runs it: rendered files written under a directory, the agent loaded
from there, and network namespaces with engines of their own (docs/ENGINES.md §2, docs/ARCHITECTURE.md)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from testkit.engine import stop_process
from testkit.render_util import cloud_config_parts, ignition_files, is_ignition, written_files

AGENT_PATH = "/usr/local/lib/bakery/bakery-join"
IGNITION_AGENT_PATH = "/opt/bakery/bakery-join"  # the Python one: the managers' join service there
SH_AGENT_PATH = "/opt/bakery/bakery-join.sh"
# The two join agents, one protocol (docs/JOIN.md): Python from cloud-init user-data, POSIX sh from
# an Ignition config (Flatcar, Fedora CoreOS). Tests of the agent as a program run with both.
AGENTS = ("python", "sh")
SH_TOOLS = ("curl", "sed", "tr", "cut", "head", "od", "date", "ip", "getent", "sleep")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_args(agent: str, args: list[str]) -> list[str]:
    """The render flags for a node whose join runs `agent` ("python", or "sh" / "bash": the sh agent
    under dash or bash, Flatcar's and Fedora CoreOS's /bin/sh); its config must say docker.install: none."""
    return args if agent == "python" else [*args, "--format", "ignition"]


def materialise(payload: bytes, root: Path) -> dict[str, Any]:
    """Write a node's files (cloud-init user-data or an Ignition config) under `root`; return
    join.json rewritten to point there."""
    files = ignition_files(payload) if is_ignition(payload) else written_files(cloud_config_parts(payload)[0])
    for path, entry in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(entry["content"])
        os.chmod(dest, int(entry["permissions"], 8))
    cfg = json.loads(files["/etc/bakery/join.json"]["content"]) if "/etc/bakery/join.json" in files else {}
    for key, value in cfg.get("tls", {}).items():
        cfg["tls"][key] = str(root / value.lstrip("/"))
    return cfg


def agent_file(root: Path) -> Path:
    """The Python agent (the join service on managers; the join on cloud-init nodes)."""
    cloud_init = root / AGENT_PATH.lstrip("/")
    return cloud_init if cloud_init.exists() else root / IGNITION_AGENT_PATH.lstrip("/")


def join_cmd(root: Path, agent: str = "sh") -> list[str]:
    """How the node's boot unit runs its join: the sh agent where the node has it (under bash for
    agent "bash"), else Python."""
    sh = root / SH_AGENT_PATH.lstrip("/")
    if not sh.exists():
        return [sys.executable, str(agent_file(root)), "join"]
    return ["/bin/bash" if agent == "bash" else "/bin/sh", str(sh), "join"]


def serve_cmd(root: Path) -> list[str]:
    """The node's join service as one command: the Python agent's `serve`, or on an Ignition node
    (no Python agent there) the sh service's two processes under one sh that stops both on SIGTERM."""
    if (root / SH_AGENT_PATH.lstrip("/")).exists() and not agent_file(root).exists():
        port = json.loads((root / "join.json").read_text())["join_port"]
        tls, activate = sh_service_cmds(root, port, listen=str(port))
        script = f"{shlex.join(tls)} & t=$!; {shlex.join(activate)} & a=$!; trap 'kill $t $a; exit 0' TERM INT; wait"
        return ["/bin/sh", "-c", script]
    return [sys.executable, str(agent_file(root)), "serve"]


def sh_service_cmds(root: Path, port: int, inner: int | None = None,
                    listen: str | None = None) -> tuple[list[str], list[str]]:
    """The sh join service as its units run it: socat's TLS listener (the command of
    bakery-join-tls.service, with the node's files under `root`; on 127.0.0.1:`inner`, by default
    the units' port), and systemd's socket with Accept=yes as `systemd-socket-activate --inetd`
    (on `listen`, by default 127.0.0.1:`port`) running the relay of bakery-join-server@.service per
    connection (systemd's MaxConnections limits are not part of it)."""
    from bakery.render import sh_service_argv

    answer = f"/bin/sh {root / SH_AGENT_PATH.lstrip('/')} answer"
    tls, relay = sh_service_argv(port, answer, inner, str(root / "etc/bakery/tls"))
    activate = ["systemd-socket-activate", "--inetd", "--accept", f"--listen={listen or f'127.0.0.1:{port}'}", *relay]
    return tls, activate


def agent_env(cfg_path: Path, extra_path: Path | None = None) -> dict[str, str]:
    """The environment that points either agent at the test's configuration (join.json, join.env)."""
    env = dict(os.environ, BAKERY_JOIN_CONFIG=str(cfg_path), BAKERY_JOIN_ENV=str(cfg_path.with_suffix(".env")))
    if extra_path is not None:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    return env


def argv_recorders(bin_dir: Path, log: Path) -> Path:
    """Wrappers for every command the sh agent runs, first on PATH: each records its command
    line in `log`, then runs the real tool. A token on a command line would show up there."""
    import shutil

    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in SH_TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is missing"
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nprintf \'%s\\n\' "{tool} $*" >> {log}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    return bin_dir


def load_agent(root: Path) -> Any:
    """The rendered agent file as a module (it is a script on the node, not a package module)."""
    loader = importlib.machinery.SourceFileLoader("bakery_join_agent", str(agent_file(root)))
    spec = importlib.util.spec_from_loader("bakery_join_agent", loader)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_cfg(root: Path, cfg: dict[str, Any]) -> Path:
    """join.json for the Python agent and join.env beside it for the sh one (bakery's own translation)."""
    from bakery.ignition import join_env

    path = root / "join.json"
    path.write_text(json.dumps(cfg))
    if cfg.get("join_class"):
        path.with_suffix(".env").write_text(join_env(cfg))
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


class Netns:
    """A bridge and namespaces this test creates, and removes, itself."""

    def __init__(self, tag: str, net: str) -> None:
        self.bridge, self.net = f"bkj{tag}", net
        self.names: list[str] = []
        self.veths: list[str] = []  # deleted before their namespaces: a namespace's veth goes away asynchronously
        self.procs: list[subprocess.Popen[bytes]] = []
        self.rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def sh(self, *cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    def up(self) -> None:
        self.sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.sh("ip", "addr", "add", f"{self.net}.1/24", "dev", self.bridge)
        self.sh("ip", "link", "set", self.bridge, "up")
        self.sh("iptables", "-I", *self.rule)

    def add(self, name: str, octet: int) -> str:
        self.sh("ip", "netns", "add", name)
        self.names.append(name)
        veth = f"{self.bridge}{octet}"
        self.veths.append(veth)
        self.sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        self.sh("ip", "link", "set", veth, "master", self.bridge, "up")
        self.sh("ip", "-n", name, "addr", "add", f"{self.net}.{octet}/24", "dev", "eth0")
        self.sh("ip", "-n", name, "link", "set", "eth0", "up")
        self.sh("ip", "-n", name, "link", "set", "lo", "up")
        self.sh("ip", "-n", name, "route", "add", "default", "via", f"{self.net}.1")
        return f"{self.net}.{octet}"

    def run(self, name: str, *cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net=/var/run/netns/{name}", *cmd], capture_output=True,
                              text=True, **kw)

    def spawn(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(["nsenter", f"--net=/var/run/netns/{name}", *cmd], stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)

    def down(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        for veth in self.veths:
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["iptables", "-D", *self.rule], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
