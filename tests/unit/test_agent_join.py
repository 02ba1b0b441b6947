"""The join agent's pure parts (bakery/agent/join.py); its service and joins run against real
engines in tests/integration/test_join.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testkit.render_util import cloud_config_parts, written_files

from bakery.agent import join


@pytest.mark.parametrize("raw, logged", [
    ("GET /v1/token/\x1b[2J\x07 HTTP/1.1", "GET /v1/token/\\x1b[2J\\x07 HTTP/1.1"),
    ("one\nbakery-join: forged", "one\\x0abakery-join: forged"),
    ("tab\tcr\rdel\x7fc1\x9b", "tab\\x09cr\\x0ddel\\x7fc1\\x9b"),
    ("a \\x41 backslash", "a \\\\x41 backslash"),  # an escape in the input cannot pass for ours
    ("héllo ✓", "héllo ✓"),
])
def test_log_lines_escape_control_characters(raw, logged, capsys):
    join.log(raw)
    assert capsys.readouterr().err == f"bakery-join: {logged}\n"


@pytest.mark.parametrize("attempt", range(12))
def test_backoff_is_exponential_jittered_and_bounded(attempt):
    ceiling = min(join.RETRY_MAX, join.RETRY_FIRST * 2 ** attempt)
    pauses = {join.backoff(attempt) for _ in range(50)}
    assert all(ceiling / 2 <= p <= ceiling <= join.RETRY_MAX for p in pauses)
    assert len(pauses) > 1  # jittered: nodes booted together spread out
    assert join.backoff(10_000) <= join.RETRY_MAX


@pytest.mark.parametrize("addr, host", [("10.0.0.5:2377", "10.0.0.5"), ("[fd00::5]:2377", "fd00::5"),
                                        ("fd00::5", "fd00::5"), ("manager-1", "manager-1")])
def test_manager_addresses_learned_from_an_answer(addr, host):
    assert join._host(addr) == host


def test_render_embeds_the_module_text_without_importing_it(tmp_path):
    code = ("import sys; from bakery.cli import main; "
            f"main(['render', '--role', 'manager', '--state-dir', {str(tmp_path)!r}, '-o', {str(tmp_path / 'u')!r}]); "
            "print('bakery.agent.join' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert done.stdout.strip() == "False"
    files = written_files(cloud_config_parts((tmp_path / "u").read_bytes())[0])
    agent = files["/usr/local/lib/bakery/bakery-join"]
    assert join.__file__ is not None and agent["content"] == Path(join.__file__).read_text()
    assert agent["content"].startswith("#!/usr/bin/python3\n") and agent["permissions"] == "0755"
