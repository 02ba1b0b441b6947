"""The typed intermediate forms of a conversion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ComposeError, PathPart
from ..report import Report, Severity
from ..yamlsrc import Document, Path_


@dataclass(frozen=True)
class Ref:
    """Where a value came from: a document and a YAML path inside it."""

    doc: Document
    path: Path_

    def where(self, *extra: PathPart) -> dict[str, Any]:
        """Keyword arguments locating the value (or a part of it) for a Finding or an error."""
        path = (*self.path, *extra)
        pos = self.doc.where(path)
        shown = getattr(self.doc, "shown", None)  # version 1 files: no `services:` in the user's path
        return {"source": self.doc.source, "line": pos.line if pos else None,
                "column": pos.column if pos else None, "path": shown(path) if shown else path}

    def error(self, message: str, fix: str | None = None, *extra: PathPart) -> ComposeError:
        return ComposeError(message, fix=fix, **self.where(*extra))

    def add(self, report: Report, severity: Severity, message: str, code: str,
            fix: str | None = None, *extra: PathPart) -> None:
        report.add(severity, message, code=code, fix=fix, **self.where(*extra))


@dataclass(frozen=True)
class Service:
    """One service after loading, extends and -f merging; keys still in compose form."""

    name: str
    data: dict[str, Any]
    refs: dict[str, Ref]  # service key -> where its (last) value came from
    ref: Ref  # the service mapping itself

    def at(self, key: str) -> Ref:
        return self.refs.get(key, self.ref)


@dataclass(frozen=True)
class Project:
    """Everything loaded from the -f files, in compose form."""

    version: str  # "1", "2.0".."2.4", "3.0".."3.9" (the highest among the files)
    services: dict[str, Service]
    networks: dict[str, tuple[dict[str, Any], Ref]]
    volumes: dict[str, tuple[dict[str, Any], Ref]]
    extras: dict[str, Any] = field(default_factory=dict)  # secrets, configs (3.x inputs)
    directory: Path | None = None  # the first file's folder: paths outside it are reported


@dataclass(frozen=True)
class NodeInfo:
    """One swarm node as classic-Swarm hints see it."""

    hostname: str
    labels: dict[str, str] = field(default_factory=dict)  # swarm node labels
    engine_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConvertResult:
    stack: dict[str, Any]  # the v3 stack as plain data, exactly what is written as YAML
    report: Report
    version: str  # the 3.x version chosen
    source_version: str
