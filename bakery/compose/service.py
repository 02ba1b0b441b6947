"""One compose service into one swarm-mode v3 service.

Every key goes through `convert_service`: its row in keys.SERVICE_KEYS
decides the report line, and a handler here (if any) gives its `Part` of the
v3 service. A handler reads the frozen `Scope` and returns; `_merge` puts the
parts together (a later key over an earlier one, `deploy` last so the input's
own deploy wins) and `_finish` applies what needs the whole service. Keys with
no handler are the unsupported ones: reported, not written.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from ..report import Finding
from ..stack import values as stack_values
from ..stack.model import NodeLabel
from . import hints, network, values
from .hints import Hint
from .interpolate import parse_env_file
from .keys import SERVICE_KEYS
from .model import NodeInfo
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


@dataclass(frozen=True)
class Part:
    """What one key gives the service. Every field is optional; `_merge` adds them up."""

    out: Mapping[str, Any] = field(default_factory=dict)  # keys of the v3 service
    deploy: Mapping[str, Any] = field(default_factory=dict)  # under deploy:, merged key by key
    needs: frozenset[str] = frozenset()  # stack versions
    env: Mapping[str, str | None] = field(default_factory=dict)  # environment:, over env_files
    env_files: Mapping[str, str | None] = field(default_factory=dict)
    hints: tuple[Hint, ...] = ()  # classic-Swarm hints, placed once the service is whole
    constraints: tuple[str, ...] = ()
    depends: Mapping[str, str] = field(default_factory=dict)  # service -> condition
    networks: Mapping[str, Any] = field(default_factory=dict)  # name -> the service's settings on it
    joined: frozenset[str] = frozenset()  # host, none (network_mode): external networks of the stack
    mounts: network.Mounts = network.Mounts()
    kept: tuple[str, ...] = ()  # keys kept exactly
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Converted:
    """One service of the stack, and what the stack as a whole takes from it."""

    out: dict[str, Any]  # the v3 service (depends_on is the project's to write)
    needs: frozenset[str]
    depends: Mapping[str, str]
    joined: frozenset[str]
    implicit_volumes: frozenset[str]  # version 1 named volumes nobody declared
    node_labels: Mapping[str, NodeLabel]  # pattern hints, as node labels
    findings: tuple[Finding, ...]


def _needs(*versions: str) -> frozenset[str]:
    return frozenset(versions)


def _environment(s: Scope, value: dict[str, str | None]) -> Part:
    kept, found = hints.from_environment(value, s.ref("environment"))
    return Part(env=kept, hints=tuple(found))


def _env_file(s: Scope, value: list[str]) -> Part:
    merged: dict[str, str | None] = {}
    notes = []
    for path in value:
        where = s.project.directory
        if where is not None and not Path(path).resolve().is_relative_to(where):
            notes.append(s.warning("env_file", f"env_file reads {Path(path).resolve()}, outside the project folder "
                                   f"{where}; its values go into the stack", "compose.path.outside",
                                   "keep env files beside the compose file"))
        try:
            read = parse_env_file(Path(path), names_only=False, lookup=s.project.environ)
        except ComposeError as exc:
            if exc.line is not None:  # a bad line inside the env file: that is the place to point at
                raise
            raise s.ref("env_file").error(exc.message, exc.fix) from None
        merged.update(read)
        if read:
            notes.append(s.info("env_file", f"the {len(read)} value(s) of {Path(path).name} are written into the "
                                "stack file's environment, in plain text: keep the file as private as the env "
                                "file (a secret belongs in secrets:)", "compose.env_file.inlined"))
    kept, found = hints.from_environment(merged, s.ref("env_file"))
    return Part(env_files=kept, hints=tuple(found), findings=tuple(notes))


def _labels(s: Scope, value: dict[str, str]) -> Part:
    kept, found = hints.from_labels(value, s.ref("labels"))
    return Part(out={"labels": dict(sorted(kept.items()))} if kept else {}, hints=tuple(found))


def _build(s: Scope, value: dict[str, Any]) -> Part:
    if "image" in s.svc.data:
        return Part()
    if not s.image_prefix:
        raise s.ref("build").error("build but no image: swarm cannot build images",
                                   "add image: with the name you push, or pass --image-prefix REGISTRY/PROJECT")
    image = f"{s.image_prefix.rstrip('/')}/{s.svc.name}"
    return Part(out={"image": image}, findings=(s.info(
        "build", f"rewritten as image {image} (from --image-prefix); build and push it before deploying",
        "compose.build.image_prefix", kind="rewritten"),))


def _restart(s: Scope, value: str) -> Part:
    parsed = values.restart(value)
    if parsed is None:
        raise s.ref("restart").error(f"restart: {value!r} is not a restart policy",
                                     "use no, always, unless-stopped, on-failure or on-failure:N")
    condition, attempts = parsed
    policy: dict[str, Any] = {"condition": condition}
    if attempts is not None:
        policy["max_attempts"] = attempts
    notes = (s.info("restart", "unless-stopped rewritten as restart_policy condition any (swarm does not remember "
                    "a manual stop)", "compose.restart.unless_stopped", kind="rewritten"),) \
        if value == "unless-stopped" else ()
    return Part(deploy={"restart_policy": policy}, findings=notes)


def _resources(kind: str, **set_: Any) -> Mapping[str, Any]:
    return {"resources": {kind: set_}}


def _size(s: Scope, key: str, value: Any) -> str:
    parsed = values.size(value)
    if parsed is None:
        raise s.ref(key).error(f"{value!r} is not a size", "use 512m, 2g or a number of bytes")
    return parsed


def _cpus(s: Scope, value: Any) -> Part:
    parsed = values.cpus(value)
    if parsed is None:
        raise s.ref("cpus").error(f"{value!r} is not a CPU count", "use a positive number such as 0.5 or 2")
    return Part(deploy=_resources("limits", cpus=parsed))


def _cpu_quota(s: Scope, value: Any) -> Part:
    if "cpus" in s.svc.data:
        return Part()
    try:
        quota, period = float(value), float(s.svc.data.get("cpu_period", 100000))
    except ValueError:
        raise s.ref("cpu_quota").error(f"{value!r} is not a number of microseconds", "use e.g. 50000") from None
    if quota > 0 and period > 0:
        return Part(deploy=_resources("limits", cpus=values.format_cpus(quota / period)))
    return Part()


def _pids(s: Scope, value: int) -> Part:
    return Part(deploy=_resources("limits", pids=value), needs=_needs("3.9")) if value > 0 else Part()


def _ports(s: Scope, value: list[Any]) -> Part:
    out: list[Any] = []
    needs: set[str] = set()
    notes: list[Finding] = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict):
            _check_long_port(s, entry, i)  # here, where its index is the file's (the list is sorted below)
            out.append(entry)
            needs.add("3.2")
            continue
        try:
            parsed = stack_values.short_port(entry)
        except stack_values.BadValue as exc:
            raise s.ref("ports").error(exc.message, exc.fix, i) from None
        if parsed.ip:
            notes.append(s.warning("ports", f"host IP {parsed.ip} of {entry!r} dropped: swarm publishes on every "
                                   "address", "compose.ports.host_ip",
                                   "firewall the port, or publish it in host mode on chosen nodes", i, kind="lost"))
        if not parsed.published:
            notes.append(s.warning("ports", f"{entry!r} publishes container port {parsed.target} on a random port",
                                   "compose.ports.random", f"write PUBLISHED:{parsed.target} to choose it", i))
        long_form, note = _host_mode(s, parsed, entry, i)
        notes += note
        if long_form:
            out.append(long_form)
            needs.add("3.2")
        else:
            out.append(parsed.short())
    ports = sorted(out, key=lambda p: (isinstance(p, dict), json.dumps(p, sort_keys=True)))
    return Part(out={"ports": ports}, needs=frozenset(needs), findings=tuple(notes))


def _check_long_port(s: Scope, entry: dict[str, Any], i: int) -> None:
    for key in ("target", "published"):
        value = entry.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, str) and "-" in value:
            raise s.ref("ports").error(
                f"{value!r} is a port range: swarm publishes one port for each target port",
                "give both sides as ranges in the short syntax ('8000-8002:8000-8002'), or one port", i, key)
        try:
            stack_values.port_number(value)
        except stack_values.BadValue as exc:
            raise s.ref("ports").error(exc.message, exc.fix, i, key) from None


def _host_mode(s: Scope, parsed: stack_values.ShortPort, entry: Any, i: int
               ) -> tuple[dict[str, Any] | None, tuple[Finding, ...]]:
    """--publish-mode host: the long syntax with mode host, where one can say it."""
    if s.publish_mode != "host" or not parsed.published:
        return None, ()
    if "-" in parsed.target or "-" in parsed.published:
        return None, (s.warning("ports", f"{entry!r} is a port range: kept in ingress mode (the long syntax has no "
                                "ranges)", "compose.ports.range_ingress",
                                "list the ports one by one to publish them in host mode", i),)
    return {"target": int(parsed.target), "published": int(parsed.published),
            "protocol": parsed.proto or "tcp", "mode": "host"}, ()


def _depends_on(s: Scope, value: dict[str, dict[str, str]]) -> Part:
    for dep in value:
        if dep not in s.project.services:
            raise s.ref("depends_on").error(f"depends on unknown service {dep!r}",
                                            "name a service defined in the file")
    return Part(depends={dep: spec["condition"] for dep, spec in value.items()})


def _tmpfs(s: Scope, value: list[str]) -> Part:
    mounts: list[dict[str, Any]] = []
    needs, notes = {"3.2"} if value else set(), []
    for entry in value:
        target, _, opts = entry.partition(":")
        mount: dict[str, Any] = {"type": "tmpfs", "target": target}
        for opt in filter(None, opts.split(",")):
            name, _, val = opt.partition("=")
            size = values.size_bytes(val) if name == "size" else None
            if size is not None:
                mount["tmpfs"] = {"size": size}
                needs.add("3.6")
            else:
                notes.append(s.warning("tmpfs", f"option {opt!r} on {target} dropped: swarm's tmpfs mounts take "
                                       "only a size", "compose.tmpfs.option", kind="lost"))
        mounts.append(mount)
    return Part(needs=frozenset(needs), mounts=network.Mounts(entries=tuple(mounts)), findings=tuple(notes))


def _init(s: Scope, value: bool | str) -> Part:
    notes = (s.warning("init", f"init binary {value!r} dropped: the engine's default init is used",
                       "compose.init.path", kind="lost"),) if isinstance(value, str) else ()
    return Part(out={"init": bool(value)}, needs=_needs("3.7"), findings=notes)


def _platform(s: Scope, value: str) -> Part:
    os_name, _, arch = value.partition("/")
    arch = arch.split("/")[0]
    constraints = [f"node.platform.os=={os_name}"]
    if arch:
        constraints.append(f"node.platform.arch=={ {'amd64': 'x86_64', 'arm64': 'aarch64'}.get(arch, arch)}")
    return Part(constraints=tuple(constraints))


_DEPLOY_MAPPINGS = (("placement",), ("resources",), ("resources", "limits"), ("resources", "reservations"),
                    ("restart_policy",), ("update_config",), ("rollback_config",))


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _deploy(s: Scope, value: dict[str, Any]) -> Part:
    """The input's deploy, as it is (merged last, it wins over converted values); its shape is
    checked here (what is inside, stack.load checks) so that merging cannot trip over `placement: x`."""
    for shape in _DEPLOY_MAPPINGS:
        node = _dig(value, shape)
        if node is not None and not isinstance(node, dict):
            raise s.ref("deploy").error(f"deploy.{'.'.join(shape)} must be a mapping, not {node!r}",
                                        "write it as `key: value` lines under it", *shape)
    lost = []
    reserve = _dig(value, ("resources", "reservations")) or {}
    if reserve.get("generic_resources") is not None:
        lost.append(s.warning("deploy", "dropped: bakery does not carry generic resources to the service yet",
                              "compose.deploy.generic_resources", "reserve them after deploying: docker service "
                              "update --generic-resource-add KIND=N STACK_SERVICE", "resources", "reservations",
                              "generic_resources", kind="lost"))
    if reserve.get("devices") is not None:
        lost.append(s.warning("deploy", "dropped: swarm services cannot reserve devices", "compose.deploy.devices",
                              "advertise the devices as generic resources on the nodes", "resources",
                              "reservations", "devices", kind="lost"))
    return Part(deploy=value, needs=frozenset(v for path, v in _DEPLOY_NEEDS.items() if _dig(value, path) is not None),
                findings=tuple(lost))


def _healthcheck(s: Scope, value: dict[str, Any]) -> Part:
    return Part(out={"healthcheck": value}, needs=_needs("3.4") if "start_period" in value else frozenset())


def _scale(s: Scope, value: int) -> Part:
    return Part(deploy={"replicas": value})


def _mem_limit(s: Scope, value: Any) -> Part:
    return Part(deploy=_resources("limits", memory=_size(s, "mem_limit", value)))


def _mem_reservation(s: Scope, value: Any) -> Part:
    return Part(deploy=_resources("reservations", memory=_size(s, "mem_reservation", value)))


def _extra_hosts(s: Scope, value: dict[str, str]) -> Part:
    return Part(out={"extra_hosts": sorted(f"{host}:{ip}" for host, ip in value.items())})


def _sysctls(s: Scope, value: dict[str, str]) -> Part:
    return Part(out={"sysctls": dict(sorted(value.items()))})


def _networks(s: Scope, value: dict[str, Any]) -> Part:
    return Part(networks=value)


def _network_mode(s: Scope, mode: str) -> Part:
    joined, note = network.network_mode(s, mode)
    if joined is None:
        return Part(findings=(note,))
    return Part(networks={joined: None}, joined=frozenset({joined}), findings=(note,))


def _volumes(s: Scope, entries: list[Any]) -> Part:
    mounts, notes = network.volumes(s, entries)
    return Part(needs=mounts.needs, mounts=mounts, findings=notes)


def _copy(key: str) -> Handler:
    def copy_(s: Scope, value: Any) -> Part:
        return Part(out={key: value}, needs=_needs(_COPIED[key]))

    return copy_


Handler = Callable[[Scope, Any], Part]
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


def _disposition(s: Scope, key: str) -> Part:
    """The key's row of the table: kept exactly, or the warning it earns."""
    spec = SERVICE_KEYS[key]
    if spec.disposition == "exact":
        return Part(kept=(key,))
    if spec.disposition == "approximated" and key not in _SELF_REPORTING:
        return Part(findings=(s.warning(key, f"approximated: {spec.note}", "compose.key.approximated", spec.fix,
                                        kind="approximated"),))
    if spec.disposition == "unsupported":
        return Part(findings=(s.warning(key, f"dropped, not supported by swarm: {spec.note}",
                                        "compose.key.unsupported", spec.fix, kind="lost"),))
    return Part()


def convert_service(s: Scope, nodes: Sequence[NodeInfo] | None) -> Converted:
    parts: list[Part] = []
    kept: list[str] = []
    for key in sorted(s.svc.data, key=lambda k: (k in _LATE, k)):
        value = s.svc.data[key]
        if key == "restart" and value == "":  # compose reads an empty restart as no policy, as if absent
            continue
        if key.startswith("x-"):
            parts.append(Part(out={key: value}, needs=_needs("3.7")))
            continue
        if SERVICE_KEYS[key].disposition == "exact":
            kept.append(key)
        else:
            parts.append(_disposition(s, key))
        handler = HANDLERS.get(key)
        if handler is not None:
            parts.append(handler(s, value))
    parts.append(Part(kept=tuple(kept)))
    return _finish(s, _merge(parts), nodes)


def _over(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`, mapping by mapping: `over`'s values win."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _over(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


_NO_MOUNTS = network.Mounts()


def _merge(parts: Sequence[Part]) -> Part:
    """The parts of one service as one: a later part's values over an earlier one's."""
    out: dict[str, Any] = {}
    deploy: dict[str, Any] = {}
    env: dict[str, str | None] = {}
    env_files: dict[str, str | None] = {}
    depends: dict[str, str] = {}
    networks: dict[str, Any] = {}
    mounts = network.Mounts()
    for p in parts:
        out.update(p.out)
        if p.deploy:
            deploy = _over(deploy, p.deploy)
        env.update(p.env)
        env_files.update(p.env_files)
        depends.update(p.depends)
        networks.update(p.networks)
        if p.mounts != _NO_MOUNTS:
            mounts += p.mounts
    return Part(out=out, deploy=deploy, needs=frozenset({"3.0"}.union(*(p.needs for p in parts))), env=env,
                env_files=env_files, hints=tuple(h for p in parts for h in p.hints),
                constraints=tuple(c for p in parts for c in p.constraints), depends=depends, networks=networks,
                joined=frozenset(j for p in parts for j in p.joined), mounts=mounts,
                kept=tuple(k for p in parts for k in p.kept), findings=tuple(f for p in parts for f in p.findings))


def _update_defaults(ports: list[Any], mounts: network.Mounts) -> dict[str, Any]:
    """bakery's update and rollback settings for v1/v2 input, written into the file so that
    `docker stack deploy` of it and `bakery deploy` of either file agree: one task at a time,
    roll back a failed update, start the new task first unless two tasks would fight over a
    host port or over data that lives on the node (a bind mount, a local volume)."""
    host_port = any(isinstance(p, dict) and p.get("mode") == "host" for p in ports)
    order = "stop-first" if host_port or mounts.node_bound else "start-first"
    return {"update_config": {"parallelism": 1, "failure_action": "rollback", "order": order},
            "rollback_config": {"parallelism": 1, "failure_action": "pause", "order": order}}


def _finish(s: Scope, p: Part, nodes: Sequence[NodeInfo] | None) -> Converted:
    """What needs the whole service: defaults for v1/v2 input, the hints placed, networks and mounts."""
    out, deploy, needs, findings = dict(p.out), dict(p.deploy), set(p.needs), list(p.findings)
    source_v2 = not s.project.version.startswith("3")
    if source_v2 and not s.svc.data.get("restart") and "restart_policy" not in deploy:
        deploy["restart_policy"] = {"condition": "none"}
        findings.append(s.info("restart", "no restart policy: compose never restarts it, so it is rewritten as "
                               "restart_policy condition none (swarm would restart it forever)",
                               "compose.restart.default", kind="rewritten"))
    if "image" not in out and "build" not in s.svc.data:
        raise s.svc.ref.error("no image", "add image: NAME[:TAG]")
    env = {**p.env_files, **p.env}
    if env:
        out["environment"] = dict(sorted(env.items()))
    placed = hints.place(s.svc.name, p.hints, nodes)
    findings += placed.findings
    constraints = placed.constraints + list(p.constraints)
    if placed.global_mode and deploy.get("replicas") is not None:
        # One per node, and the count kept: tasks beyond the node count stay pending, as in classic Swarm.
        deploy.setdefault("placement", {}).setdefault("max_replicas_per_node", 1)
        needs.add("3.8")
    elif placed.global_mode:
        deploy["mode"] = "global"
    if constraints:
        placement = deploy.setdefault("placement", {})
        placement["constraints"] = sorted(set(placement.get("constraints", []) + constraints))
    findings += network.node_bound(s, p.mounts.node_bound, deploy)
    if p.networks:
        out["networks"], notes = network.service_networks(s, dict(p.networks))
        findings += notes
    if "host" in p.joined and out.get("ports"):  # swarm refuses the task: ports and the host network
        del out["ports"]
        findings.append(s.warning("ports", "dropped: on the host network the service's ports are the node's own "
                                  "(Docker Compose ignores them there too; swarm would reject the task)",
                                  "compose.ports.host_network", "remove ports, or drop network_mode: host",
                                  kind="lost"))
    if p.mounts.entries:
        out["volumes"] = list(p.mounts.entries)
    if source_v2:
        for key, default in _update_defaults(out.get("ports", []), p.mounts).items():
            deploy.setdefault(key, default)
        needs.add("3.7")
    if deploy:
        out["deploy"] = deploy
    findings += _kept(s, p, findings)
    return Converted(out, frozenset(needs), p.depends, p.joined, p.mounts.implicit, placed.labels, tuple(findings))


def _kept(s: Scope, p: Part, findings: Sequence[Finding] = ()) -> tuple[Finding, ...]:
    """One line for the keys kept exactly; environment and labels with classic-Swarm hints are
    rewrites (reported each), the rest of them is kept; a key with a part reported lost is not."""
    rewritten = {h.key for h in p.hints}
    lost = {part for f in findings if f.kind == "lost" for part in f.path[:3] if isinstance(part, str)} - rewritten
    kept = [f"{k} (other than its hints)" if k in rewritten else k for k in p.kept
            if (k not in rewritten or hints.beside_hints(k, s.svc.data.get(k))) and k not in lost]
    if not kept:
        return ()
    return (s.svc.ref.finding("info", f"kept exactly: {', '.join(kept)}", "compose.key.exact", kind="kept",
                              subject=s.subject),)
