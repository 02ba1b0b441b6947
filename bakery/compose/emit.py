"""The stack as YAML: deterministic bytes, the layout `docker stack config` prints.

`version` first, then services, networks, volumes, secrets, configs and
`x-bakery`; inside those, keys are sorted. Strings that YAML would read as
something else (yes, 1.0, 012) are quoted by the dumper.
"""

from __future__ import annotations

from typing import Any

import yaml

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
TOP_ORDER = ("version", "services", "networks", "volumes", "secrets", "configs", "x-bakery")


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def ordered(stack: dict[str, Any]) -> dict[str, Any]:
    """The stack with the top-level order above and every mapping below it sorted."""
    keys = [k for k in TOP_ORDER if k in stack] + sorted(k for k in stack if k not in TOP_ORDER)
    return {k: _sorted(stack[k]) for k in keys}


def dumps(stack: dict[str, Any]) -> str:
    text: str = yaml.dump(ordered(stack), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1000)
    return text
