"""Compare the specs a stack file asks for with what the swarm runs.

A service is unchanged when the spec hash label matches the file and the
live spec still contains every value of the desired one (someone may have
run `docker service update` by hand). Values the engine fills in on its own
(`Isolation: default`, `ForceUpdate: 0`, omitted zeros) are not differences.
Networks and volumes cannot be changed in place: a difference is a warning.
The node labels of pattern hints are planned first (swarm/labels.py), and the
placement check sees the nodes as they will be labelled.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import UserError
from ..report import Report
from . import constraints, labels, specs
from .engine import Engine
from .model import HASH_LABEL, KIND_ORDER, NAMESPACE_LABEL, Change, Desired, Kind, Plan, ServiceRun, Spec
from .objects import CONTENT_LABEL

_COMPARED = {
    "network": ("Driver", "Options", "Labels", "Attachable", "Internal", "EnableIPv6", "IPAM"),
    "volume": ("Driver", "Labels", "Options"),
}


def _empty(value: Any) -> bool:
    return value is None or value == 0 or value == "" or value is False or value == [] or value == {}


def differences(want: Any, have: Any, path: str = "") -> list[str]:
    """Paths where `have` does not contain `want` (dicts: every wanted key; lists: element-wise)."""
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return [] if _empty(want) and _empty(have) else [path or "."]
        out: list[str] = []
        for key, value in want.items():
            out += differences(value, have.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [] if _empty(want) and _empty(have) else [path]
        found = [d for w, h in zip(want, have, strict=True) for d in differences(w, h, path)]
        return [path] if found else []
    if _empty(want) and _empty(have):
        return []
    return [] if want == have else [path]


def _predefined_by_name(want: Spec, live: Spec, refs: Mapping[str, str]) -> Spec:
    """The live spec with a predefined network (host) named as the file names it: the engine stores
    it under an ID of the swarm's that no network listing shows (every deploy was an update)."""
    names = [n["Target"] for n in want["TaskTemplate"].get("Networks", []) if n["Target"] in specs.PREDEFINED_NETWORKS]
    nets = live.get("TaskTemplate", {}).get("Networks") or []
    known = set(refs.values())
    unknown = [n for n in nets if n.get("Target") not in known]
    if len(names) != 1 or len(unknown) != 1:
        return live
    out = copy.deepcopy(live)
    for net in out["TaskTemplate"]["Networks"]:
        if net.get("Target") == unknown[0]["Target"]:
            net["Target"] = names[0]
    return out


def resolve(spec: Spec, refs: Mapping[str, str]) -> Spec:
    """A service spec as the engine stores it: network, secret and config references by ID."""
    out = copy.deepcopy(spec)
    task = out["TaskTemplate"]
    for net in task.get("Networks", []):
        if net["Target"] not in specs.PREDEFINED_NETWORKS:  # by name: the engine keeps a swarm-side ID of its own
            net["Target"] = refs.get(f"network:{net['Target']}", net["Target"])
    container = task["ContainerSpec"]
    for kind in ("Secret", "Config"):
        for ref in container.get(f"{kind}s", []):
            ident = refs.get(f"{kind.lower()}:{ref[f'{kind}Name']}")
            if ident:
                ref[f"{kind}ID"] = ident
    return out


def _by_name(items: list[dict[str, Any]], kind: Kind) -> dict[str, dict[str, Any]]:
    if kind in ("service", "secret", "config"):
        return {i["Spec"]["Name"]: i for i in items}
    return {i["Name"]: i for i in items}


def _refs(live: Mapping[Kind, list[dict[str, Any]]]) -> dict[str, str]:
    refs = {f"network:{n['Name']}": n["Id"] for n in live["network"]}
    for kind in ("secret", "config"):
        refs.update({f"{kind}:{i['Spec']['Name']}": i["ID"] for i in live[kind]})
    return refs


def _compare(want: Desired, have: dict[str, Any] | None, refs: Mapping[str, str], report: Report) -> Change:
    if have is None:
        return Change(want.kind, want.key, want.name, "create", want.spec, data=want.data)
    if want.kind == "service":
        wanted = resolve(want.spec, refs)
        spec = _predefined_by_name(wanted, have["Spec"], refs)
        diffs = differences(wanted, spec)
        if not diffs and (spec.get("Labels") or {}).get(HASH_LABEL) == want.spec["Labels"][HASH_LABEL]:
            return Change("service", want.key, want.name, "unchanged", want.spec, have["ID"])
        reasons = tuple(sorted(set(d for d in diffs if not d.endswith(HASH_LABEL)))) or ("spec changed",)
        started = (have.get("UpdateStatus") or {}).get("StartedAt")
        live_spec = copy.deepcopy(spec)
        version = int(have["Version"]["Index"])
        return Change(
            "service",
            want.key,
            want.name,
            "update",
            want.spec,
            have["ID"],
            version,
            live_spec,
            reasons,
            live_update_started=started,
        )
    ident = have.get("ID") or have.get("Id") or have.get("Name")
    if want.kind in ("secret", "config"):
        live_hash = (have["Spec"].get("Labels") or {}).get(CONTENT_LABEL)
        if live_hash != want.spec["Labels"][CONTENT_LABEL]:
            raise UserError(
                f"{want.kind} {want.name} exists with other content and cannot be changed in place",
                path=(f"{want.kind}s", want.key, "name"),
                fix="drop `name:` so bakery versions it, or remove the old one",
            )
    else:
        live = {**have, "Options": have.get("Options") or have.get("DriverOpts")}
        wanted = {k: v for k, v in want.spec.items() if k in _COMPARED[want.kind]}
        if want.kind == "volume":
            wanted["Options"] = want.spec.get("DriverOpts")
        diffs = differences(wanted, live)
        if diffs:
            report.warn(
                f"the live {want.name} differs from the file ({', '.join(diffs)}) and is left as it is",
                path=(f"{want.kind}s", want.key),
                code="deploy.immutable",
                fix=f"{want.kind}s cannot be changed in place; remove the stack's {want.kind} to recreate it",
            )
    return Change(want.kind, want.key, want.name, "unchanged", want.spec, str(ident))


def _check_placement(stack: specs.StackSpecs, nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Eligible node count per service; a constraint no node meets is refused here."""
    counts = {}
    for want in stack.objects:
        if want.kind != "service":
            continue
        placement = want.spec["TaskTemplate"].get("Placement") or {}
        exprs = placement.get("Constraints") or []
        where = stack.refs[want.key]
        path = ("deploy", "placement", "constraints")
        try:
            fit = constraints.eligible(nodes, exprs)
        except constraints.ConstraintError as exc:
            raise where.error(str(exc), None, *path) from None
        if not fit:
            raise where.error(f"no node satisfies {' and '.join(exprs) or 'scheduling'}",
                              f"nodes are: {constraints.describe(nodes)}", *path)
        counts[want.key] = len(fit)
    return counts


def _order(runs: tuple[ServiceRun, ...]) -> list[str]:
    """Services in dependency order (then by name), so the plan reads in apply order."""
    done: list[str] = []
    deps = {r.key: [d for d, _ in r.depends_on] for r in runs}
    while len(done) < len(deps):
        ready = sorted(k for k, ds in deps.items() if k not in done and all(d in done for d in ds))
        done += ready
    return done


def plan(
    engine: Engine | None,
    wanted: specs.StackSpecs,
    *,
    prune: bool = False,
) -> tuple[Plan, Report]:
    """The changes that make the swarm run `wanted` (from `specs.build`), and what the diff found.

    With no engine (`None`) the plan is for an empty swarm: every object is a `create`, and
    placement constraints and external objects are not checked (there is nothing to check them
    against); a finding says so."""
    report = Report()
    stack = wanted.stack
    node_changes: list[Change] = []
    if engine is None:
        live: dict[Kind, list[dict[str, Any]]] = {kind: [] for kind in KIND_ORDER}
        counts: dict[str, int] = {}
        hinted = " and the nodes pattern hints label" if wanted.node_labels else ""
        report.info(f"planned against an empty swarm: placement constraints, external objects{hinted} were not "
                    "checked")
    else:
        live = engine.stack_objects(stack)
    refs = _refs(live)
    if engine is not None:
        for kind, name in wanted.external:
            if f"{kind}:{name}" not in refs and kind != "volume":
                raise UserError(f"external {kind} {name} does not exist", fix=f"create it first (docker {kind} create)")
        nodes = engine.nodes()
        # Hint labels other services name stay: those of other stacks, and this stack's services the
        # file no longer has unless --prune removes them (the services this deploy writes name its hints).
        written = {w.name for w in wanted.objects if w.kind == "service"}
        others = [svc for svc in engine.all_services()
                  if (svc.get("Spec") or {}).get("Name") not in written
                  and not (prune and ((svc.get("Spec") or {}).get("Labels") or {}).get(NAMESPACE_LABEL) == stack)]
        node_changes = labels.plan_labels(wanted.node_labels, nodes, labels.named_hint_labels(others))
        counts = _check_placement(wanted, labels.labelled(nodes, node_changes))
    runs = tuple(
        ServiceRun(
            r.key,
            r.depends_on,
            counts.get(r.key, r.expected_tasks) if r.global_mode else r.expected_tasks,
            r.job,
            r.global_mode,
            r.restarts,
        )
        for r in wanted.runs
    )
    by_kind = {kind: _by_name(live[kind], kind) for kind in KIND_ORDER}
    order = {key: i for i, key in enumerate(_order(runs))}
    objects = sorted(wanted.objects, key=lambda d: (KIND_ORDER.index(d.kind), order.get(d.key, 0), d.name))
    changes = node_changes + [_compare(w, by_kind[w.kind].get(w.name), refs, report) for w in objects]
    stale = _stale(stack, by_kind, {w.name for w in wanted.objects})
    if prune:
        changes += stale
    elif stale:
        report.info(
            f"{len(stale)} object(s) of stack {stack} are no longer in the file and are kept "
            "(--prune removes them): " + ", ".join(c.name for c in stale)
        )
    return Plan(stack, tuple(changes), runs, refs), report


def _stale(stack: str, live: Mapping[Kind, Mapping[str, dict[str, Any]]], wanted: set[str]) -> list[Change]:
    """Stack objects the file no longer has, services first. Volumes are never pruned: they hold data."""
    out = []
    for kind in ("service", "network", "secret", "config"):
        for name, obj in sorted(live[kind].items()):
            labels = (obj.get("Spec") or obj).get("Labels") or {}
            if labels.get(NAMESPACE_LABEL) == stack and name not in wanted:
                ident = obj.get("ID") or obj.get("Id")
                out.append(Change(kind, name, name, "remove", live_id=ident))
    return out
