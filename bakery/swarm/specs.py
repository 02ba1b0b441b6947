"""The typed stack -> canonical Engine API specs, like `docker stack deploy` builds them.

Canonical means: every default the engine would otherwise pick is written out
(restart policy, update and rollback config: docker-py's own defaults are
traps), lists are sorted, and references to networks, secrets and configs are
by name. Values arrive parsed (stack.load), so nothing here reads a syntax.
The spec's hash goes into a label, so the next deploy can tell a changed file
from an unchanged one without guessing the engine's defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..stack.model import Network, NodeLabel, Ref, Service, Stack, UpdateConfig
from . import objects
from .model import HASH_LABEL, IMAGE_LABEL, NAMESPACE_LABEL, Desired, ServiceRun

_STACK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")


@dataclass(frozen=True)
class StackSpecs:
    stack: str
    objects: tuple[Desired, ...]  # networks, volumes, secrets, configs, then services
    runs: tuple[ServiceRun, ...]
    external: tuple[tuple[str, str], ...]  # (kind, engine name) that must already exist
    refs: Mapping[str, Ref] = field(default_factory=dict, compare=False, repr=False)  # service key -> its YAML
    node_labels: tuple[NodeLabel, ...] = ()  # pattern hints: the plan labels the live nodes they admit


def spec_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class _Builder:
    def __init__(self, stack: str, model: Stack, base_dir: Path | None, environ: Mapping[str, str]) -> None:
        self.stack, self.model, self.base_dir, self.environ = stack, model, base_dir, environ
        self.desired: list[Desired] = []
        self.external: set[tuple[str, str]] = set()
        self.networks: dict[str, str] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.blobs: dict[tuple[str, str], str] = {}

    def top_level(self) -> None:
        declared = {n.key: n for n in self.model.networks}
        used = {a.network: s for s in self.model.services for a in s.networks}
        for key, svc in sorted(used.items()):
            if key not in declared and key != "default":
                raise svc.at("networks").error(f"network {key!r} is not declared under the top-level networks",
                                               f"add `networks: {{{key}: {{}}}}` at the top level")
        if "default" in used and "default" not in declared:
            declared["default"] = Network("default", self.model.services[0].ref)
        for key, net in sorted(declared.items()):
            if key == "default" and key not in used:
                continue
            ref, want = objects.network(self.stack, net)
            self._keep("network", ref.name, want)
            self.networks[key] = ref.name
        for vol in self.model.volumes:
            template, want = objects.volume(self.stack, vol)
            self._keep("volume", template["Source"], want)
            self.volumes[vol.key] = template
        for blob in (*self.model.secrets, *self.model.configs):
            ref, want = objects.blob(self.stack, blob, self.base_dir, self.environ)
            self._keep(blob.kind, ref.name, want)
            self.blobs[(blob.kind, blob.key)] = ref.name

    def _keep(self, kind: str, name: str, want: Desired | None) -> None:
        if want is None:
            self.external.add((kind, name))
        else:
            self.desired.append(want)

    def service(self, svc: Service) -> tuple[Desired, ServiceRun]:
        ports = [_compact({"Protocol": p.protocol, "TargetPort": p.target, "PublishedPort": p.published,
                           "PublishMode": p.mode}) for p in svc.ports]
        spec: dict[str, Any] = {
            "Name": f"{self.stack}_{svc.name}",
            "Labels": dict(sorted({**dict(svc.service_labels), NAMESPACE_LABEL: self.stack,
                                   IMAGE_LABEL: svc.image}.items())),
            "TaskTemplate": self._task(svc),
            "Mode": _mode(svc),
            "UpdateConfig": _update(svc.update),
            "RollbackConfig": _update(svc.rollback),
            "EndpointSpec": _compact({"Mode": svc.endpoint_mode, "Ports": ports}),
        }
        spec["Labels"][HASH_LABEL] = spec_hash(spec)
        job = svc.mode.endswith("-job")
        run = ServiceRun(svc.name, svc.depends_on, svc.replicas if svc.mode.startswith("replicated") else 0, job,
                         svc.mode.startswith("global"), svc.restart.condition == "any")
        return Desired("service", svc.name, spec["Name"], spec), run

    def _task(self, svc: Service) -> dict[str, Any]:
        hc = svc.healthcheck
        container = _compact({
            "Image": svc.image,
            "Command": list(svc.entrypoint) if svc.entrypoint is not None else None,
            "Args": list(svc.command) if svc.command is not None else None,
            "Hostname": svc.hostname, "User": svc.user, "Dir": svc.working_dir,
            "Env": sorted(f"{k}={self.environ[k] if v is None else v}" for k, v in svc.env
                          if v is not None or k in self.environ),
            "Labels": dict(sorted({**dict(svc.labels), NAMESPACE_LABEL: self.stack}.items())),
            "Mounts": sorted((self._mount(svc, i) for i in range(len(svc.mounts))), key=lambda m: m["Target"]),
            "StopGracePeriod": svc.stop_grace_period, "StopSignal": svc.stop_signal,
            "TTY": svc.tty, "OpenStdin": svc.stdin_open, "ReadOnly": svc.read_only, "Init": svc.init,
            "Isolation": svc.isolation,
            "Healthcheck": None if hc is None else _compact({
                "Test": list(hc.test), "Interval": hc.interval, "Timeout": hc.timeout,
                "StartPeriod": hc.start_period, "Retries": hc.retries}) or None,
            "Hosts": [f"{ip} {host}" for host, ip in svc.extra_hosts],
            "DNSConfig": _compact({"Nameservers": list(svc.dns), "Search": list(svc.dns_search)}),
            "CapabilityAdd": list(svc.cap_add), "CapabilityDrop": list(svc.cap_drop),
            "Sysctls": dict(svc.sysctls),
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in svc.ulimits],
            "Privileges": {"CredentialSpec": {k.capitalize(): v for k, v in svc.credential_spec}}
            if svc.credential_spec else None,
            "Secrets": self._blob_refs("secret", svc),
            "Configs": self._blob_refs("config", svc),
        })
        res, place = svc.resources, svc.placement
        return _compact({
            "ContainerSpec": container,
            "Resources": _compact({
                "Limits": _compact({"NanoCPUs": res.cpus, "MemoryBytes": res.memory, "Pids": res.pids}),
                "Reservations": _compact({"NanoCPUs": res.reserve_cpus, "MemoryBytes": res.reserve_memory}),
            }) or None,
            "RestartPolicy": {"Condition": svc.restart.condition, "Delay": svc.restart.delay,
                              "MaxAttempts": svc.restart.max_attempts, "Window": svc.restart.window},
            "Placement": _compact({
                "Constraints": list(place.constraints),
                "Preferences": [{"Spread": {"SpreadDescriptor": p}} for p in place.preferences],
                "MaxReplicas": place.max_replicas,
            }),
            "Networks": sorted((_compact({"Target": self.networks[a.network], "Aliases": _aliases(
                                    svc.name, a.aliases, self.networks[a.network])})
                                for a in svc.networks), key=lambda a: a["Target"]),
            "LogDriver": _compact({"Name": svc.log_driver, "Options": dict(svc.log_options)}) or None,
        })

    def _mount(self, svc: Service, index: int) -> dict[str, Any]:
        m = svc.mounts[index]
        mount: dict[str, Any] = {"Type": m.type, "Target": m.target}
        if m.read_only:
            mount["ReadOnly"] = True
        if m.type == "bind":
            mount["Source"] = _host_path(m.source or "", self.base_dir)
            if m.propagation:
                mount["BindOptions"] = {"Propagation": m.propagation}
        elif m.type == "volume" and m.source:
            if m.source not in self.volumes:
                raise svc.at("volumes", index).error(f"volume {m.source!r} is not declared under the top-level "
                                                     "volumes", f"add `volumes: {{{m.source}: {{}}}}` at the top level")
            template = self.volumes[m.source]
            mount["Source"] = template["Source"]
            options = dict(template.get("VolumeOptions", {}))
            if m.nocopy:
                options["NoCopy"] = True
            if options:
                mount["VolumeOptions"] = options
        elif m.type == "volume" and m.nocopy:
            mount["VolumeOptions"] = {"NoCopy": True}
        elif m.type == "tmpfs" and m.tmpfs_size is not None:
            mount["TmpfsOptions"] = {"SizeBytes": m.tmpfs_size}
        return mount

    def _blob_refs(self, kind: str, svc: Service) -> list[dict[str, Any]]:
        out = []
        for ref in svc.secrets if kind == "secret" else svc.configs:
            if (kind, ref.source) not in self.blobs:
                raise (ref.ref or svc.at(f"{kind}s")).error(f"{kind} {ref.source!r} is not declared",
                                                            f"add it under top-level `{kind}s:`")
            out.append({"File": {"Name": ref.target, "UID": ref.uid, "GID": ref.gid, "Mode": ref.mode},
                        f"{kind.capitalize()}Name": self.blobs[(kind, ref.source)]})
        return out


def _host_path(source: str, base_dir: Path | None) -> str:
    path = Path(os.path.expanduser(source))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return os.path.normpath(path)


def _mode(svc: Service) -> dict[str, Any]:
    if svc.mode == "replicated":
        return {"Replicated": {"Replicas": svc.replicas}}
    if svc.mode == "global":
        return {"Global": {}}
    if svc.mode == "replicated-job":
        return {"ReplicatedJob": {"MaxConcurrent": svc.replicas, "TotalCompletions": svc.replicas}}
    return {"GlobalJob": {}}


def _update(cfg: UpdateConfig) -> dict[str, Any]:
    return {"Parallelism": cfg.parallelism, "Delay": cfg.delay, "FailureAction": cfg.failure_action,
            "Monitor": cfg.monitor, "MaxFailureRatio": cfg.max_failure_ratio, "Order": cfg.order}


def _compact(d: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset and empty values: the engine omits them too, and a canonical spec has one form."""
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {} and v is not False and v != ""}


def build(stack: str, model: Stack, *, base_dir: Path | None = None,
          environ: Mapping[str, str] | None = None) -> StackSpecs:
    """Every spec of the stack, or a UserError that names the file and YAML path."""
    if not _STACK_NAME.match(stack):
        raise UserError(f"{stack!r} is not a valid stack name", fix="use letters, digits, '_', '.' and '-'")
    b = _Builder(stack, model, base_dir, os.environ if environ is None else environ)
    b.top_level()
    runs = []
    for svc in model.services:
        want, run = b.service(svc)
        b.desired.append(want)
        runs.append(run)
    return StackSpecs(stack, tuple(b.desired), tuple(runs), tuple(sorted(b.external)),
                      {s.name: s.ref for s in model.services}, model.node_labels)


PREDEFINED_NETWORKS = ("host", "bridge", "none")  # the engine's own: no default alias, compared by name


def _aliases(service: str, given: tuple[str, ...], target: str) -> list[str]:
    """The service's own name is an alias on user-defined networks only, as `docker stack deploy`
    adds it (`host`, `bridge`, `none` take no default alias; the file's own are kept)."""
    if target == "default" or target in PREDEFINED_NETWORKS or target.startswith("container:"):
        return list(given)
    return [service, *(x for x in given if x != service)]
