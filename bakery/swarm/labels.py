"""The node labels that stand for classic-Swarm pattern hints, against the live nodes.

A hint such as `constraint:node==web*` became the constraint
`node.labels.bakery.hint.<hash>==true` (stack.model.NodeLabel). At every deploy
the nodes the hint admits get that label and the ones that carry it but no
longer match lose it, matched against the live hostnames and engine labels, so a
node that joined since the last deploy is labelled now, and one that did not
match never gets tasks. A hint that admits no live node is refused: its tasks
would pend forever. A hint label no service names any more (its hint left the
file, or the stack was removed) is taken off the nodes that carry it, unless a
service of another stack still names it. The label edits come first in the
plan, before any service is created or updated, and a rollback puts the old
values back.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..stack.model import NodeLabel
from .model import Change, LabelEdit


def _hostname(node: Mapping[str, Any]) -> str:
    return str((node.get("Description") or {}).get("Hostname") or node.get("ID", "?"))


def _engine_labels(node: Mapping[str, Any]) -> dict[str, str]:
    return dict(((node.get("Description") or {}).get("Engine") or {}).get("Labels") or {})


def _shown(hint: NodeLabel, nodes: Sequence[Mapping[str, Any]]) -> str:
    """The live nodes as the hint sees them: `web1`, or `web1 (disk=ssd)` for an engine label."""
    out = []
    for n in nodes:
        have = _engine_labels(n).get(hint.key)
        out.append(_hostname(n) if hint.key == "node" else f"{_hostname(n)} ({hint.key}={have or 'unset'})")
    return ", ".join(out) or "none"


HINT_PREFIX = "bakery.hint."
_NAMED = re.compile(r"node\.labels\.(bakery\.hint\.[0-9a-f]+)\s*(?:==|!=)")
UNUSED = "no service names it any more"


def named_hint_labels(services: Iterable[Mapping[str, Any]]) -> set[str]:
    """The hint labels these live services' placement constraints name."""
    found: set[str] = set()
    for svc in services:
        placement = (((svc.get("Spec") or {}).get("TaskTemplate") or {}).get("Placement") or {})
        for constraint in placement.get("Constraints") or ():
            found.update(_NAMED.findall(str(constraint)))
    return found


def plan_labels(hints: Iterable[NodeLabel], nodes: Sequence[Mapping[str, Any]],
                in_use: set[str] | None = None) -> list[Change]:
    """One `update` per node whose hint labels must change, by hostname; raises a located
    UserError for a hint that admits no live node. With `in_use` (the hint labels services
    outside this deploy name), a hint label neither these hints nor those name is taken off."""
    hints = list(hints)
    edits: dict[str, list[LabelEdit]] = {}
    if in_use is not None:
        keep = in_use | {h.label for h in hints}
        for node in nodes:
            for label, have in sorted(((node.get("Spec") or {}).get("Labels") or {}).items()):
                if label.startswith(HINT_PREFIX) and label not in keep:
                    edits.setdefault(str(node["ID"]), []).append(LabelEdit(label, UNUSED, have, None))
    for hint in hints:
        admitted = 0
        for node in nodes:
            want = "true" if hint.admits(_hostname(node), _engine_labels(node)) else None
            admitted += want is not None
            have = ((node.get("Spec") or {}).get("Labels") or {}).get(hint.label)
            if have != want:
                edits.setdefault(str(node["ID"]), []).append(LabelEdit(hint.label, hint.hint, have, want))
        if not admitted:
            verb = "matches" if hint.op == "==" else "admits"
            raise hint.ref.error(
                f"constraint {hint.hint!r} {verb} none of the {len(nodes)} live node(s): its tasks would pend "
                f"forever", f"the nodes are: {_shown(hint, nodes)}; check the pattern")
    by_id = {str(n["ID"]): n for n in nodes}
    changes = [Change("node", _hostname(by_id[ident]), _hostname(by_id[ident]), "update", live_id=ident,
                      reasons=tuple(f"{e} ({e.hint})" for e in found), labels=tuple(found))
               for ident, found in edits.items()]
    return sorted(changes, key=lambda c: (c.name, c.live_id or ""))


def labelled(nodes: Sequence[Mapping[str, Any]], changes: Iterable[Change]) -> list[dict[str, Any]]:
    """The nodes as they will be once the label edits are made (for the placement check)."""
    out = [copy.deepcopy(dict(n)) for n in nodes]
    by_id = {str(n["ID"]): n for n in out}
    for change in changes:
        spec = by_id[str(change.live_id)].setdefault("Spec", {})
        labels = dict(spec.get("Labels") or {})
        for e in change.labels:
            if e.after is None:
                labels.pop(e.label, None)
            else:
                labels[e.label] = e.after
        spec["Labels"] = labels
    return out
