"""Helpers for the deploy tests: run `bakery deploy` in-process against the engine fixture."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from bakery.cli import main

CASES = Path(__file__).resolve().parent.parent / "cases" / "deploy"


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


@pytest.fixture
def deployer(engine: Any, busybox_image: str, capsys: pytest.CaptureFixture[str]) -> Deployer:
    return Deployer(engine.host, capsys)


@pytest.fixture
def case_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a case under tmp_path, with @PORT@ replaced by a free port (and @NET@, an octet
    derived from it, so that stacks deployed side by side get distinct subnets); returns (dir, port)."""

    def make(name: str) -> tuple[Path, int]:
        port = free_port()
        dest = tmp_path / name
        shutil.copytree(CASES / name, dest)
        for f in dest.iterdir():
            if f.suffix in (".yml", ".yaml"):
                text = f.read_text().replace("@PORT@", str(port)).replace("@NET@", str(port % 250))
                f.write_text(text)
        return dest, port

    return make
