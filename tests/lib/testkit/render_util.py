"""Helpers for render tests: run the CLI in-process, split user-data apart."""

from __future__ import annotations

import email
import gzip
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from bakery.cli import main
from testkit import REPO

PEM = re.compile(r"(-----BEGIN [A-Z ]+-----\n)(?:([ ]*)[A-Za-z0-9+/=]+\n)+([ ]*-----END [A-Z ]+-----)")
GOSSIP = re.compile(r'"encrypt": "[A-Za-z0-9+/=]+"')
BOUNDARY = re.compile(r"==bakery-[0-9a-f]+==")

CASES = REPO / "tests" / "cases" / "render"


def case_args(case: Path) -> list[str]:
    args = shlex.split((case / "args").read_text().replace("PARTS/", f"{case}/PARTS/"))
    if (case / "bakery.yml").exists():
        args += ["--config", str(case / "bakery.yml")]
    return args


def render(args: str | list[str], state: Path, capsys: Any, cwd: Path | None = None) -> bytes:
    argv = shlex.split(args) if isinstance(args, str) else args
    code = main(["render", *argv, "--state-dir", str(state)])
    out = capsys.readouterr()  # capsysbinary: user-data may be gzip
    assert code == 0, out.err
    return bytes(out.out)


def mask(text: str) -> str:
    """Certificates and keys differ per state dir; goldens compare the rest."""
    text = PEM.sub(lambda m: m.group(1) + m.group(2) + "<masked>\n" + m.group(3), text)
    text = GOSSIP.sub('"encrypt": "<masked>"', text)
    return BOUNDARY.sub("==bakery-<masked>==", text)


def cloud_config_parts(payload: bytes) -> list[str]:
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    text = payload.decode()
    if text.startswith("#cloud-config"):
        return [text]
    msg = email.message_from_string(text)
    return [p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/cloud-config"]


def written_files(cloud_config: str) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(cloud_config)
    return {f["path"]: f for f in doc.get("write_files", [])}
