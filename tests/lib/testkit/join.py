"""The join agent as a node runs it: rendered files written under a directory, the agent loaded
from there, and network namespaces with engines of their own (docs/ENGINES.md §2, docs/ARCHITECTURE.md)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from testkit.engine import stop_process
from testkit.render_util import cloud_config_parts, written_files

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


def agent_file(root: Path) -> Path:
    return root / AGENT_PATH.lstrip("/")


def load_agent(root: Path) -> Any:
    """The rendered agent file as a module (it is a script on the node, not a package module)."""
    loader = importlib.machinery.SourceFileLoader("bakery_join_agent", str(agent_file(root)))
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


class Netns:
    """A bridge and namespaces this test creates, and removes, itself."""

    def __init__(self, tag: str, net: str) -> None:
        self.bridge, self.net = f"bkj{tag}", net
        self.names: list[str] = []
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
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["iptables", "-D", *self.rule], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
