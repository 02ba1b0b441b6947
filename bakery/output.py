"""Small shared pieces of what commands print: node tables and teardown results."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from .errors import EXIT_FAILED, EXIT_OK

# `down --output json`'s "result".
REMOVED, NOTHING, INCOMPLETE = "removed", "nothing-to-remove", "incomplete"


def print_table(rows: Sequence[dict[str, Any]], cols: Sequence[str], headers: Sequence[str] = ()) -> None:
    """Left-aligned columns with a header row, as `docker node ls` prints them.

    `headers` names the columns (default: the keys, upper-cased, `_` as a space).
    """
    head = tuple(headers) or tuple(c.upper().replace("_", " ") for c in cols)
    table = [head] + [tuple(_cell(r[c]) for c in cols) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def teardown_result(command: str, cluster: str, removed: Sequence[str], problems: Sequence[str], *,
                    looked: str, output: str = "text") -> int:
    """What `down` prints, and its exit code.

    - problems: each on stderr (exit 1; the records are kept, so running it again retries);
    - nothing removed and no problems: one stderr line saying so, with where it `looked` (exit 0,
      so teardown is idempotent: a second `down`, or a cluster that never was);
    - else `cluster NAME removed` (exit 0).

    With output "json", stdout holds instead `{"cluster", "result", "removed", "problems"}`, result
    being "removed", "nothing-to-remove" or "incomplete"; the stderr lines stay.
    """
    result = INCOMPLETE if problems else REMOVED if removed else NOTHING
    for problem in problems:
        print(f"bakery {command}: could not remove: {problem}", file=sys.stderr)
    if result == NOTHING:
        print(f"bakery {command}: cluster {cluster}: nothing to remove ({looked})", file=sys.stderr)
    if output == "json":
        print(json.dumps({"cluster": cluster, "result": result, "removed": list(removed),
                          "problems": list(problems)}, indent=2))
    elif result == REMOVED:
        print(f"cluster {cluster} removed")
    return EXIT_FAILED if problems else EXIT_OK


def print_plan(args: Any, name: str, exists: bool, lines: list[str], notes: list[str]) -> int:
    """A `--dry-run` plan of `up`/`roll` (every provider): numbered lines and notes, or the same as JSON."""
    if args.output == "json":
        print(json.dumps({"cluster": name, "cluster_exists": exists, "dry_run": True, "plan": lines,
                          "notes": notes}, indent=2))
        return EXIT_OK
    print_lines(f"cluster {name} ({'up' if exists else 'new'}): {'plan' if exists else 'would be booted'}:",
                lines, notes)
    return EXIT_OK


def print_lines(header: str, lines: list[str], notes: list[str]) -> None:
    """A plan as text: the header, each line indented, then each note."""
    print(header)
    for line in lines:
        print(f"  {line}")
    for note in notes:
        print(f"  note: {note}")
