"""What a service's key handlers may read (never write): the service, its project, the options.

A handler says what it found by returning findings; `warning` and `info` make them here,
located at the key and about this service. Nothing here holds the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..report import Finding, Kind
from .model import Project, Ref, Service


@dataclass(frozen=True)
class Scope:
    svc: Service
    project: Project
    image_prefix: str | None = None  # --image-prefix: services with build and no image get one
    publish_mode: str = "ingress"  # "host": every published port in host mode (long syntax, 3.2)

    def ref(self, key: str) -> Ref:
        return self.svc.at(key)

    def warning(self, key: str, message: str, code: str, fix: str | None = None, *extra: Any,
                kind: Kind = "warning") -> Finding:
        return self.ref(key).finding("warning", message, code, fix, *extra, kind=kind, subject=self.subject)

    def info(self, key: str, message: str, code: str, *extra: Any, kind: Kind = "note") -> Finding:
        return self.ref(key).finding("info", message, code, None, *extra, kind=kind, subject=self.subject)

    @property
    def subject(self) -> str:  # a key read through extends is located in the base service, but is this one's
        return f"service {self.svc.name}"
