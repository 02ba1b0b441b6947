"""One compose service into one swarm-mode v3 service.

Every key goes through `convert_service`: its row in keys.SERVICE_KEYS
decides the report line, and a handler here (if any) writes the v3 form.
Keys with no handler are the unsupported ones: reported, not written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from ..report import Kind, Report
from ..stack.model import NodeLabel
from . import hints, network, values
from .interpolate import parse_env_file
from .keys import SERVICE_KEYS
from .model import NodeInfo, Project, Ref, Service
from .scope import Scope

# Keys copied to the v3 service unchanged, with the stack version they need.
_COPIED = {"image": "3.0", "command": "3.0", "entrypoint": "3.0", "hostname": "3.0", "user": "3.0",
           "working_dir": "3.0", "stdin_open": "3.0", "tty": "3.0", "read_only": "3.0",
           "stop_signal": "3.0", "stop_grace_period": "3.0", "cap_add": "3.0", "cap_drop": "3.0",
           "dns": "3.0", "dns_search": "3.0", "logging": "3.0", "ulimits": "3.0", "isolation": "3.5",
           "secrets": "3.1", "configs": "3.3", "credential_spec": "3.3"}
_DEPLOY_NEEDS = {("rollback_config",): "3.7", ("placement", "max_replicas_per_node"): "3.8",
                 ("resources", "limits", "pids"): "3.9", ("endpoint_mode",): "3.2",
                 ("placement", "preferences"): "3.3", ("resources", "reservations", "generic_resources"): "3.5"}


@dataclass
class Ctx:
    """The service being built."""

    svc: Service
    project: Project
    report: Report
    nodes: Sequence[NodeInfo] | None
    image_prefix: str | None
    publish_mode: str = "ingress"  # "host": every published port in host mode (long syntax, 3.2)
    out: dict[str, Any] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)
    needs: set[str] = field(default_factory=lambda: {"3.0"})
    hints: list[hints.Hint] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    node_labels: dict[str, NodeLabel] = field(default_factory=dict)  # pattern hints, as node labels
    env: dict[str, str | None] = field(default_factory=dict)
    depends: dict[str, str] = field(default_factory=dict)
    networks: dict[str, Any] = field(default_factory=dict)
    mounts: network.Mounts = network.Mounts()
    extra_networks: set[str] = field(default_factory=set)  # host, none (from network_mode)

    @property
    def scope(self) -> Scope:
        return Scope(self.svc, self.project, self.report)

    @property
    def extra_volumes(self) -> frozenset[str]:  # version 1 implicit named volumes
        return self.mounts.implicit

    def ref(self, key: str) -> Ref:
        return self.svc.at(key)

    def resources(self, kind: str) -> dict[str, Any]:
        res: dict[str, Any] = self.deploy.setdefault("resources", {}).setdefault(kind, {})
        return res

    def warn(self, key: str, message: str, code: str, fix: str | None = None, *extra: Any,
             kind: Kind = "warning") -> None:
        self.scope.warn(key, message, code, fix, *extra, kind=kind)

    def info(self, key: str, message: str, code: str, *extra: Any, kind: Kind = "note") -> None:
        self.scope.info(key, message, code, *extra, kind=kind)


def _environment(c: Ctx, value: dict[str, str | None]) -> None:
    kept, found = hints.from_environment(value, c.ref("environment"))
    c.hints.extend(found)
    c.env.update(kept)


def _env_file(c: Ctx, value: list[str]) -> None:
    merged: dict[str, str | None] = {}
    for path in value:
        where = c.project.directory
        if where is not None and not Path(path).resolve().is_relative_to(where):
            c.warn("env_file", f"env_file reads {Path(path).resolve()}, outside the project folder {where}; its "
                   "values go into the stack", "compose.path.outside", "keep env files beside the compose file")
        try:
            merged.update(parse_env_file(Path(path), names_only=False))
        except ComposeError as exc:
            if exc.line is not None:  # a bad line inside the env file: that is the place to point at
                raise
            raise c.ref("env_file").error(exc.message, exc.fix) from None
    kept, found = hints.from_environment(merged, c.ref("env_file"))
    c.hints.extend(found)
    c.env = {**kept, **c.env}


def _labels(c: Ctx, value: dict[str, str]) -> None:
    kept, found = hints.from_labels(value, c.ref("labels"))
    c.hints.extend(found)
    if kept:
        c.out["labels"] = dict(sorted(kept.items()))


def _build(c: Ctx, value: dict[str, Any]) -> None:
    if "image" in c.svc.data:
        return
    if not c.image_prefix:
        raise c.ref("build").error(f"service {c.svc.name} has build but no image; swarm cannot build images",
                                   "add image: with the name you push, or pass --image-prefix REGISTRY/PROJECT")
    c.out["image"] = f"{c.image_prefix.rstrip('/')}/{c.svc.name}"
    c.info("build", f"rewritten as image {c.out['image']} (from --image-prefix); build and push it before deploying",
           "compose.build.image_prefix", kind="rewritten")


def _restart(c: Ctx, value: str) -> None:
    parsed = values.restart(value)
    if parsed is None:
        raise c.ref("restart").error(f"restart: {value!r} is not a restart policy",
                                     "use no, always, unless-stopped, on-failure or on-failure:N")
    condition, attempts = parsed
    policy: dict[str, Any] = {"condition": condition}
    if attempts is not None:
        policy["max_attempts"] = attempts
    c.deploy.setdefault("restart_policy", policy)
    if value == "unless-stopped":
        c.info("restart", "unless-stopped rewritten as restart_policy condition any (swarm does not remember a "
               "manual stop)", "compose.restart.unless_stopped", kind="rewritten")


def _size(c: Ctx, key: str, value: Any) -> str:
    parsed = values.size(value)
    if parsed is None:
        raise c.ref(key).error(f"{value!r} is not a size", "use 512m, 2g or a number of bytes")
    return parsed


def _cpus(c: Ctx, value: Any) -> None:
    parsed = values.cpus(value)
    if parsed is None:
        raise c.ref("cpus").error(f"{value!r} is not a CPU count", "use a positive number such as 0.5 or 2")
    c.resources("limits")["cpus"] = parsed


def _cpu_quota(c: Ctx, value: Any) -> None:
    if "cpus" in c.svc.data:
        return
    try:
        quota, period = float(value), float(c.svc.data.get("cpu_period", 100000))
    except ValueError:
        raise c.ref("cpu_quota").error(f"{value!r} is not a number of microseconds", "use e.g. 50000") from None
    if quota > 0 and period > 0:
        c.resources("limits")["cpus"] = values.format_cpus(quota / period)


def _pids(c: Ctx, value: int) -> None:
    if value > 0:
        c.resources("limits")["pids"] = value
        c.needs.add("3.9")


def _ports(c: Ctx, value: list[Any]) -> None:
    out: list[Any] = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict):
            out.append(entry)
            c.needs.add("3.2")
            continue
        parsed = values.port(entry)
        if parsed is None:
            raise c.ref("ports").error(f"{entry!r} is not a port mapping",
                                       "write [HOST_IP:]PUBLISHED:TARGET[/PROTO] or TARGET", i)
        if parsed.ip:
            c.warn("ports", f"host IP {parsed.ip} of {entry!r} dropped: swarm publishes on every address",
                   "compose.ports.host_ip", "firewall the port, or publish it in host mode on chosen nodes", i,
                   kind="lost")
        if not parsed.published:
            c.warn("ports", f"{entry!r} publishes container port {parsed.target} on a random port",
                   "compose.ports.random", f"write PUBLISHED:{parsed.target} to choose it", i)
        long_form = _host_mode(c, parsed, entry, i)
        if long_form:
            out.append(long_form)
            c.needs.add("3.2")
        else:
            out.append(parsed.short())
    c.out["ports"] = sorted(out, key=lambda p: (isinstance(p, dict), json.dumps(p, sort_keys=True)))


def _host_mode(c: Ctx, parsed: values.Port, entry: Any, i: int) -> dict[str, Any] | None:
    """--publish-mode host: the long syntax with mode host, where one can say it."""
    if c.publish_mode != "host" or not parsed.published:
        return None
    if "-" in parsed.target or "-" in parsed.published:
        c.warn("ports", f"{entry!r} is a port range: kept in ingress mode (the long syntax has no ranges)",
               "compose.ports.range_ingress", "list the ports one by one to publish them in host mode", i)
        return None
    return {"target": int(parsed.target), "published": int(parsed.published),
            "protocol": parsed.proto or "tcp", "mode": "host"}


def _depends_on(c: Ctx, value: dict[str, dict[str, str]]) -> None:
    for dep, spec in value.items():
        if dep not in c.project.services:
            raise c.ref("depends_on").error(f"service {c.svc.name} depends on unknown service {dep!r}",
                                            "name a service defined in the file")
        c.depends[dep] = spec["condition"]


def _tmpfs(c: Ctx, value: list[str]) -> None:
    for entry in value:
        target, _, opts = entry.partition(":")
        mount: dict[str, Any] = {"type": "tmpfs", "target": target}
        c.needs.add("3.2")
        for opt in filter(None, opts.split(",")):
            name, _, val = opt.partition("=")
            size = values.size_bytes(val) if name == "size" else None
            if size is not None:
                mount["tmpfs"] = {"size": size}
                c.needs.add("3.6")
            else:
                c.warn("tmpfs", f"option {opt!r} on {target} dropped: swarm's tmpfs mounts take only a size",
                       "compose.tmpfs.option", kind="lost")
        c.mounts = replace(c.mounts, entries=(*c.mounts.entries, mount))


def _init(c: Ctx, value: bool | str) -> None:
    c.out["init"] = bool(value)
    c.needs.add("3.7")
    if isinstance(value, str):
        c.warn("init", f"init binary {value!r} dropped: the engine's default init is used",
               "compose.init.path", kind="lost")


def _platform(c: Ctx, value: str) -> None:
    os_name, _, arch = value.partition("/")
    arch = arch.split("/")[0]
    c.constraints.append(f"node.platform.os=={os_name}")
    if arch:
        c.constraints.append(f"node.platform.arch=={ {'amd64': 'x86_64', 'arm64': 'aarch64'}.get(arch, arch)}")


_DEPLOY_MAPPINGS = (("placement",), ("resources",), ("resources", "limits"), ("resources", "reservations"),
                    ("restart_policy",), ("update_config",), ("rollback_config",))


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _deploy(c: Ctx, value: dict[str, Any]) -> None:
    """The input's deploy wins over converted values; its shape is checked here (what is inside,
    stack.load checks) so that merging into it cannot trip over `placement: x`."""
    import copy

    for shape in _DEPLOY_MAPPINGS:
        node = _dig(value, shape)
        if node is not None and not isinstance(node, dict):
            raise c.ref("deploy").error(f"deploy.{'.'.join(shape)} must be a mapping, not {node!r}",
                                        "write it as `key: value` lines under it", *shape)
    for path, version in _DEPLOY_NEEDS.items():
        if _dig(value, path) is not None:
            c.needs.add(version)
    c.deploy = _merge(copy.deepcopy(value), c.deploy)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """b under a: values written in the input's deploy win over converted ones."""
    out = dict(b)
    for k, v in a.items():
        out[k] = _merge(v, out[k]) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _healthcheck(c: Ctx, value: dict[str, Any]) -> None:
    c.out["healthcheck"] = value
    if "start_period" in value:
        c.needs.add("3.4")


def _scale(c: Ctx, value: int) -> None:
    c.deploy["replicas"] = value


def _mem_limit(c: Ctx, value: Any) -> None:
    c.resources("limits")["memory"] = _size(c, "mem_limit", value)


def _mem_reservation(c: Ctx, value: Any) -> None:
    c.resources("reservations")["memory"] = _size(c, "mem_reservation", value)


def _extra_hosts(c: Ctx, value: dict[str, str]) -> None:
    c.out["extra_hosts"] = sorted(f"{host}:{ip}" for host, ip in value.items())


def _sysctls(c: Ctx, value: dict[str, str]) -> None:
    c.out["sysctls"] = dict(sorted(value.items()))


def _networks(c: Ctx, value: dict[str, Any]) -> None:
    c.networks.update(value)


def _network_mode(c: Ctx, mode: str) -> None:
    joined = network.network_mode(c.scope, mode)
    if joined is not None:
        c.networks[joined] = None
        c.extra_networks.add(joined)


def _volumes(c: Ctx, entries: list[Any]) -> None:
    m = network.volumes(c.scope, entries)
    c.needs |= m.needs
    c.mounts = network.Mounts((*c.mounts.entries, *m.entries), (*c.mounts.node_bound, *m.node_bound),
                              c.mounts.needs | m.needs, c.mounts.implicit | m.implicit)


def _copy(key: str) -> Callable[[Ctx, Any], None]:
    def copy(c: Ctx, value: Any) -> None:
        c.out[key] = value

    return copy


Handler = Callable[[Ctx, Any], None]
HANDLERS: dict[str, Handler] = {
    "environment": _environment, "env_file": _env_file, "labels": _labels, "build": _build,
    "restart": _restart, "cpus": _cpus, "cpu_quota": _cpu_quota, "pids_limit": _pids, "ports": _ports,
    "depends_on": _depends_on, "tmpfs": _tmpfs, "init": _init, "platform": _platform, "deploy": _deploy,
    "healthcheck": _healthcheck, "scale": _scale, "mem_limit": _mem_limit, "mem_reservation": _mem_reservation,
    "extra_hosts": _extra_hosts, "sysctls": _sysctls, "networks": _networks,
    "network_mode": _network_mode, "volumes": _volumes,
}
HANDLERS.update({key: _copy(key) for key in _COPIED})

# Approximated keys whose handler reports what each value keeps or loses (the row's note is the general case).
_SELF_REPORTING = frozenset({"network_mode"})
# Order of handling: restart before deploy so an explicit deploy.restart_policy wins.
_LATE = ("deploy",)


def convert_service(svc: Service, project: Project, report: Report, nodes: Sequence[NodeInfo] | None,
                    image_prefix: str | None, publish_mode: str = "ingress") -> tuple[dict[str, Any], Ctx]:
    c = Ctx(svc, project, report, nodes, image_prefix, publish_mode)
    kept: list[str] = []
    keys = sorted(svc.data, key=lambda k: (k in _LATE, k))
    for key in keys:
        value = svc.data[key]
        if key == "restart" and value == "":  # compose reads an empty restart as no policy, as if absent
            continue
        if key.startswith("x-"):
            c.out[key] = value
            c.needs.add("3.7")
            continue
        spec = SERVICE_KEYS[key]
        if spec.disposition == "exact":
            kept.append(key)
        elif spec.disposition == "approximated" and key not in _SELF_REPORTING:
            c.warn(key, f"approximated: {spec.note}", "compose.key.approximated", spec.fix, kind="approximated")
        elif spec.disposition == "unsupported":
            c.warn(key, f"dropped, not supported by swarm: {spec.note}", "compose.key.unsupported", spec.fix,
                   kind="lost")
        if key in _COPIED:
            c.needs.add(_COPIED[key])
        handler = HANDLERS.get(key)
        if handler is not None:
            handler(c, value)
    _finish(c, kept)
    return c.out, c


def _update_defaults(c: Ctx) -> None:
    """bakery's update and rollback settings for v1/v2 input, written into the file so that
    `docker stack deploy` of it and `bakery deploy` of either file agree: one task at a time,
    roll back a failed update, start the new task first unless two tasks would fight over a
    host port or over data that lives on the node (a bind mount, a local volume)."""
    host_port = any(isinstance(p, dict) and p.get("mode") == "host" for p in c.out.get("ports", []))
    order = "stop-first" if host_port or c.mounts.node_bound else "start-first"
    c.deploy.setdefault("update_config", {"parallelism": 1, "failure_action": "rollback", "order": order})
    c.deploy.setdefault("rollback_config", {"parallelism": 1, "failure_action": "pause", "order": order})
    c.needs.add("3.7")


def _finish(c: Ctx, kept: list[str]) -> None:
    source_v2 = not c.project.version.startswith("3")
    if source_v2 and not c.svc.data.get("restart") and "restart_policy" not in c.deploy:
        c.deploy["restart_policy"] = {"condition": "none"}
        c.info("restart", "no restart policy: compose never restarts it, so it is rewritten as restart_policy "
               "condition none (swarm would restart it forever)", "compose.restart.default", kind="rewritten")
    if "image" not in c.out:
        if "build" not in c.svc.data:
            raise c.svc.ref.error(f"service {c.svc.name} has no image", "add image: NAME[:TAG]")
    if c.env:
        c.out["environment"] = dict(sorted(c.env.items()))
    placed = hints.place(c.svc.name, c.hints, c.nodes, c.report)
    constraints, global_mode, c.node_labels = placed.constraints + c.constraints, placed.global_mode, placed.labels
    if global_mode and c.deploy.get("replicas") is not None:
        # One per node, and the count kept: tasks beyond the node count stay pending, as in classic Swarm.
        c.deploy.setdefault("placement", {}).setdefault("max_replicas_per_node", 1)
        c.needs.add("3.8")
    elif global_mode:
        c.deploy["mode"] = "global"
    if constraints:
        placement = c.deploy.setdefault("placement", {})
        placement["constraints"] = sorted(set(placement.get("constraints", []) + constraints))
    network.report_node_bound(c.scope, c.mounts.node_bound, c.deploy)
    if c.networks:
        c.out["networks"] = network.service_networks(c.scope, c.networks)
    if c.mounts.entries:
        c.out["volumes"] = list(c.mounts.entries)
    if source_v2:
        _update_defaults(c)
    if c.deploy:
        c.out["deploy"] = c.deploy
    # environment and labels with classic-Swarm hints: the hints are rewrites (reported each), the rest is kept
    rewritten = {h.key for h in c.hints}
    kept = [f"{k} (other than its hints)" if k in rewritten else k for k in kept
            if k not in rewritten or hints.beside_hints(k, c.svc.data.get(k))]
    if kept:
        c.svc.ref.add(c.report, "info", f"kept exactly: {', '.join(kept)}", "compose.key.exact", kind="kept",
                      subject=c.scope.subject)
