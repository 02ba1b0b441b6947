"""Networks and volumes: the service side and the top-level declarations.

Swarm services span nodes, so `bridge` networks become `overlay`, and every
bind mount or local volume gets a warning: a path must exist on each node
the service can land on, and a local volume is a different one per node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..report import Finding, Report
from ..stack import values as stack_values
from . import values
from .model import Project, Ref
from .scope import Scope

_SPECIAL_MODES = {"host": "host", "none": "none"}
# Host paths every Docker node has: binding them is how agents (cAdvisor, log shippers) work.
_NODE_PATHS = {"/", "/sys", "/proc", "/dev", "/var/run", "/run", "/var/run/docker.sock", "/run/docker.sock",
               "/var/lib/docker", "/var/lib/docker/", "/etc/localtime", "/etc/timezone", "/etc/hostname",
               "/var/log", "/sys/fs/cgroup", "/etc/machine-id"}


def network_mode(c: Scope, mode: str) -> tuple[str | None, Finding]:
    """The swarm network a network_mode joins (host, none), or None; and what became of it."""
    if mode in _SPECIAL_MODES:
        return mode, c.info("network_mode", f"{mode} rewritten as the swarm network {mode} (external)",
                            "compose.network_mode.special", kind="rewritten")
    if mode == "bridge":
        return None, c.info("network_mode", "bridge rewritten as the stack's default overlay network",
                            "compose.network_mode.bridge", kind="rewritten")
    return None, c.warning("network_mode", f"{mode!r} dropped: swarm cannot share a network namespace",
                           "compose.network_mode.shared",
                           "put both processes in one service, or talk over a network", kind="lost")


@dataclass(frozen=True)
class Mounts:
    """A service's volumes as the stack writes them, and what they imply."""

    entries: tuple[Any, ...] = ()
    node_bound: tuple[NodeBound, ...] = ()  # bind mounts and local volumes: data on one node
    needs: frozenset[str] = frozenset()  # stack versions
    implicit: frozenset[str] = frozenset()  # version 1 named volumes nobody declared

    def __add__(self, other: Mounts) -> Mounts:
        return Mounts((*self.entries, *other.entries), (*self.node_bound, *other.node_bound),
                      self.needs | other.needs, self.implicit | other.implicit)


def volumes(c: Scope, entries: list[Any]) -> tuple[Mounts, tuple[Finding, ...]]:
    out, bound, needs, implicit, notes = [], [], set(), set(), []
    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            needs.add("3.6" if "tmpfs" in entry else "3.2")
            entry = _tmpfs_bytes(c, entry, i)
            kind, source, target = entry.get("type", ""), str(entry.get("source", "")), entry.get("target")
        else:
            try:
                m = stack_values.short_mount(entry)
            except stack_values.BadValue as exc:
                raise c.ref("volumes").error(exc.message, exc.fix, i) from None
            kind, source, target = m.kind, m.source, m.target
            notes.extend(_short_options(c, m, i))
        if kind == "bind" and source in _NODE_PATHS:
            notes.append(c.info("volumes", f"bind mount {source} -> {target}: a path every Docker node has",
                                "compose.volumes.node_path", i))
        elif kind == "bind":
            bound.append(NodeBound(f"bind mount {source} -> {target}", "the path must exist on every node "
                                   "the service can run on", "compose.volumes.bind", i,
                                   "constrain the service to nodes that have the path, or use a shared "
                                   "volume driver"))
        elif kind == "volume" and source:
            local = _named_volume(c, source, i)
            if local is not None:
                bound.append(local)
            if source not in c.project.volumes:
                implicit.add(source)
        out.append(entry)
    return Mounts(tuple(out), tuple(bound), frozenset(needs), frozenset(implicit)), tuple(notes)


def _short_options(c: Scope, m: stack_values.ShortMount, index: int) -> list[Finding]:
    """The short syntax's mode options a swarm mount does not take, each reported as dropped."""
    out = []
    for opt in [o for o in m.mode.split(",") if o]:
        applies = (opt in stack_values.PROPAGATIONS and m.kind == "bind") or (opt == "nocopy" and m.kind == "volume")
        if opt in ("ro", "rw") or applies:
            continue
        fix = "remove it"
        if opt in stack_values.PROPAGATIONS or opt == "nocopy":
            why = f"applies to {'bind mounts' if opt in stack_values.PROPAGATIONS else 'named volumes'} only"
        elif opt in ("z", "Z"):
            why = "swarm's mounts have no SELinux relabelling"
            fix = "label the path on the nodes (chcon), then remove it"
        elif opt in ("cached", "delegated", "consistent"):
            why = "only Docker Desktop's file sharing reads it"
        else:
            why = "not a mount option swarm knows"
        out.append(c.warning("volumes", f"option {opt!r} of {m.source or m.target}:{m.target} dropped: {why}",
                             "compose.volumes.dropped", fix, index, kind="lost"))
    return out


def _tmpfs_bytes(c: Scope, entry: dict[str, Any], index: int) -> dict[str, Any]:
    """Long-syntax tmpfs size in bytes: 2.3 files may write 64m, a stack file needs a number."""
    size = (entry.get("tmpfs") or {}).get("size")
    if size is None or isinstance(size, int):
        return entry
    parsed = values.size_bytes(size)
    if parsed is None:
        raise c.ref("volumes").error(f"tmpfs size {size!r} is not a size", "use 64m or a number of bytes", index)
    return {**entry, "tmpfs": {**entry["tmpfs"], "size": parsed}}


def _named_volume(c: Scope, name: str, index: int) -> NodeBound | None:
    declared = c.project.volumes.get(name)
    if declared is None and c.project.version != "1":
        raise c.ref("volumes").error(f"volume {name!r} is not declared under the top-level volumes",
                                     f"add `volumes: {{{name}: {{}}}}` at the top level", index)
    if not is_local(declared[0] if declared else {}):
        return None
    return NodeBound(f"volume {name} is local", "each node has its own copy", "compose.volumes.local", index,
                     "pin the service to one node, or give the volume a shared driver such as NFS driver_opts")


def is_local(spec: dict[str, Any]) -> bool:
    if spec.get("external"):
        return False
    opts = spec.get("driver_opts") or {}
    return spec.get("driver", "local") == "local" and str(opts.get("type", "")).lower() not in ("nfs", "nfs4")


@dataclass(frozen=True)
class NodeBound:
    """A mount whose data lives on one node: fine when the service is pinned, a warning otherwise."""

    what: str
    risk: str
    code: str
    index: int
    fix: str


def node_bound(c: Scope, bound: tuple[NodeBound, ...], deploy: dict[str, Any]) -> tuple[Finding, ...]:
    """What the data on one node means for this service: a note when it is pinned, else a warning."""
    constraints = (deploy.get("placement") or {}).get("constraints") or []
    pinned = [x.split("==", 1)[1] for x in constraints if x.replace(" ", "").startswith("node.hostname==")]
    if pinned and deploy.get("mode") != "global":
        return tuple(c.info("volumes", f"{item.what}: the service is pinned to node {pinned[0]}, so it stays there",
                            item.code + "_pinned", item.index) for item in bound)
    return tuple(c.warning("volumes", f"{item.what}: {item.risk}", item.code, item.fix, item.index)
                 for item in bound)


def service_networks(c: Scope, networks: dict[str, Any]
                     ) -> tuple[list[str] | dict[str, Any], tuple[Finding, ...]]:
    """A service's `networks:` as the stack writes it (a list unless some network has aliases)."""
    out: dict[str, Any] = {}
    notes: list[Finding] = []
    for name, spec in sorted(networks.items()):
        if name not in c.project.networks and name not in ("default", *_SPECIAL_MODES):
            raise c.ref("networks").error(f"network {name!r} is not declared under the top-level networks",
                                          f"add `networks: {{{name}: {{}}}}` at the top level")
        notes += [c.warning("networks", "dropped: swarm assigns addresses itself", "compose.networks.static",
                            "address the service by its name or an alias", name, key, kind="lost")
                  for key in ("ipv4_address", "ipv6_address", "link_local_ips", "priority") if key in (spec or {})]
        aliases = (spec or {}).get("aliases")
        out[name] = {"aliases": sorted(aliases)} if aliases else None
    return sorted(out) if all(v is None for v in out.values()) else out, tuple(notes)


def top_networks(project: Project, extra: set[str], report: Report, needs: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (spec, ref) in sorted(project.networks.items()):
        out[name] = _top_network(name, spec, ref, report, needs)
    for name in sorted(extra):
        out.setdefault(name, {"external": True})
    return out


def _top_network(name: str, spec: dict[str, Any], ref: Ref, report: Report, needs: set[str]) -> dict[str, Any]:
    if "name" in spec:
        needs.add("3.5")
    if spec.get("external"):
        return {k: v for k, v in spec.items() if k in ("external", "name")}
    net: dict[str, Any] = {}
    driver = spec.get("driver", "bridge")
    for key in ("driver_opts", "internal", "attachable", "labels", "name"):
        if key in spec:
            net[key] = spec[key]
    if driver == "bridge":
        ref.add(report, "info", "driver bridge rewritten as overlay (bridges exist on one host only)",
                "compose.network.overlay", kind="rewritten")
        driver = "overlay"
        _drop_bridge_options(net, ref, report)
    net["driver"] = driver
    if "attachable" in spec:
        needs.add("3.2")
    if "enable_ipv6" in spec:
        ref.add(report, "warning", "enable_ipv6 dropped: the stack creates IPv4 overlay networks",
                "compose.key.unsupported",
                "create the network yourself (docker network create --ipv6) and mark it external", "enable_ipv6",
                kind="lost")
    if "ipam" in spec:
        net["ipam"] = _ipam(spec["ipam"], ref, report)
    return net


def _drop_bridge_options(net: dict[str, Any], ref: Ref, report: Report) -> None:
    opts = net.get("driver_opts") or {}
    bridge_only = sorted(k for k in opts if str(k).startswith("com.docker.network.bridge."))
    if bridge_only:
        ref.add(report, "warning", f"bridge options {', '.join(bridge_only)} dropped (they mean nothing to overlay)",
                "compose.network.bridge_opts", None, "driver_opts", kind="lost")
        kept = {k: v for k, v in opts.items() if k not in bridge_only}
        if kept:
            net["driver_opts"] = kept
        else:
            net.pop("driver_opts", None)


def _ipam(ipam: dict[str, Any], ref: Ref, report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in ipam.items() if k == "driver"}
    if "options" in ipam:
        ref.add(report, "warning", "ipam options dropped (stack files have no ipam options)",
                "compose.network.ipam", None, "ipam", "options", kind="lost")
    configs = []
    for i, cfg in enumerate(ipam.get("config") or []):
        lost = sorted(k for k in cfg if k != "subnet")
        if lost:
            ref.add(report, "warning", f"ipam {', '.join(lost)} dropped (swarm keeps only subnets)",
                    "compose.network.ipam", None, "ipam", "config", i, kind="lost")
        if "subnet" in cfg:
            configs.append({"subnet": cfg["subnet"]})
    if configs:
        out["config"] = configs
    return out


def top_volumes(project: Project, extra: set[str], report: Report, needs: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (spec, _ref) in sorted(project.volumes.items()):
        vol = {k: spec[k] for k in ("driver", "driver_opts", "external", "labels", "name") if k in spec}
        if "name" in spec:
            needs.add("3.4")
        if isinstance(vol.get("labels"), list):
            vol["labels"] = dict(str(e).partition("=")[::2] for e in vol["labels"])
        out[name] = vol
    for name in sorted(extra):
        out.setdefault(name, {})
    return out
