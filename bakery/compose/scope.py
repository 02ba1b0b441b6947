"""What a service's key handlers may read (never write): the service, its project, the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..report import Report
from .model import Project, Ref, Service


@dataclass(frozen=True)
class Scope:
    svc: Service
    project: Project
    report: Report

    def ref(self, key: str) -> Ref:
        return self.svc.at(key)

    def warn(self, key: str, message: str, code: str, fix: str | None = None, *extra: Any) -> None:
        self.ref(key).add(self.report, "warning", f"service {self.svc.name}: {message}", code, fix, *extra)

    def info(self, key: str, message: str, code: str, *extra: Any) -> None:
        self.ref(key).add(self.report, "info", f"service {self.svc.name}: {message}", code, None, *extra)
