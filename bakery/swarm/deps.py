"""Service ordering: `depends_on` (list or map form) plus bakery's `x-bakery.depends_on`.

The converter emits `x-bakery: {depends_on: {svc: {dep: condition}}}` for
compose conditions, since a v3 stack's depends_on has no conditions. A cycle
or an unknown service is refused with its YAML path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import CONDITIONS, Condition
from .parts import Invalid


def dependencies(data: Mapping[str, Any]) -> dict[str, tuple[tuple[str, Condition], ...]]:
    """`depends_on` (list or map) merged with `x-bakery.depends_on` conditions; checked for cycles."""
    services = data.get("services") or {}
    extra = ((data.get("x-bakery") or {}).get("depends_on")) or {}
    out: dict[str, tuple[tuple[str, Condition], ...]] = {}
    for key in sorted(services):
        deps: dict[str, str] = {}
        raw = (services[key] or {}).get("depends_on") or []
        for dep in raw:
            cond = raw[dep].get("condition") if isinstance(raw, Mapping) and raw[dep] else None
            deps[str(dep)] = str(cond or "service_started")
        for dep, cond in (extra.get(key) or {}).items():
            deps[str(dep)] = str(cond)
        for dep, cond in deps.items():
            if dep not in services:
                raise Invalid(("services", key, "depends_on"), f"depends on {dep!r}, which is not a service")
            if cond not in CONDITIONS:
                raise Invalid(
                    ("services", key, "depends_on", dep),
                    f"unknown condition {cond!r}",
                    "use " + ", ".join(CONDITIONS),
                )
        out[key] = tuple(sorted(deps.items()))  # type: ignore[arg-type]
    _check_cycles(out)
    return out


def _check_cycles(deps: Mapping[str, tuple[tuple[str, Condition], ...]]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = trail[trail.index(node) :] + [node]
            raise Invalid(
                ("services", node, "depends_on"),
                "dependency cycle: " + " -> ".join(cycle),
                "remove one of these depends_on entries",
            )
        state[node] = 1
        for dep, _ in deps[node]:
            visit(dep, trail + [node])
        state[node] = 2

    for node in deps:
        visit(node, [])
