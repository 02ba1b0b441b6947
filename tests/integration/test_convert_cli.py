"""`bakery convert` as a process: the file it writes is what docker accepts, and bench/convert runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from testkit import need_tool

REPO = Path(__file__).resolve().parent.parent.parent


def docker_cli() -> str:
    return shutil.which("docker", path="/usr/local/bin") or need_tool("docker")


@pytest.mark.validators
def test_cli_output_passes_docker_stack_config(tmp_path):
    docker = docker_cli()
    src = tmp_path / "docker-compose.yml"
    compose = yaml.safe_load((REPO / "stacks" / "monitoring" / "docker-compose.yml").read_text())
    # A pattern hint: its node label's hint goes to x-bakery, which docker must keep.
    compose["services"]["probe"] = {"image": "busybox", "environment": ["constraint:node==web*"]}
    src.write_text(yaml.safe_dump(compose))
    out = tmp_path / "stack.yml"
    proc = subprocess.run([sys.executable, "-m", "bakery", "convert", str(src), "-o", str(out), "--output", "json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["version"] == "3.7"  # update/rollback config
    check = subprocess.run([docker, "stack", "config", "-c", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "x-bakery" in check.stdout  # docker keeps our extension: the deployer reads it back


@pytest.mark.validators
def test_bench_runs(tmp_path):
    """Both comparisons run and print their ratio: docker stack config on the v2 file's output,
    docker compose config (Compose v2) on the Compose Specification file."""
    import os
    import re

    from testkit import oracles

    docker_cli()
    env = {**os.environ, "BAKERY_COMPOSE_V2": oracles.compose_v2()}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "convert"), "--services", "20", "--runs", "1"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^v2\.4 file: bakery convert [\d.]+s .*docker stack config [\d.]+s .*ratio \d+\.\d\d",
                     proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"^compose spec file: bakery convert [\d.]+s .*docker compose config [\d.]+s .*ratio "
                     r"\d+\.\d\d", proc.stdout, re.MULTILINE), proc.stdout
