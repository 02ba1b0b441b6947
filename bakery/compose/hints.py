"""Classic-Swarm scheduling hints into swarm-mode placement constraints.

Classic Swarm read hints from environment entries (`constraint:node==web1`,
`affinity:container!=db`, `reschedule:on-node-failure`) and from the labels
`com.docker.swarm.constraints` / `.affinities` / `.reschedule-policies`
(JSON arrays of strings). Values: `~X` is soft, `/re/` a regex, otherwise
`*` globs. Swarm mode matches exactly (case-insensitively) and takes `*`
literally, so globs and regexes are expanded against a node inventory, or
refused: a literal `*` would leave tasks pending forever.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..report import Kind, Report, Severity
from .model import NodeInfo, Ref

HINT_PREFIXES = ("constraint:", "affinity:", "reschedule:")
HINT_LABELS = {
    "com.docker.swarm.constraints": "constraint",
    "com.docker.swarm.affinities": "affinity",
    "com.docker.swarm.reschedule-policies": "reschedule",
}
DEFAULT_TAGS = ("storagedriver", "executiondriver", "kernelversion", "operatingsystem")
_EXPR = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.\-/]+)\s*(?P<op>==|!=)\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Hint:
    kind: str  # constraint, affinity, reschedule
    text: str  # what follows `kind:`
    ref: Ref  # where it was written

    @property
    def key(self) -> str:
        """The service key it was written under (environment, labels, env_file)."""
        return str(self.ref.path[2]) if len(self.ref.path) > 2 else ""


def beside_hints(key: str, value: Any) -> bool:
    """Whether environment or labels hold anything besides hints (that part is kept exactly)."""
    if not isinstance(value, dict):
        return bool(value)
    if key == "labels":
        return any(k not in HINT_LABELS for k in value)
    return any(not str(k).startswith(HINT_PREFIXES) for k in value)


def _entry_ref(ref: Ref, key: str) -> Ref:
    """The list item or mapping key a hint was written at, when the source still has it."""
    raw: Any = ref.doc.data
    for part in ref.path:
        raw = raw.get(part) if isinstance(raw, dict) else None
    if isinstance(raw, list) and key in raw:
        return Ref(ref.doc, (*ref.path, raw.index(key)))
    if isinstance(raw, dict) and key in raw:
        return Ref(ref.doc, (*ref.path, key))
    return ref


def from_environment(env: dict[str, str | None], ref: Ref) -> tuple[dict[str, str | None], list[Hint]]:
    """Split hints out of a normalised environment mapping."""
    kept: dict[str, str | None] = {}
    hints: list[Hint] = []
    for key, value in env.items():
        if not key.startswith(HINT_PREFIXES):
            kept[key] = value
            continue
        kind, _, rest = key.partition(":")
        if value is not None:  # "constraint:node" = "=web1" (a list entry split at its first =)
            rest = rest + value if value.startswith(("==", "!=")) else f"{rest}={value}"
        hints.append(Hint(kind, rest, _entry_ref(ref, key)))
    return kept, hints


def from_labels(labels: dict[str, str], ref: Ref) -> tuple[dict[str, str], list[Hint]]:
    kept: dict[str, str] = {}
    hints: list[Hint] = []
    for key, value in labels.items():
        kind = HINT_LABELS.get(key)
        if kind is None:
            kept[key] = value
            continue
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _entry_ref(ref, key).error(f"{key} must hold a JSON array of strings, not {value!r}",
                                             f"write {key}: '[\"node==web1\"]'")
        hints.extend(Hint(kind, item, _entry_ref(ref, key)) for item in items)
    return kept, hints


def _pattern(value: str) -> re.Pattern[str] | None:
    """A regex for a glob or /regex/ value; None for a plain value."""
    if len(value) >= 2 and value.startswith("/") and value.endswith("/"):
        try:
            return re.compile(value[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"bad regular expression {value}: {exc}") from None
    if any(c in value for c in "*?["):
        return re.compile(fnmatch.translate(value), re.IGNORECASE)
    return None


def _node_value(node: NodeInfo, key: str) -> str | None:
    return node.hostname if key == "node" else node.engine_labels.get(key)


class Placement:
    """Collects constraints for one service from its hints."""

    def __init__(self, service: str, nodes: Sequence[NodeInfo] | None, report: Report) -> None:
        self.service = service
        self.nodes = nodes
        self.report = report
        self.constraints: list[str] = []
        self.global_mode = False

    def _note(self, hint: Hint, level: Severity, message: str, code: str, fix: str | None = None,
              kind: Kind = "note") -> None:
        hint.ref.add(self.report, level, message, code, fix, kind=kind, subject=f"service {self.service}")

    def add(self, hint: Hint) -> None:
        if hint.kind == "reschedule":
            policy = hint.text.strip()
            level: Severity = "info" if policy == "on-node-failure" else "warning"
            self._note(hint, level, f"reschedule:{policy} dropped: swarm always reschedules tasks of failed nodes",
                       "compose.hint.reschedule", kind="note" if level == "info" else "lost")
            return
        m = _EXPR.match(hint.text)
        if m is None:
            raise hint.ref.error(f"cannot read the hint {hint.kind}:{hint.text!r}",
                                 "write constraint:KEY==VALUE or constraint:KEY!=VALUE")
        key, op, value = m.group("key"), m.group("op"), m.group("value")
        if hint.kind == "affinity" and self._self_anti_affinity(key, op, value):
            self.global_mode = True
            self._note(hint, "info", f"affinity:{hint.text} rewritten as at most one task per node: deploy.mode "
                       "global, or with a scale placement.max_replicas_per_node 1", "compose.hint.global",
                       kind="rewritten")
        elif hint.kind == "affinity":
            self._note(hint, "warning", f"affinity:{hint.text} has no swarm-mode equivalent; dropped",
                       "compose.hint.affinity",
                       "label the nodes and use a placement constraint, or run both parts in one service", "lost")
        elif value.startswith("~"):
            self._note(hint, "warning", f"soft constraint {hint.text} has no swarm-mode equivalent; dropped",
                       "compose.hint.soft", "make it a hard constraint by removing the ~, or drop it", "lost")
        elif key in DEFAULT_TAGS:
            self._note(hint, "warning", f"constraint on classic-Swarm tag {key!r} has no swarm-mode "
                       "equivalent; dropped", "compose.hint.tag",
                       f"label the nodes (docker node update --label-add {key}=...) and constrain on "
                       f"node.labels.{key}", "lost")
        else:
            self._constraint(hint, key, op, value)

    def _self_anti_affinity(self, key: str, op: str, value: str) -> bool:
        """`affinity:container!=*name*` on service `name`: classic Swarm's "one per node" idiom."""
        if key != "container" or op != "!=":
            return False
        try:
            pattern = _pattern(value)
        except ValueError:
            return False
        names = (self.service, f"project_{self.service}_1", f"project-{self.service}-1")
        if pattern is None:
            return value == self.service
        return any(pattern.match(n) for n in names)

    def _constraint(self, hint: Hint, key: str, op: str, value: str) -> None:
        field = "node.hostname" if key == "node" else f"engine.labels.{key}"
        try:
            pattern = _pattern(value)
        except ValueError as exc:
            raise hint.ref.error(str(exc), "fix the regular expression") from None
        if pattern is None:
            self.constraints.append(f"{field}{op}{value}")
            self._note(hint, "info", f"{hint.kind}:{hint.text} rewritten as placement constraint {field}{op}{value}",
                       "compose.hint.constraint", kind="rewritten")
            return
        if self.nodes is None:
            raise hint.ref.error(
                f"constraint {hint.text!r} uses a pattern; swarm takes {value!r} literally and the tasks "
                "would pend forever", "pass --nodes FILE to expand it against your nodes, or write the exact value")
        matching = sorted(n.hostname for n in self.nodes if pattern.match(_node_value(n, key) or "") and
                          _node_value(n, key) is not None)
        others = sorted(n.hostname for n in self.nodes if n.hostname not in matching)
        if op == "==" and not matching:
            raise hint.ref.error(f"constraint {hint.text!r} matches none of the {len(self.nodes)} nodes",
                                 "check the pattern and the node inventory")
        if op == "==" and len(matching) == 1:
            added = [f"node.hostname=={matching[0]}"]
        else:
            # Constraints are ANDed, so "one of these nodes" is written as "none of the others".
            excluded = others if op == "==" else matching
            added = [f"node.hostname!={h}" for h in excluded]
        self.constraints.extend(added)
        written = ", ".join(added) or "none (every node matches)"
        self._note(hint, "info", f"{hint.kind}:{hint.text} rewritten as placement constraints {written}: "
                   f"expanded against the node inventory ({len(matching)} of {len(self.nodes)} nodes match); "
                   "nodes added later are not covered", "compose.hint.expanded", kind="rewritten")

    def result(self) -> list[str]:
        return sorted(set(self.constraints))


def place(service: str, hints: list[Hint], nodes: Sequence[NodeInfo] | None,
          report: Report) -> tuple[list[str], bool]:
    """Constraints for the hints, and whether they ask for one task per node (global mode)."""
    placement = Placement(service, nodes, report)
    for hint in hints:
        placement.add(hint)
    return placement.result(), placement.global_mode

