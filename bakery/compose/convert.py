"""A loaded compose project into a swarm-mode v3 stack and its report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..report import Report
from ..stack.model import NodeLabel
from ..stack.values import version_key
from ..yamlsrc import Document, Path_
from . import network
from .model import NodeInfo, Project, Ref
from .scope import Scope
from .service import convert_service


def locator(project: Project, hints: Mapping[str, Ref] | None = None) -> Callable[[Path_], Ref]:
    """Where a YAML path of the converted stack was written in the compose files: the key of
    the service (or network, volume) that produced it, with the rest of the path below it; a
    node label at the hint it stands for (`hints`), or at its x-bakery entry in a stack file."""
    anchor = next((s.ref for s in project.services.values()), None)

    def locate(path: Path_) -> Ref:
        top, name = (*path, None, None)[:2]
        if top == "node_labels" and anchor is not None:
            found = (hints or {}).get(str(name))
            return found.at(*path[2:]) if found else Ref(anchor.doc, ("x-bakery", *path))
        if top == "services" and name in project.services:
            svc = project.services[str(name)]
            key = str(path[2]) if len(path) > 2 else None
            return svc.at(key).at(*path[3:]) if key in svc.refs else svc.ref.at(*path[2:])
        declared = project.networks if top == "networks" else project.volumes if top == "volumes" else {}
        if name in declared:
            return declared[str(name)][1].at(*path[2:])
        return Ref(anchor.doc, path) if anchor else Ref(Document({}, "<stack>"), path)

    return locate


def _link_aliases(project: Project, services: dict[str, Any]) -> None:
    """`links: [db:database]`: swarm has no links, so `database` becomes a network alias of db on
    the networks the two services share (every service on them sees it: keys.py says so)."""
    def networks(out: dict[str, Any]) -> dict[str, Any]:
        nets = out.get("networks") or ["default"]
        return dict(nets) if isinstance(nets, dict) else {n: None for n in nets}

    for name in sorted(project.services):
        for link in project.services[name].data.get("links") or []:
            target, _, alias = str(link).partition(":")
            if not alias or alias == target or target not in services:
                continue
            shared = set(networks(services[name])) & set(networks(services[target])) - {"host", "none"}
            nets = networks(services[target])
            for net in sorted(shared):
                aliases = set((nets[net] or {}).get("aliases") or []) | {alias}
                nets[net] = {**(nets[net] or {}), "aliases": sorted(aliases)}
            if shared:
                services[target]["networks"] = nets


def _node_labels(project: Project, services: dict[str, Any], found: dict[str, NodeLabel]) -> dict[str, str]:
    """The node labels of pattern hints: those found now, and those a stack file bakery wrote
    keeps in x-bakery.node_labels, when one of its constraints still names them (read as docker
    reads the file: `$$` is one `$`)."""
    out = {label: n.hint for label, n in found.items()}
    written = (project.extras.get("x-bakery") or {}).get("node_labels") or {}
    named = " ".join(str(c) for svc in services.values()
                     for c in ((svc.get("deploy") or {}).get("placement") or {}).get("constraints") or [])
    for label, hint in written.items() if isinstance(written, dict) else ():
        if f"node.labels.{label}" in named:
            out.setdefault(str(label), hint.replace("$$", "$") if isinstance(hint, str) else hint)
    return dict(sorted(out.items()))


def convert_project(project: Project, report: Report, *, nodes: Sequence[NodeInfo] | None = None,
                    image_prefix: str | None = None,
                    publish_mode: str = "ingress") -> tuple[dict[str, Any], str, dict[str, Ref]]:
    """Return the stack as data (values as meant: `$` not escaped, depends_on with its conditions,
    pattern hints' node labels under `node_labels`; emit.stack_file makes the file's form of it),
    the version chosen, and where each node label's hint was written (for `locator`)."""
    needs: set[str] = {"3.0"}
    services: dict[str, Any] = {}
    extra_networks: set[str] = set()
    extra_volumes: set[str] = set()
    labels: dict[str, NodeLabel] = {}
    for name in sorted(project.services):
        svc = convert_service(Scope(project.services[name], project, image_prefix, publish_mode), nodes)
        report.add_all(svc.findings)
        services[name] = out = svc.out
        for label, node_label in svc.node_labels.items():
            labels.setdefault(label, node_label)
        needs |= svc.needs
        extra_networks |= svc.joined
        extra_volumes |= svc.implicit_volumes
        # A stack file bakery wrote keeps depends_on conditions in x-bakery: read them back.
        written = ((project.extras.get("x-bakery") or {}).get("depends_on") or {}).get(name) or {}
        conditions = {**svc.depends, **{k: v for k, v in written.items() if k in svc.depends}}
        if conditions:
            out["depends_on"] = {dep: {"condition": cond} for dep, cond in sorted(conditions.items())}
            needs.add("3.4")  # the stack file keeps the conditions in a top-level x- key
    _link_aliases(project, services)
    stack: dict[str, Any] = {"services": services}
    node_labels = _node_labels(project, services, labels)
    if node_labels:
        stack["node_labels"] = node_labels
        needs.add("3.4")  # the stack file keeps the hints in a top-level x- key
    nets = network.top_networks(project, extra_networks, report, needs)
    if nets:
        stack["networks"] = nets
    vols = network.top_volumes(project, extra_volumes, report, needs)
    if vols:
        stack["volumes"] = vols
    for key, version in (("secrets", "3.1"), ("configs", "3.3")):
        if key in project.extras:
            stack[key] = project.extras[key]
            needs.add(version)
    version = max(needs, key=version_key)
    stack["version"] = version
    return stack, version, {label: n.ref for label, n in labels.items()}  # ordered once, by the file emitter
