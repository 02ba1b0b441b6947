"""Compose value syntaxes the Engine API wants as numbers.

Durations are Go durations (`1m30s`, `500ms`) and become nanoseconds; sizes
are docker's RAMInBytes (`512m`, `1g`, binary units) and become bytes. A bad
value raises ValueError; specs.py turns that into a located UserError.
"""

from __future__ import annotations

import re

_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(b?)$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def duration_ns(value: object) -> int:
    """`"1m30s"` -> 90_000_000_000. Plain numbers are seconds (compose accepts them)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use 10s, 1m30s, 500ms)")
    if isinstance(value, int | float):
        return int(value * 10**9)
    text = str(value).strip()
    if text in ("0", ""):
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"{value!r} is not a duration (use 10s, 1m30s, 500ms)")
    return int(round(total))


def size_bytes(value: object) -> int:
    """`"512m"` -> 536870912 (binary units, like docker's RAMInBytes)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size (use 512m, 2g)")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a size (use 512m, 2g)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def nano_cpus(value: object) -> int:
    """`"0.5"` -> 500_000_000."""
    try:
        cpus = float(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a number of CPUs (use 0.5, 2)") from None
    if cpus < 0:
        raise ValueError(f"{value!r} is not a number of CPUs (use 0.5, 2)")
    return int(round(cpus * 10**9))
