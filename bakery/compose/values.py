"""Parsers for compose value syntaxes: sizes, ports, volumes, restart, CPUs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..stack import values as stack_values

_PORT_NUM = re.compile(r"^\d+(-\d+)?\Z")


def size(value: object) -> str | None:
    """A memory size as written (512m, 1g, 64MiB, 1073741824), if docker reads it as one; else None."""
    try:
        stack_values.size_bytes(value.strip() if isinstance(value, str) else value)
    except stack_values.BadValue:
        return None
    return value.strip() if isinstance(value, str) else str(value)


def size_bytes(value: object) -> int | None:
    """A size in bytes, with docker's binary units (64m = 64 MiB); None if invalid."""
    try:
        return stack_values.size_bytes(value)
    except stack_values.BadValue:
        return None


def cpus(value: object) -> str | None:
    """A CPU count as the stack file wants it (a decimal string); None if invalid."""
    try:
        number = float(str(value))
    except ValueError:
        return None
    if number <= 0 or number != number or number == float("inf"):
        return None
    return format_cpus(number)


def format_cpus(number: float) -> str:
    text = f"{number:.4f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class Port:
    ip: str | None
    published: str | None
    target: str
    proto: str | None

    def short(self) -> str:
        text = f"{self.published}:{self.target}" if self.published else self.target
        return f"{text}/{self.proto}" if self.proto else text


def port(value: object) -> Port | None:
    """Short port syntax: [[ip:][published]:]target[/proto]; None if invalid."""
    text, _, proto = str(value).strip().partition("/")
    if proto and proto not in ("tcp", "udp", "sctp"):
        return None
    ip: str | None = None
    if text.startswith("["):
        ip, _, text = text[1:].partition("]")
        text = text.removeprefix(":")
        if ":" not in text:
            return None
    parts = text.split(":")
    if len(parts) == 3 and ip is None:
        ip, parts = parts[0], parts[1:]
    if len(parts) > 2 or (ip is not None and len(parts) != 2):
        return None
    target = parts[-1]
    published = parts[0] if len(parts) == 2 else None
    if not _PORT_NUM.match(target) or (published and not _PORT_NUM.match(published)):
        return None
    return Port(ip or None, published or None, target, proto or None)


@dataclass(frozen=True)
class Mount:
    kind: str  # bind, volume, anonymous
    source: str
    target: str
    mode: str


def mount(value: str) -> Mount | None:
    parts = value.split(":")
    if len(parts) == 1:
        return Mount("anonymous", "", parts[0], "")
    if len(parts) > 3 or not parts[1]:
        return None
    source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if not target.startswith("/"):
        return None
    kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    return Mount(kind, source, target, mode)


def restart(value: str) -> tuple[str, int | None] | None:
    """restart: value -> (swarm condition, max_attempts); None if invalid."""
    simple = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
    if value in simple:
        return simple[value], None
    name, _, count = value.partition(":")
    if name == "on-failure" and count.isdigit():
        return "on-failure", int(count)
    return None
