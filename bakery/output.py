"""Small shared pieces of what commands print: node tables and teardown results."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .errors import EXIT_FAILED, EXIT_OK


def print_table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> None:
    """Left-aligned columns with a header row, as `docker node ls` prints them."""
    table = [tuple(cols)] + [tuple(str(r[c]) for c in cols) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def teardown_result(command: str, cluster: str, problems: Sequence[str]) -> int:
    """What `down` prints: each leftover on stderr (exit 1, run again to retry), or success."""
    if problems:
        for problem in problems:
            print(f"bakery {command}: could not remove: {problem}", file=sys.stderr)
        return EXIT_FAILED
    print(f"cluster {cluster} removed")
    return EXIT_OK
