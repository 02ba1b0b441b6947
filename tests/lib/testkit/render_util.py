"""Helpers for render tests: run the CLI in-process, split user-data apart."""

from __future__ import annotations

import email
import gzip
import json
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
    """path -> the write_files entry, its content decoded as cloud-init writes it (gz+b64 included)."""
    doc = yaml.safe_load(cloud_config)
    out = {}
    for f in doc.get("write_files", []):
        if f.get("encoding") in ("gz+b64", "gzip+base64"):
            import base64
            import gzip

            f = {**f, "content": gzip.decompress(base64.b64decode(f["content"])).decode()}
        out[f["path"]] = f
    return out


def is_ignition(payload: bytes) -> bool:
    return payload.lstrip()[:1] == b"{"


def data_url_text(source: str, compression: str | None) -> str:
    """A data URL's bytes as Ignition reads them (RFC 2397; gzip when the file says so)."""
    import base64
    from urllib.parse import unquote_to_bytes

    head, _, data = source.partition(",")
    assert head.startswith("data:"), source[:40]
    raw = base64.b64decode(data) if head.endswith(";base64") else unquote_to_bytes(data)
    return (gzip.decompress(raw) if compression == "gzip" else raw).decode()


def ignition_files(payload: bytes) -> dict[str, dict[str, Any]]:
    """path -> {content, permissions (octal string, as write_files has it), compression}."""
    doc = json.loads(payload)
    return {f["path"]: {"content": data_url_text(f["contents"]["source"], f["contents"].get("compression")),
                        "permissions": f"{f['mode']:04o}", "compression": f["contents"].get("compression")}
            for f in doc["storage"]["files"]}


def ignition_units(payload: bytes) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in json.loads(payload)["systemd"]["units"]}


def readable_ignition(payload: bytes) -> str:
    """An Ignition config for a golden file: its JSON with every data URL replaced by a name, then
    each file and unit decoded, certificates masked."""
    doc = json.loads(payload)
    files = ignition_files(payload)
    for f in doc["storage"]["files"]:
        f["contents"]["source"] = f"<data URL: {f['path']}>"
    for u in doc["systemd"]["units"]:
        if "contents" in u:
            u["contents"] = "<below>"
        for d in u.get("dropins", []):
            d["contents"] = "<below>"
    out = [json.dumps(doc, indent=2, sort_keys=True), ""]
    for path, f in files.items():
        out += [f"=== file {path} ({f['permissions']})", f["content"]]
    for name, u in ignition_units(payload).items():
        if "contents" in u:
            out += [f"=== unit {name}", u["contents"]]
        for d in u.get("dropins", []):
            out += [f"=== unit {name} drop-in {d['name']}", d["contents"]]
    return mask("\n".join(out))
