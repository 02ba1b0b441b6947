"""What a library call found: warnings, losses and errors, with locations.

Library code returns a Report; only the CLI prints it. `--strict` turns
warnings into a failure (exit 3).

Each finding has a severity (error, warning, info) and a kind, which says what
happened to the part of the input it is located at:

- lost: dropped; nothing in the output stands for it (warning)
- approximated: carried over with something lost; the message says what (warning)
- rewritten: carried over in another form with the same meaning, named in the
  message (a classic-Swarm hint that became a placement constraint) (info)
- kept: carried over exactly (info; one finding per service lists the keys)
- warning: kept, but the output may not behave as the input did (warning)
- note: anything else worth knowing (info)

The message never repeats the location: `file:line:col yaml.path` says where,
the message says what, and `fix` (when there is one) what to do instead.
`subject` names what the finding is about ("service web", "network front"),
or is None for the file as a whole; `render` groups by it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import PathPart, format_location, format_path

Severity = Literal["error", "warning", "info"]
Kind = Literal["lost", "approximated", "rewritten", "kept", "warning", "note", "error"]
_SUBJECTS = {"services": "service", "networks": "network", "volumes": "volume", "secrets": "secret",
             "configs": "config"}


def subject_of(path: tuple[PathPart, ...]) -> str | None:
    """"service web" for services.web.image (and the other top-level sections likewise)."""
    if len(path) >= 2 and path[0] in _SUBJECTS:
        return f"{_SUBJECTS[str(path[0])]} {path[1]}"
    return None


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
    kind: Kind = "note"
    subject: str | None = None

    def location(self) -> str:
        return format_location(self.source, self.line, self.column, self.path)

    def __str__(self) -> str:
        loc = self.location()
        text = f"{self.severity}: {loc}: {self.message}" if loc else f"{self.severity}: {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        return text


_DEFAULT_KIND: dict[Severity, Kind] = {"error": "error", "warning": "warning", "info": "note"}


def finding(severity: Severity, message: str, **where: Any) -> Finding:
    """A finding, its kind and subject filled in when not given (a path under services.web: service web)."""
    where["path"] = tuple(where.get("path") or ())
    where.setdefault("kind", _DEFAULT_KIND[severity])
    if where.get("subject") is None:
        where["subject"] = subject_of(where["path"])
    return Finding(severity, message, **where)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: Severity, message: str, **where: Any) -> None:
        self.findings.append(finding(severity, message, **where))

    def warn(self, message: str, **where: Any) -> None:
        self.add("warning", message, **where)

    def info(self, message: str, **where: Any) -> None:
        self.add("info", message, **where)

    def error(self, message: str, **where: Any) -> None:
        self.add("error", message, **where)

    def extend(self, other: Report) -> None:
        self.findings.extend(other.findings)

    def add_all(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def to_json(self) -> list[dict[str, Any]]:
        """Every finding, whatever the verbosity: severity, kind, subject, code, message, fix,
        source, line, column, path (dotted)."""
        out = []
        for f in self.findings:
            d = asdict(f)
            d["path"] = format_path(f.path)
            out.append(d)
        return out


def _below_subject(f: Finding) -> tuple[PathPart, ...] | None:
    """The finding's path below its subject (services.web.image: image), or None if it is not below it."""
    path = f.path
    if f.subject is not None and len(path) >= 2 and subject_of(path) == f.subject:
        return path[2:]
    if f.subject is not None and path and f.subject == f"service {path[0]}":  # version 1: no services:
        return path[1:]
    return None


def _short_location(f: Finding) -> str:
    """file:line:col and the path below the subject (the group's heading names the subject)."""
    below = _below_subject(f)
    return format_location(f.source, f.line, f.column, f.path if below is None else below)


_SAME_AT_LEAST = 4  # the same finding in this many subjects is printed once, under one heading
_NAMES_SHOWN = 5


def render(findings: Iterable[Finding], *, verbose: bool = False) -> list[str]:
    """The report as text lines, one heading per subject ("service web:"), the file's own
    findings first. Short by default: errors and warnings (what was lost or approximated,
    and risks), and a warning met alike in many subjects (the same message under the same key
    of each) printed once, under a heading that counts and names them, at one of its places.
    `verbose` prints every finding at its own place and adds the rewrites, the notes and
    what was kept exactly."""
    shown = [f for f in findings if verbose or f.severity != "info"]
    alike: dict[tuple[Any, ...], list[Finding]] = {}
    if not verbose:
        for f in shown:
            if f.subject is not None and f.kind != "kept":
                alike.setdefault(_likeness(f), []).append(f)
    repeated = {key: group for key, group in alike.items() if len({f.subject for f in group}) >= _SAME_AT_LEAST}
    folded = {id(f) for group in repeated.values() for f in group}
    groups: dict[str | None, list[Finding]] = {}
    for f in shown:
        if id(f) not in folded:
            groups.setdefault(f.subject, []).append(f)
    lines: list[str] = []
    for subject in sorted(groups, key=lambda s: (s is not None, _order(s))):
        items = groups[subject]
        lines.append(f"{subject}:" if subject else "file:")
        kept = [f for f in items if f.kind == "kept"]
        located = sorted((f for f in items if f.kind != "kept"), key=_place)
        lines += [_line(f, _short_location(f)) for f in [*located, *kept]]
    for group in sorted(repeated.values(), key=lambda g: _place(g[0])):
        lines += _alike(group)
    return lines


def _line(f: Finding, where: str) -> str:
    text = f"  {f.severity}: {where}: {f.message}" if where else f"  {f.severity}: {f.message}"
    return f"{text} ({f.fix})" if f.fix else text


def _likeness(f: Finding) -> tuple[Any, ...]:
    """Findings alike but for their subject: the same severity, kind, message and fix under the same
    key of the subject (services.a.depends_on.x and services.b.depends_on.y: the message says what)."""
    below = _below_subject(f)
    key = f.path[:1] if below is None else below[:1]
    return (f.severity, f.kind, f.message, f.fix, f.subject.partition(" ")[0] if f.subject else None, key)


def _place(f: Finding) -> tuple[str, int, int]:
    return (f.source or "", f.line or 0, f.column or 0)


def _alike(group: list[Finding]) -> list[str]:
    """One heading for the subjects ("999 services alike (svc1, svc2, ... and 994 more), ..."), the
    finding once, at the first of its places in file order, with its whole path (naming its subject)."""
    group = sorted(group, key=_place)
    subjects = {f.subject or "" for f in group}
    kind = next(iter(subjects)).partition(" ")[0]
    names = sorted((s.partition(" ")[2] for s in subjects), key=lambda n: (_natural(n), n))
    more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
    return [f"{len(names)} {kind}s alike ({', '.join(names[:_NAMES_SHOWN])}{more}), one of them shown "
            "(-v lists each):",
            _line(group[0], group[0].location())]  # the whole path: it names the service shown


def _natural(name: str) -> list[Any]:
    """svc2 before svc10."""
    return [(0, len(part.lstrip("0")), part.lstrip("0")) if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name)]


def _order(subject: str | None) -> tuple[int, str]:
    kind, _, name = (subject or "").partition(" ")
    ranks = list(_SUBJECTS.values())
    return (ranks.index(kind) if kind in ranks else len(ranks), name)


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each kind (for a summary line)."""
    out: dict[str, int] = {}
    for f in findings:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out
