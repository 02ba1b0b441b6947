"""The typed intermediate forms of a conversion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report import Report
from ..stack.model import Ref, Stack

__all__ = ["ConvertResult", "NodeInfo", "Project", "Ref", "Service"]


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
    # The variables the files were interpolated with (.env or --env-file, then the process): a
    # service's env_file refers to them in `${...}` as Docker Compose v2 does.
    environ: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeInfo:
    """One swarm node as classic-Swarm hints see it."""

    hostname: str
    labels: dict[str, str] = field(default_factory=dict)  # swarm node labels
    engine_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConvertResult:
    stack: dict[str, Any]  # the v3 stack file as plain data, exactly what is written as YAML
    model: Stack  # the same stack, typed: what `bakery deploy` deploys
    report: Report
    version: str  # the 3.x version chosen
    source_version: str
