"""Read one compose file: YAML, version, interpolation, schema.

The result is a Document whose data has the 2.x/3.x shape
(`{version, services, networks, volumes}`) whatever the input version: a
version 1 file (services at the top level) is wrapped, and its positions are
moved under `services` so later messages still point at the right line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ComposeError, PathPart, gather
from ..report import Report
from ..yamlsrc import Document, read_text
from . import source, validate
from .interpolate import interpolate
from .keys import V2, V3

_NUMBER = re.compile(r"[0-9.]+")


@dataclass(frozen=True)
class LoadedFile:
    path: Path
    version: str
    doc: Document
    key: Path  # the resolved path: identity for extends cycles and caching


def _raw_token(text: str, doc: Document) -> str:
    """The literal text of the `version:` value (2.10 must not become the float 2.1)."""
    pos = doc.where(("version",))
    if pos is None:
        return ""
    line = text.splitlines()[pos.line - 1] if pos.line <= len(text.splitlines()) else ""
    m = _NUMBER.match(line[pos.column - 1:])
    return m.group(0) if m else ""


def detect_version(doc: Document, text: str, report: Report) -> str:
    data = doc.data
    if data is None:
        raise ComposeError("the compose file is empty", source=doc.source, fix="define at least one service")
    if not isinstance(data, dict):
        raise doc.error((), "a compose file is a mapping (version, services, ...)",
                        "start the file with `version: \"2.4\"` and `services:`", cls=ComposeError)
    if "version" not in data:
        if isinstance(data.get("services"), dict):
            report.info("no version: read as the Compose Specification, checked as 3.9",
                        code="compose.version.missing", source=doc.source)
            data["version"] = "3.9"
            return "3.9"
        return "1"
    raw = data["version"]
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        token = _raw_token(text, doc) or str(raw)
        report.warn(f"version {token} is not quoted", code="compose.version.unquoted",
                    fix=f'write version: "{token}"', **_where(doc, ("version",)))
        raw = token
        data["version"] = token
    if not isinstance(raw, str):
        raise doc.error(("version",), f"version must be a string like \"2.4\", not {raw!r}",
                        'write version: "2.4"', cls=ComposeError)
    version = {"2": "2.0", "3": "3.0"}.get(raw.strip(), raw.strip())
    if version not in V2 + V3:
        raise doc.error(("version",), f"unsupported compose version {raw!r}",
                        "use 2.0 to 2.4 or 3.0 to 3.9; a version 1 file has no version key",
                        cls=ComposeError)
    return version


def _where(doc: Document, path: tuple[str, ...]) -> dict[str, Any]:
    pos = doc.where(path)
    return {"source": doc.source, "line": pos.line if pos else None,
            "column": pos.column if pos else None, "path": path}


class V1Document(Document):
    """A version 1 file wrapped under `services:`; messages show the path as the user wrote it."""

    def shown(self, path: tuple[PathPart, ...]) -> tuple[PathPart, ...]:
        return path[1:] if path[:1] == ("services",) else path


def _wrap_v1(doc: Document) -> Document:
    """Put a version 1 file's services under `services:` (positions too)."""
    positions = {("services", *p): v for p, v in doc.positions.items()}
    keys = {("services", *p): v for p, v in doc.key_positions.items()}
    plain = {("services", *p): v for p, v in doc.plain.items()}
    return V1Document({"version": "1", "services": doc.data}, doc.source, positions, keys, plain)


def load_file(path: Path, environ: Mapping[str, str], report: Report) -> LoadedFile:
    text = _read(path)
    doc = source.loads(text, str(path))
    version = detect_version(doc, text, report)
    found = interpolate(doc, environ, report, v1=version == "1")
    # A value whose interpolation failed is left as written; the schema's word on it would be noise.
    failed = {e.path for e in found}
    found += [e for e in validate.problems(doc, version) if e.path not in failed]
    if found:
        raise gather(found, ComposeError, doc.source)
    if version == "1":
        doc = _wrap_v1(doc)
    return LoadedFile(path, version, doc, path.resolve())


def _read(path: Path) -> str:
    return read_text(path, ComposeError)
