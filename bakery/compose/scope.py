"""What a service's key handlers may read (never write): the service, its project, the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..report import Kind, Report
from .model import Project, Ref, Service


@dataclass(frozen=True)
class Scope:
    svc: Service
    project: Project
    report: Report

    def ref(self, key: str) -> Ref:
        return self.svc.at(key)

    def warn(self, key: str, message: str, code: str, fix: str | None = None, *extra: Any,
             kind: Kind = "warning") -> None:
        self.ref(key).add(self.report, "warning", message, code, fix, *extra, kind=kind, subject=self.subject)

    def info(self, key: str, message: str, code: str, *extra: Any, kind: Kind = "note") -> None:
        self.ref(key).add(self.report, "info", message, code, None, *extra, kind=kind, subject=self.subject)

    @property
    def subject(self) -> str:  # a key read through extends is located in the base service, but is this one's
        return f"service {self.svc.name}"
