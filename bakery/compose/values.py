"""Compose value syntaxes as the converter writes them: sizes, restart, CPUs.

The syntaxes a stack file shares (sizes, short ports and volumes) are parsed by
stack.values, the one parser of each; here they are only given the compose form.
"""

from __future__ import annotations

from ..stack import values as stack_values


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


def restart(value: str) -> tuple[str, int | None] | None:
    """restart: value -> (swarm condition, max_attempts); None if invalid."""
    simple = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
    if value in simple:
        return simple[value], None
    name, _, count = value.partition(":")
    if name == "on-failure" and count.isdigit():
        return "on-failure", int(count)
    return None
