"""What a library call found: warnings, losses and errors, with locations.

Library code returns a Report; only the CLI prints it. `--strict` turns
warnings into a failure (exit 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import PathPart, format_location, format_path

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    message: str
    code: str = ""  # stable machine-readable id, e.g. "compose.key.approximated"
    source: str | None = None
    line: int | None = None
    column: int | None = None
    path: tuple[PathPart, ...] = ()
    fix: str | None = None

    def location(self) -> str:
        return format_location(self.source, self.line, self.column, self.path)

    def __str__(self) -> str:
        loc = self.location()
        text = f"{self.severity}: {loc}: {self.message}" if loc else f"{self.severity}: {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        return text


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: Severity, message: str, **where: Any) -> None:
        if "path" in where:
            where["path"] = tuple(where["path"])
        self.findings.append(Finding(severity, message, **where))

    def warn(self, message: str, **where: Any) -> None:
        self.add("warning", message, **where)

    def info(self, message: str, **where: Any) -> None:
        self.add("info", message, **where)

    def error(self, message: str, **where: Any) -> None:
        self.add("error", message, **where)

    def extend(self, other: Report) -> None:
        self.findings.extend(other.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for f in self.findings:
            d = asdict(f)
            d["path"] = format_path(f.path)
            out.append(d)
        return out
