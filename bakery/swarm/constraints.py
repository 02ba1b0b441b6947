"""Placement constraints, checked against the live nodes before anything is created.

The rules are swarmkit's: `key==value` or `key!=value`, exact and
case-insensitive; a node label that is absent only satisfies `!=`; `node.ip`
also takes a CIDR. A `*` is literal, which is why a globbed constraint from
classic Swarm leaves tasks pending forever: we refuse it up front instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

_EXPR = re.compile(r"^\s*([\w.-]+)\s*(==|!=)\s*(.*?)\s*$")
_FIXED = ("node.id", "node.hostname", "node.role", "node.ip", "node.platform.os", "node.platform.arch")


class ConstraintError(ValueError):
    pass


def parse(expr: str) -> tuple[str, str, str]:
    match = _EXPR.match(expr)
    if not match or not match.group(3):
        raise ConstraintError(f"{expr!r} is not a constraint (use node.role==manager or node.labels.KEY==VALUE)")
    key, op, value = match.groups()
    if key.lower() not in _FIXED and not key.lower().startswith(("node.labels.", "engine.labels.")):
        raise ConstraintError(
            f"{expr!r}: unknown key {key!r} (use node.id, node.hostname, node.role, node.ip, "
            "node.platform.os, node.platform.arch, node.labels.KEY or engine.labels.KEY)"
        )
    return key, op, value


def _node_value(node: Mapping[str, Any], key: str) -> str | None:
    desc, spec = node.get("Description") or {}, node.get("Spec") or {}
    lower = key.lower()
    fixed = {
        "node.id": node.get("ID"),
        "node.hostname": desc.get("Hostname"),
        "node.role": spec.get("Role"),
        "node.ip": (node.get("Status") or {}).get("Addr"),
        "node.platform.os": (desc.get("Platform") or {}).get("OS"),
        "node.platform.arch": (desc.get("Platform") or {}).get("Architecture"),
    }
    if lower in fixed:
        return fixed[lower]
    if lower.startswith("node.labels."):
        return (spec.get("Labels") or {}).get(key[len("node.labels.") :])
    return ((desc.get("Engine") or {}).get("Labels") or {}).get(key[len("engine.labels.") :])


def _equal(key: str, have: str, want: str) -> bool:
    if key.lower() == "node.ip" and "/" in want:
        try:
            return ipaddress.ip_address(have) in ipaddress.ip_network(want, strict=False)
        except ValueError:
            return False
    return have.lower() == want.lower()


def satisfies(node: Mapping[str, Any], constraints: Iterable[str]) -> bool:
    for expr in constraints:
        key, op, want = parse(expr)
        have = _node_value(node, key)
        if have is None:
            if op == "==":
                return False
            continue
        if _equal(key, have, want) != (op == "=="):
            return False
    return True


def usable(node: Mapping[str, Any]) -> bool:
    """Nodes the scheduler places tasks on: ready and active (not paused or drained)."""
    return (node.get("Status") or {}).get("State") == "ready" and (node.get("Spec") or {}).get(
        "Availability"
    ) == "active"


def eligible(nodes: Iterable[Mapping[str, Any]], constraints: Iterable[str]) -> list[Mapping[str, Any]]:
    constraints = list(constraints)
    return [n for n in nodes if usable(n) and satisfies(n, constraints)]


def describe(nodes: Iterable[Mapping[str, Any]]) -> str:
    """`manager1 (role=manager)`: what the user can compare the constraint with."""
    out = []
    for n in nodes:
        labels = ",".join(f"{k}={v}" for k, v in sorted(((n.get("Spec") or {}).get("Labels") or {}).items()))
        host = (n.get("Description") or {}).get("Hostname", n.get("ID", "?"))
        role = (n.get("Spec") or {}).get("Role", "?")
        state = "" if usable(n) else ", not schedulable"
        out.append(f"{host} (role={role}{', labels ' + labels if labels else ''}{state})")
    return "; ".join(out) or "no nodes"
