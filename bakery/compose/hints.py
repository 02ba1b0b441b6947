"""Classic-Swarm scheduling hints into swarm-mode placement constraints.

Classic Swarm read hints from environment entries (`constraint:node==web1`,
`affinity:container!=db`, `reschedule:on-node-failure`) and from the labels
`com.docker.swarm.constraints` / `.affinities` / `.reschedule-policies`
(JSON arrays of strings). Values: `~X` is soft, `/re/` a regex, otherwise
`*` globs. Swarm mode matches exactly (case-insensitively) and takes `*`
literally (the tasks would pend forever), so a pattern becomes a constraint on a
node label named after the hint (`node.labels.bakery.hint.<hash>==true`): the
nodes the hint admits carry it. `bakery deploy` labels them from the live swarm;
for `docker stack deploy` the report says which `docker node update` commands to
run (the nodes from `--nodes`). A node added later gets no task until it is
labelled, so the hint never admits a node it does not match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..report import Finding, Kind, Severity
from ..stack import values
from ..stack.model import NodeLabel
from .model import NodeInfo, Ref

HINT_PREFIXES = ("constraint:", "affinity:", "reschedule:")
HINT_LABELS = {
    "com.docker.swarm.constraints": "constraint",
    "com.docker.swarm.affinities": "affinity",
    "com.docker.swarm.reschedule-policies": "reschedule",
}
DEFAULT_TAGS = ("storagedriver", "executiondriver", "kernelversion", "operatingsystem")


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
    try:
        return values.hint_pattern(value)
    except values.BadValue as exc:
        raise ValueError(exc.message) from None


def _node_value(node: NodeInfo, key: str) -> str | None:
    return node.hostname if key == "node" else node.engine_labels.get(key)


class Placement:
    """Collects constraints for one service from its hints."""

    def __init__(self, service: str, nodes: Sequence[NodeInfo] | None) -> None:
        self.service = service
        self.nodes = nodes
        self.findings: list[Finding] = []
        self.constraints: list[str] = []
        self.labels: dict[str, NodeLabel] = {}
        self.global_mode = False

    def _note(self, hint: Hint, level: Severity, message: str, code: str, fix: str | None = None,
              kind: Kind = "note") -> None:
        self.findings.append(hint.ref.finding(level, message, code, fix, kind=kind, subject=f"service {self.service}"))

    def add(self, hint: Hint) -> None:
        if hint.kind == "reschedule":
            policy = hint.text.strip()
            level: Severity = "info" if policy == "on-node-failure" else "warning"
            self._note(hint, level, f"reschedule:{policy} dropped: swarm always reschedules tasks of failed nodes",
                       "compose.hint.reschedule", kind="note" if level == "info" else "lost")
            return
        parts = values.hint_parts(hint.text)
        if parts is None:
            raise hint.ref.error(f"cannot read the hint {hint.kind}:{hint.text!r}",
                                 "write constraint:KEY==VALUE or constraint:KEY!=VALUE")
        key, op, value = parts
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
        return any(values.hint_matches(pattern, n) for n in names)

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
        label = NodeLabel(values.hint_label(key, op, value), key, op, value, hint.ref)
        self.labels[label.label] = label
        self.constraints.append(label.constraint)
        self._note(hint, "info", f"{hint.kind}:{hint.text} rewritten as placement constraint {label.constraint} "
                   "(swarm has no patterns): bakery deploy labels the live nodes it admits and unlabels the others, "
                   "at every deploy; a node added later gets tasks only once labelled", "compose.hint.node_label",
                   kind="rewritten")
        self._commands(hint, label)

    def _commands(self, hint: Hint, label: NodeLabel) -> None:
        """What a `docker stack deploy` user runs first: the label on each node the hint admits."""
        add = f"docker node update --label-add {label.label}=true"
        if self.nodes is None:
            whose = "hostname" if label.key == "node" else f"engine label {label.key}"
            admits = "matches" if label.op == "==" else "does not match"
            self._note(hint, "warning", f"for docker stack deploy, label every node whose {whose} {admits} "
                       f"{label.value} first: {add} NODE", "compose.hint.label_nodes",
                       "pass --nodes FILE to list the commands; bakery deploy labels the nodes itself")
            return
        admitted = sorted(n.hostname for n in self.nodes if label.admits(n.hostname, n.engine_labels))
        if not admitted:
            raise hint.ref.error(f"constraint {hint.text!r} admits none of the {len(self.nodes)} nodes: its tasks "
                                 "would pend forever", "check the pattern and the node inventory")
        commands = "; ".join(f"{add} {h}" for h in admitted)
        self._note(hint, "warning", f"for docker stack deploy, label the {len(admitted)} of {len(self.nodes)} nodes "
                   f"it admits first: {commands}", "compose.hint.label_nodes",
                   "bakery deploy labels the nodes itself, and a node added later at its next deploy")

    def result(self) -> list[str]:
        return sorted(set(self.constraints))


@dataclass(frozen=True)
class Placed:
    constraints: list[str]
    global_mode: bool  # one task per node
    labels: dict[str, NodeLabel]  # the node labels the constraints name, by label
    findings: tuple[Finding, ...] = ()  # what became of each hint


def place(service: str, hints: Sequence[Hint], nodes: Sequence[NodeInfo] | None) -> Placed:
    """Constraints for the hints, whether they ask for one task per node (global mode), the
    node labels that stand for pattern hints, and what became of each hint."""
    placement = Placement(service, nodes)
    for hint in hints:
        placement.add(hint)
    return Placed(placement.result(), placement.global_mode, dict(sorted(placement.labels.items())),
                  tuple(placement.findings))

