"""Deploy-test helpers: `bakery deploy` in-process against the engine fixture, stand-in images."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakery.cli import main
from testkit import REPO

CASES = REPO / "tests" / "cases" / "deploy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployer:
    """`bakery deploy ... --output json` with fast convergence settings; returns (exit code, JSON)."""

    def __init__(self, host: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.host, self.capsys = host, capsys

    def __call__(self, *args: str) -> tuple[int, dict[str, Any]]:
        self.capsys.readouterr()
        code = main(["deploy", "-H", self.host, "--output", "json", "--stable-for", "0.5", "--timeout", "90", *args])
        captured = self.capsys.readouterr()
        data = json.loads(captured.out) if captured.out.strip() else {}
        data["_stderr"] = captured.err  # progress and errors, shown when an assertion prints `out`
        return code, data


# Stacks stay on the session's engine, so every copied case gets its own subnet octet: an
# octet derived from the port collided now and then (two 10.231.N.0/24 pools overlap).
_NET_OCTETS = itertools.count(1)


def case_net(case: Path) -> int:
    """The @NET@ octet `case_dir` gave this copy."""
    return int((case / ".net").read_text())


STACKS = REPO / "stacks"
# Stand-ins for web images serve files with busybox httpd; the rest just sleep.
WEB_IMAGES = frozenset({"nginx:1.25", "containous/whoami:v1.5.0"})
_APPLETS = ("sh", "httpd", "sleep", "echo", "cat", "date", "wget", "ls", "true", "false", "env", "nc")


def busybox_rootfs(root: Path) -> Path:
    """A directory holding busybox, its applets and /www/index.html (what the stand-ins run)."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    (root / "bin").mkdir(parents=True)
    (root / "www").mkdir()
    (root / "www" / "index.html").write_text("hello from a bakery stand-in\n")
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in _APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    return root


def import_image(host: str, root: Path, refs: list[str], cmd: list[str]) -> None:
    """`docker import` the rootfs once with CMD `cmd`, then tag it as each of `refs`."""
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
    change = "CMD " + json.dumps(cmd)
    first, *rest = refs
    cmd_line = [cli, "-H", host, "import", "--change", change, "-", first]
    subprocess.run(cmd_line, input=tar, check=True, capture_output=True)
    for ref in rest:
        subprocess.run([cli, "-H", host, "tag", first, ref], check=True, capture_output=True)


def stack_images() -> list[str]:
    """Every image ref the stacks/ examples use (compose input and converted output)."""
    refs = set()
    for f in sorted(STACKS.glob("*/*.yml")):
        services = (yaml.safe_load(f.read_text()) or {}).get("services") or {}
        refs.update(str(s["image"]) for s in services.values() if "image" in s)
    return sorted(refs)
