"""Reads are bounded: regular files only, a size cap, a depth cap for extends; files outside the
project folder are named in a warning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bakery.cli import main
from bakery.yamlsrc import MAX_INPUT_BYTES

HEAD = 'version: "2.4"\nservices:\n  a:\n    image: x\n'


@pytest.mark.parametrize(("extra", "says"), [
    ("    env_file: /dev/zero\n", "/dev/zero: not a regular file"),
    ("    extends: {file: /dev/zero, service: b}\n", "/dev/zero: not a regular file"),
    ("    env_file: fifo.env\n", "fifo.env: not a regular file"),
    ("    env_file: big.env\n", "too large for the env file"),
])
def test_unbounded_sources_are_refused(extra, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo.env")
    with (tmp_path / "big.env").open("wb") as f:
        f.truncate(MAX_INPUT_BYTES + 1)
    (tmp_path / "c.yml").write_text(HEAD + extra)
    assert main(["convert", "c.yml"]) == 2
    err = capsys.readouterr().err
    assert says in err and "c.yml:5:" in err


def test_an_extends_chain_has_a_depth_cap(tmp_path, capsys):
    lines = ['version: "2.4"', "services:"]
    for i in range(200):
        lines += [f"  s{i}:", "    image: x"] + ([f"    extends: {{service: s{i + 1}}}"] if i < 199 else [])
    (tmp_path / "c.yml").write_text("\n".join(lines) + "\n")
    assert main(["convert", str(tmp_path / "c.yml")]) == 2
    assert "extends chain deeper than 32" in capsys.readouterr().err


def test_an_env_file_outside_the_project_is_named(tmp_path: Path, capsys):
    outside = tmp_path / "secret.env"
    outside.write_text("A=1\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "c.yml").write_text(HEAD + f"    env_file: {outside}\n")
    assert main(["convert", str(tmp_path / "app" / "c.yml")]) == 0
    err = capsys.readouterr().err
    assert f"env_file reads {outside}, outside the project folder {tmp_path / 'app'}" in err
