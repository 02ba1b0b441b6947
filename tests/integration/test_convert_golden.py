"""Golden cases for `bakery convert`, one directory per behaviour.

tests/cases/convert/<case>/ holds the input (docker-compose.yml and any
other files), an optional args.json ({"files": [...], "env": {...},
"nodes": "nodes.yml", "image_prefix": "...", "publish_mode": "host", "profiles": [...],
"env_files": [...]}), and the expectations:
stack.yml and report.txt (the report as `bakery convert -v` prints it), or error.txt for input
that must be refused.
BAKERY_UPDATE_GOLDEN=1 rewrites the expectations (review them with git diff).
Every expected stack is also checked by `docker stack config`.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testkit import need_tool

from bakery.compose import convert_files, dumps
from bakery.compose.nodes import load_nodes
from bakery.errors import ComposeError
from bakery.report import render

CASES = Path(__file__).resolve().parent.parent / "cases" / "convert"
NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())
UPDATE = os.environ.get("BAKERY_UPDATE_GOLDEN") == "1"


def docker_cli() -> str:
    """The Docker CLI 28 at /usr/local/bin if present (Debian's 20.10 lacks newer schemas)."""
    local = shutil.which("docker", path="/usr/local/bin")
    return local or need_tool("docker")


def run_case(case: Path) -> tuple[str, str]:
    """(name of the expectation file, its text)."""
    args = json.loads((case / "args.json").read_text()) if (case / "args.json").exists() else {}
    files = [case / f for f in args.get("files", ["docker-compose.yml"])]
    nodes = load_nodes(case / args["nodes"]) if "nodes" in args else None
    try:
        result = convert_files(files, environ=args.get("env", {}), nodes=nodes, image_prefix=args.get("image_prefix"),
                               publish_mode=args.get("publish_mode", "ingress"), profiles=args.get("profiles"),
                               env_files=[case / e for e in args.get("env_files", [])])
    except ComposeError as exc:
        return "error.txt", str(exc).replace(f"{case}/", "") + "\n"
    report = "".join(f"{line}\n" for line in render(result.report.findings, verbose=True)).replace(f"{case}/", "")
    return "stack.yml", dumps(result.stack) + "---\n" + report


def compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual)
        return
    expected = path.read_text() if path.exists() else ""
    if expected != actual:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "actual"))
        pytest.fail(f"golden mismatch (BAKERY_UPDATE_GOLDEN=1 rewrites it):\n{diff}")


@pytest.mark.parametrize("name", NAMES)
def test_golden(name):
    case = CASES / name
    kind, text = run_case(case)
    if kind == "stack.yml":
        stack, _, report = text.partition("---\n")
        compare(case / "stack.yml", stack)
        compare(case / "report.txt", report)
        assert not (case / "error.txt").exists(), "the case converts now; remove error.txt"
    else:
        compare(case / "error.txt", text)
        assert not (case / "stack.yml").exists(), "the case is refused now; remove stack.yml"


def test_same_input_same_bytes():
    for name in NAMES:
        assert run_case(CASES / name) == run_case(CASES / name), name


@pytest.mark.validators
@pytest.mark.parametrize("name", [n for n in NAMES if not (CASES / n / "error.txt").exists()])
def test_docker_accepts_expected_stack(name, tmp_path):
    docker = docker_cli()
    stack = tmp_path / "stack.yml"
    stack.write_text((CASES / name / "stack.yml").read_text())
    proc = subprocess.run([docker, "stack", "config", "-c", str(stack)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
