"""Booted-node helpers: the real CLI in a child process, and a local cluster torn down from its record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SWITCH = "BAKERY_REQUIRE_NODES"
TOOLS = ("systemd-nspawn", "debootstrap", "dnsmasq", "nsenter", "iptables", "ip")


def bakery(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "bakery", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"bakery {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


@dataclass
class LocalCluster:
    state_dir: Path
    cache_dir: Path
    name: str
    up: dict[str, Any]

    @property
    def record(self) -> Path:
        return self.state_dir / self.name / "local.json"

    def args(self) -> list[str]:
        return ["--cluster", self.name, "--state-dir", str(self.state_dir)]

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, DOCKER_HOST=self.up["docker_host"], DOCKER_TLS_VERIFY="1",
                   DOCKER_CERT_PATH=self.up["cert_path"])
        cli = shutil.which("docker", path="/usr/local/bin") or "docker"
        return subprocess.run([cli, *args], capture_output=True, text=True, env=env, timeout=timeout, check=check)

    def nodes(self) -> dict[str, dict[str, Any]]:
        out = json.loads(bakery("nodes", *self.args(), "--output", "json").stdout)
        return {n["name"]: n for n in out["nodes"]}

    def down(self) -> subprocess.CompletedProcess[str]:
        return bakery("down", *self.args(), check=False, timeout=300)


def boot_cluster(tmp: Path, cache_dir: Path, managers: int, workers: int, *extra: str) -> Iterator[LocalCluster]:
    state = tmp / "state"
    cluster = LocalCluster(state, cache_dir, "local", {})
    done = bakery("up", "--provider", "local", "--managers", str(managers), "--workers", str(workers),
                  *cluster.args(), "--cache-dir", str(cache_dir), "--output", "json", "--timeout", "600", *extra,
                  check=False)
    try:
        if done.returncode != 0:
            pytest.fail(f"bakery up exited {done.returncode}:\n{done.stderr[-4000:]}")
        cluster.up = json.loads(done.stdout)
        yield cluster
    finally:
        if cluster.record.exists():
            cluster.down()
