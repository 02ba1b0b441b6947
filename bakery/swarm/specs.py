"""A v3 stack (plain data) -> canonical Engine API specs, like `docker stack deploy` builds them.

Canonical means: every default the engine would otherwise pick is written
out (restart policy, update and rollback config: docker-py's own defaults are
traps), lists are sorted, and references to networks, secrets and configs are
by name. The spec's hash goes into a label, so the next deploy can tell a
changed file from an unchanged one without guessing the engine's defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PathPart, UserError
from ..report import Report
from . import objects, parts
from .deps import dependencies
from .model import HASH_LABEL, IMAGE_LABEL, NAMESPACE_LABEL, Desired, ServiceRun
from .parts import Invalid
from .units import duration_ns, nano_cpus, size_bytes

_STACK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")

# Keys swarm services cannot honour; `docker stack deploy` ignores them too.
IGNORED = frozenset(
    {
        "build",
        "cgroup_parent",
        "container_name",
        "devices",
        "external_links",
        "links",
        "network_mode",
        "restart",
        "security_opt",
        "userns_mode",
        "privileged",
        "tmpfs",
        "expose",
        "domainname",
        "mac_address",
        "pid",
        "ipc",
        "shm_size",
        "credential_spec",
    }
)
HANDLED = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "labels",
        "deploy",
        "ports",
        "volumes",
        "networks",
        "healthcheck",
        "secrets",
        "configs",
        "hostname",
        "user",
        "working_dir",
        "stop_grace_period",
        "stop_signal",
        "tty",
        "stdin_open",
        "read_only",
        "init",
        "isolation",
        "logging",
        "extra_hosts",
        "dns",
        "dns_search",
        "dns_opt",
        "cap_add",
        "cap_drop",
        "sysctls",
        "ulimits",
        "depends_on",
    }
)

Locate = Callable[[tuple[PathPart, ...]], tuple[int | None, int | None]]


@dataclass(frozen=True)
class StackSpecs:
    stack: str
    objects: tuple[Desired, ...]  # networks, volumes, secrets, configs, then services
    runs: tuple[ServiceRun, ...]
    external: tuple[tuple[str, str], ...]  # (kind, engine name) that must already exist


def spec_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class _Builder:
    def __init__(
        self,
        stack: str,
        data: Mapping[str, Any],
        base_dir: Path | None,
        environ: Mapping[str, str],
        update_defaults: bool,
        report: Report,
    ) -> None:
        self.stack, self.data, self.base_dir, self.environ = stack, data, base_dir, environ
        self.update_defaults, self.report = update_defaults, report
        self.desired: list[Desired] = []
        self.external: set[tuple[str, str]] = set()
        self.networks: dict[str, str] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.blobs: dict[tuple[str, str], str] = {}

    def top_level(self) -> None:
        services = self.data.get("services") or {}
        used_nets = {n for s in services.values() for n in _service_networks(s or {})}
        declared = dict(self.data.get("networks") or {})
        for key in sorted(used_nets | set(declared)):
            if key not in declared and key != "default":
                raise Invalid(
                    ("networks", key),
                    f"network {key!r} is used but not declared",
                    f"add `networks: {{{key}: {{}}}}` at the top level",
                )
            if key == "default" and key not in used_nets:
                continue
            ref, want = objects.network(self.stack, key, declared.get(key) or {})
            self._keep("network", key, ref.name, want)
            self.networks[key] = ref.name
        for key, cfg in sorted((self.data.get("volumes") or {}).items()):
            template, want = objects.volume(self.stack, key, cfg or {})
            self._keep("volume", key, template["Source"], want)
            self.volumes[key] = template
        for kind in ("secret", "config"):
            for key, cfg in sorted((self.data.get(f"{kind}s") or {}).items()):
                ref, want = objects.blob(self.stack, kind, key, cfg or {}, self.base_dir, self.environ)
                self._keep(kind, key, ref.name, want)
                self.blobs[(kind, key)] = ref.name

    def _keep(self, kind: str, key: str, name: str, want: Desired | None) -> None:
        if want is None:
            self.external.add((kind, name))
        else:
            self.desired.append(want)

    def service(self, key: str, svc: Mapping[str, Any]) -> tuple[Desired, ServiceRun]:
        for name in sorted(set(svc) - HANDLED):
            if not name.startswith("x-"):
                what = "swarm services do not support it" if name in IGNORED else "unknown key"
                self.report.warn(f"{name} is ignored: {what}", path=("services", key, name), code="deploy.key.ignored")
        if not svc.get("image"):
            raise Invalid(("services", key, "image"), "a service needs an image", "add `image: NAME:TAG`")
        deploy = svc.get("deploy") or {}
        ports = parts.ports(svc.get("ports") or [], ("services", key, "ports"))
        spec: dict[str, Any] = {
            "Name": f"{self.stack}_{key}",
            "Labels": _sorted(
                {
                    **_str_labels(deploy.get("labels")),
                    NAMESPACE_LABEL: self.stack,
                    IMAGE_LABEL: str(svc["image"]),
                }
            ),
            "TaskTemplate": self._task(key, svc, deploy),
            "Mode": _mode(deploy),
            "UpdateConfig": self._update(deploy.get("update_config"), ports),
            "RollbackConfig": self._update(deploy.get("rollback_config"), ports),
            "EndpointSpec": _compact(
                {
                    "Mode": str(deploy.get("endpoint_mode") or "vip"),
                    "Ports": ports,
                }
            ),
        }
        spec["Labels"][HASH_LABEL] = spec_hash(spec)
        return Desired("service", key, spec["Name"], spec), _run(key, spec, deploy)

    def _task(self, key: str, svc: Mapping[str, Any], deploy: Mapping[str, Any]) -> dict[str, Any]:
        path: tuple[PathPart, ...] = ("services", key)
        env: dict[str, str | None] = {}
        files = svc.get("env_file") or []
        for f in [files] if isinstance(files, str) else files:
            env.update(parts.env_file((self.base_dir or Path.cwd()) / str(f)))
        env.update(parts.key_values(svc.get("environment") or {}))
        container = _compact(
            {
                "Image": str(svc["image"]),
                "Command": parts.command(svc["entrypoint"]) if svc.get("entrypoint") is not None else None,
                "Args": parts.command(svc["command"]) if svc.get("command") is not None else None,
                "Hostname": svc.get("hostname"),
                "User": svc.get("user"),
                "Dir": svc.get("working_dir"),
                "Env": parts.environment(env, self.environ),
                "Labels": _sorted({**_str_labels(svc.get("labels")), NAMESPACE_LABEL: self.stack}),
                "Mounts": parts.mounts(
                    svc.get("volumes") or [],
                    path + ("volumes",),
                    volumes=self.volumes,
                    base_dir=self.base_dir,
                ),
                "StopGracePeriod": _opt(duration_ns, svc.get("stop_grace_period")),
                "StopSignal": svc.get("stop_signal"),
                "TTY": svc.get("tty"),
                "OpenStdin": svc.get("stdin_open"),
                "ReadOnly": svc.get("read_only"),
                "Init": svc.get("init"),
                "Isolation": svc.get("isolation"),
                "Healthcheck": parts.healthcheck(svc["healthcheck"]) if svc.get("healthcheck") else None,
                "Hosts": parts.extra_hosts(svc["extra_hosts"]) if svc.get("extra_hosts") else None,
                "DNSConfig": _compact(
                    {
                        "Nameservers": _list(svc.get("dns")),
                        "Search": _list(svc.get("dns_search")),
                        "Options": _list(svc.get("dns_opt")),
                    }
                ),
                "CapabilityAdd": sorted(svc.get("cap_add") or []),
                "CapabilityDrop": sorted(svc.get("cap_drop") or []),
                "Sysctls": _sorted({k: v or "" for k, v in parts.key_values(svc.get("sysctls") or {}).items()}),
                "Ulimits": parts.ulimits(svc.get("ulimits") or {}),
                "Secrets": self._blob_refs("secret", key, svc.get("secrets") or []),
                "Configs": self._blob_refs("config", key, svc.get("configs") or []),
            }
        )
        placement = deploy.get("placement") or {}
        logging = svc.get("logging") or {}
        return _compact(
            {
                "ContainerSpec": container,
                "Resources": _resources(deploy.get("resources") or {}),
                "RestartPolicy": _restart(deploy.get("restart_policy") or {}),
                "Placement": _compact(
                    {
                        "Constraints": sorted(str(c) for c in placement.get("constraints") or []),
                        "Preferences": [
                            {"Spread": {"SpreadDescriptor": str(p["spread"])}}
                            for p in placement.get("preferences") or []
                        ],
                        "MaxReplicas": placement.get("max_replicas_per_node"),
                    }
                ),
                "Networks": self._attachments(key, svc),
                "LogDriver": _compact(
                    {"Name": logging.get("driver"), "Options": _sorted(_str_labels(logging.get("options")))}
                )
                or None,
            }
        )

    def _attachments(self, key: str, svc: Mapping[str, Any]) -> list[dict[str, Any]]:
        nets = svc.get("networks")
        out = []
        for net in _service_networks(svc):
            cfg = (nets or {}).get(net) if isinstance(nets, Mapping) else None
            aliases = [key] + [str(a) for a in (cfg or {}).get("aliases") or [] if str(a) != key]
            out.append({"Target": self.networks[net], "Aliases": aliases})
        return sorted(out, key=lambda a: a["Target"])

    def _blob_refs(self, kind: str, key: str, refs: list[Any]) -> list[dict[str, Any]]:
        out = []
        for i, ref in enumerate(refs):
            item = ref if isinstance(ref, Mapping) else {"source": str(ref)}
            source = str(item.get("source", ""))
            if (kind, source) not in self.blobs:
                raise Invalid(
                    ("services", key, f"{kind}s", i),
                    f"{kind} {source!r} is not declared",
                    f"add it under top-level `{kind}s:`",
                )
            default_target = f"/{source}" if kind == "config" else source
            out.append(
                {
                    "File": {
                        "Name": str(item.get("target") or default_target),
                        "UID": str(item.get("uid", "0")),
                        "GID": str(item.get("gid", "0")),
                        "Mode": int(item.get("mode", 0o444)),
                    },
                    f"{kind.capitalize()}Name": self.blobs[(kind, source)],
                }
            )
        return sorted(out, key=lambda r: r["File"]["Name"])

    def _update(self, cfg: Mapping[str, Any] | None, ports: list[dict[str, Any]]) -> dict[str, Any]:
        """Explicit update/rollback config. Docker's defaults for v3 input; for
        v2 input bakery's: one at a time, start-first unless a host port would
        clash, and roll back on failure."""
        cfg = cfg or {}
        host_ports = any(p.get("PublishMode") == "host" for p in ports)
        order = "start-first" if self.update_defaults and not host_ports else "stop-first"
        action = "rollback" if self.update_defaults else "pause"
        return {
            "Parallelism": int(cfg.get("parallelism", 1)),
            "Delay": duration_ns(cfg.get("delay", 0)),
            "FailureAction": str(cfg.get("failure_action", action)),
            "Monitor": duration_ns(cfg.get("monitor", "5s")),
            "MaxFailureRatio": float(cfg.get("max_failure_ratio", 0)),
            "Order": str(cfg.get("order", order)),
        }


def _service_networks(svc: Mapping[str, Any]) -> list[str]:
    nets = svc.get("networks")
    if not nets:
        return ["default"]
    return sorted(str(n) for n in nets)


def _mode(deploy: Mapping[str, Any]) -> dict[str, Any]:
    mode = str(deploy.get("mode") or "replicated")
    replicas = int(deploy["replicas"]) if deploy.get("replicas") is not None else 1
    if mode == "replicated":
        return {"Replicated": {"Replicas": replicas}}
    if mode == "global":
        return {"Global": {}}
    if mode == "replicated-job":
        return {"ReplicatedJob": {"MaxConcurrent": replicas, "TotalCompletions": replicas}}
    if mode == "global-job":
        return {"GlobalJob": {}}
    raise Invalid(("deploy", "mode"), f"unknown mode {mode!r}", "use replicated, global, replicated-job or global-job")


def _resources(res: Mapping[str, Any]) -> dict[str, Any] | None:
    out = {}
    for key, api in (("limits", "Limits"), ("reservations", "Reservations")):
        r = res.get(key) or {}
        item = _compact(
            {
                "NanoCPUs": _opt(nano_cpus, r.get("cpus")),
                "MemoryBytes": _opt(size_bytes, r.get("memory")),
                "Pids": r.get("pids") if key == "limits" else None,
            }
        )
        if item:
            out[api] = item
    return out or None


def _restart(policy: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Condition": str(policy.get("condition") or "any"),
        "Delay": duration_ns(policy.get("delay", "5s")),
        "MaxAttempts": int(policy.get("max_attempts") or 0),
        "Window": duration_ns(policy.get("window", 0)),
    }


def _run(key: str, spec: Mapping[str, Any], deploy: Mapping[str, Any]) -> ServiceRun:
    mode = spec["Mode"]
    job = "ReplicatedJob" in mode or "GlobalJob" in mode
    restarts = spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    replicas = mode.get("Replicated", {}).get("Replicas") or mode.get("ReplicatedJob", {}).get("TotalCompletions", 0)
    global_mode = "Global" in mode or "GlobalJob" in mode
    return ServiceRun(key, (), int(replicas), job, global_mode, restarts)


def _opt(fn: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else fn(value)


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in ([value] if isinstance(value, str) else value)]


def _str_labels(value: Any) -> dict[str, str]:
    return {k: "" if v is None else v for k, v in parts.key_values(value or {}).items()}


def _sorted(d: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted(d.items()))


def _compact(d: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset and empty values: the engine omits them too, and a canonical spec has one form."""
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {} and v is not False and v != ""}


def build(
    stack: str,
    data: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    update_defaults: bool = False,
    source: str | None = None,
    locate: Locate | None = None,
) -> tuple[StackSpecs, Report]:
    """Build every spec, or raise a UserError that names the file and YAML path."""
    if not _STACK_NAME.match(stack):
        raise UserError(f"{stack!r} is not a valid stack name", fix="use letters, digits, '_', '.' and '-'")
    report = Report()
    b = _Builder(stack, data, base_dir, os.environ if environ is None else environ, update_defaults, report)
    key = ""
    try:
        b.top_level()
        deps = dependencies(data)
        runs = []
        for key, svc in sorted((data.get("services") or {}).items()):
            want, run = b.service(key, svc or {})
            b.desired.append(want)
            runs.append(ServiceRun(run.key, deps[key], run.expected_tasks, run.job, run.global_mode, run.restarts))
    except Invalid as exc:
        top = exc.path[:1] in (("services",), ("networks",), ("volumes",), ("secrets",), ("configs",))
        path = exc.path if top else ("services", key) + exc.path
        raise located(exc.message, path, exc.fix, source, locate) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise located(str(exc).strip("'\""), ("services", key), None, source, locate) from None
    return StackSpecs(stack, tuple(b.desired), tuple(runs), tuple(sorted(b.external))), report


def located(
    message: str, path: tuple[PathPart, ...], fix: str | None, source: str | None, locate: Locate | None
) -> UserError:
    line, column = locate(path) if locate else (None, None)
    return UserError(message, source=source, line=line, column=column, path=path, fix=fix)
