"""Read one compose file: YAML, version, interpolation, schema.

The result is a Document whose data has the 2.x/3.x shape
(`{version, services, networks, volumes}`) whatever the input version: a
version 1 file (services at the top level) is wrapped, and its positions are
moved under `services` so later messages still point at the right line.

A file without `version:` is the Compose Specification, read as Docker Compose
v2 reads it (version "spec"). So is a 3.x file that only the Compose
Specification accepts (its `version:` is obsolete there, as Compose v2 says),
and one whose version is no known 2.x/3.x one. `x-` keys below a service or
inside a network or volume are allowed there and dropped here, with a note.
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
from .keys import SPEC, V2, V3

_NUMBER = re.compile(r"[0-9.]+")


@dataclass(frozen=True)
class LoadedFile:
    path: Path
    version: str
    doc: Document
    key: Path  # the resolved path: identity for extends cycles and caching
    unset_at: Mapping[tuple[PathPart, ...], list[str]] | None = None  # values emptied by unset variables


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
        if _looks_like_spec(data):
            report.info("no version: read as the Compose Specification (as Docker Compose v2 reads it)",
                        code="compose.version.missing", source=doc.source)
            return SPEC
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
    if version in V2 + V3:
        return version
    if version[:1] in ("", "1", "2"):
        raise doc.error(("version",), f"unsupported compose version {raw!r}",
                        "use 2.0 to 2.4 or 3.0 to 3.13, or remove version: for the Compose Specification; "
                        "a version 1 file has no version key", cls=ComposeError)
    report.warn(f"version {raw!r} is obsolete: Docker Compose v2 ignores it; read as the Compose Specification",
                code="compose.version.obsolete", fix="remove the version key", **_where(doc, ("version",)))
    return SPEC


def _looks_like_spec(data: dict[str, Any]) -> bool:
    """A version 1 file is services at the top level; the Compose Specification has `services:`
    (or only `include:`, `name:` and the other sections)."""
    if isinstance(data.get("services"), dict):
        return True
    return bool(data) and set(data) <= {"name", "include", "networks", "volumes", "secrets", "configs"} | {
        k for k in data if isinstance(k, str) and k.startswith("x-")}


def _where(doc: Document, path: tuple[PathPart, ...]) -> dict[str, Any]:
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


def _check(doc: Document, version: str, environ: Mapping[str, str], report: Report
           ) -> tuple[list[ComposeError], Mapping[tuple[PathPart, ...], list[str]]]:
    """Interpolate `doc` in place and validate it: every problem, and where variables were unset."""
    done = interpolate(doc, environ, report, v1=version == "1", spec=version == SPEC)
    found = list(done.problems)
    # A value whose interpolation failed is left as written; the schema's word on it would be noise.
    failed = {e.path for e in found}
    found += [e for e in validate.problems(doc, version) if e.path not in failed]
    return found, done.unset_at


def load_file(path: Path, environ: Mapping[str, str], report: Report) -> LoadedFile:
    text = _read(path)
    doc = source.loads(text, str(path))
    version = detect_version(doc, text, report)
    mine = Report()
    found, unset_at = _check(doc, version, environ, mine)
    if found and version in V3:
        # Docker Compose v2 reads a 3.x file as the Compose Specification; if only that accepts it, so do we.
        spec_doc, spec_report = source.loads(text, str(path)), Report()
        if isinstance(spec_doc.data, dict) and isinstance(doc.data, dict):
            spec_doc.data["version"] = doc.data.get("version")
        spec_found, spec_unset = _check(spec_doc, SPEC, environ, spec_report)
        if not spec_found:
            report.warn(f"version {version} is obsolete here: the file uses what only the Compose Specification "
                        f"has ({found[0].message}); read as the Compose Specification",
                        code="compose.version.obsolete", fix="remove the version key",
                        **_where(doc, ("version",)))
            doc, version, found, unset_at, mine = spec_doc, SPEC, [], spec_unset, spec_report
    if found:
        raise gather(found, ComposeError, doc.source)
    report.extend(mine)
    if version == "1":
        doc = _wrap_v1(doc)
    if version == SPEC:
        _drop_inner_extensions(doc, report)
        _v3_shapes(doc, report)
    _mount_options(doc, report)
    return LoadedFile(path, version, doc, path.resolve(), unset_at)


def _v3_shapes(doc: Document, report: Report) -> None:
    """What the v3 stack format or swarm has no room for: healthcheck start_interval (mount options:
    `_mount_options`); long-form ports get
    numbers as numbers (the Compose Specification takes "8080") and lose host_ip, name, app_protocol."""
    for name, svc in (doc.data.get("services") or {}).items():
        health = (svc or {}).get("healthcheck")
        if isinstance(health, dict) and "start_interval" in health:
            report.warn(f"{health.pop('start_interval')!r} dropped: the v3 stack format has no start_interval "
                        "(checks run every interval from the start)", code="compose.healthcheck.dropped", kind="lost",
                        fix="docker service update --health-start-interval after deploying",
                        **_where(doc, ("services", name, "healthcheck", "start_interval")))
        for i, port in enumerate((svc or {}).get("ports") or []):
            if not isinstance(port, dict):
                continue
            for key in ("target", "published"):
                if isinstance(port.get(key), str) and port[key].isdigit():
                    port[key] = int(port[key])
            for key in ("host_ip", "name", "app_protocol"):
                if key in port:
                    value = port.pop(key)
                    why = ("swarm publishes on every address" if key == "host_ip"
                           else "the v3 stack format has no such port field")
                    report.warn(f"{value!r} dropped: {why}", code="compose.ports.dropped", kind="lost",
                                **_where(doc, ("services", name, "ports", i, key)))


# Long-syntax mount options `bakery deploy` does not deploy, and why (a stack file that kept
# them would deploy differently under `docker stack deploy`).
_MOUNT_DROPPED = {
    ("volume", "subpath"): ("swarm takes a volume subpath only from Engine API 1.45, and the v3 stack format has "
                            "none", "mount the whole volume and use the path inside it"),
    ("tmpfs", "mode"): ("the stack's tmpfs mounts take only a size (the short tmpfs syntax's mode is lost too)",
                        "set the mode from the container's entrypoint (chmod)"),
    ("", "consistency"): ("only Docker Desktop's file sharing reads it; swarm ignores it", "remove it"),
    ("bind", "selinux"): ("swarm's mounts have no SELinux relabelling", "label the path on the nodes (chcon)"),
    ("bind", "create_host_path"): ("swarm never creates a bind source (a task whose path is missing fails)",
                                   "create the path on every node the service can run on"),
}


def _mount_options(doc: Document, report: Report) -> None:
    """Take the long-syntax mount options swarm does not deploy out, each reported as lost."""
    data = doc.data if isinstance(doc.data, dict) else {}
    for name, svc in (data.get("services") or {}).items():
        for i, mount in enumerate((svc or {}).get("volumes") or [] if isinstance(svc, dict) else []):
            if not isinstance(mount, dict):
                continue
            for (part, key), (why, fix) in _MOUNT_DROPPED.items():
                holder = mount.get(part) if part else mount
                if not isinstance(holder, dict) or key not in holder:
                    continue
                path = ("services", name, "volumes", i, *((part,) if part else ()), key)
                report.warn(f"{holder.pop(key)!r} dropped: {why}", code="compose.volumes.dropped", kind="lost",
                            fix=fix, **_where(doc, path))
                if part and not holder:
                    del mount[part]


def _drop_inner_extensions(doc: Document, report: Report) -> None:
    """`x-` keys below a service's keys and inside network/volume definitions: allowed, carried nowhere."""
    def strip(value: Any, path: tuple[PathPart, ...]) -> None:
        if isinstance(value, dict):
            for key in [k for k in value if isinstance(k, str) and k.startswith("x-")]:
                del value[key]
                report.info(f"dropped: an extension field inside {path[-1]} is carried nowhere",
                            code="compose.extension.dropped", **_where(doc, (*path, key)))
            for key, item in value.items():
                strip(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                strip(item, (*path, i))

    data = doc.data if isinstance(doc.data, dict) else {}
    for name, svc in (data.get("services") or {}).items():
        for key, value in (svc or {}).items():
            if not str(key).startswith("x-"):
                strip(value, ("services", name, key))
    for section in ("networks", "volumes", "secrets", "configs"):
        for name, value in (data.get(section) or {}).items():
            strip(value, (section, name))


def _read(path: Path) -> str:
    return read_text(path, ComposeError)
