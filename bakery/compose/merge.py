"""`extends` and several `-f` files, with docker-compose 1.x's override rules.

Override rules (compose's merge_service_dicts): single values are replaced;
mappings (environment, labels, networks, ...) merge key by key; lists of
options (ports, dns, cap_add, ...) are unions in order; volumes merge by
container path. `extends` never inherits links, volumes_from or depends_on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from ..report import Report
from . import normalize
from .loader import LoadedFile, load_file
from .model import Project, Ref, Service

_MAPPINGS = {"environment", "labels", "extra_hosts", "sysctls", "depends_on", "networks", "ulimits",
             "healthcheck", "blkio_config", "storage_opt", "logging", "build", "deploy"}
_UNIONS = {"ports", "expose", "external_links", "cap_add", "cap_drop", "dns", "dns_search", "dns_opt",
           "env_file", "tmpfs", "security_opt", "group_add", "links", "volumes_from", "devices",
           "device_cgroup_rules", "secrets", "configs"}
MAX_EXTENDS = 32  # compose has no limit; a chain this deep is a mistake (or a hostile file)
_NOT_INHERITED = ("links", "volumes_from", "depends_on", "extends")
_RENAMED = {"net": "network_mode", "log_driver": "logging", "log_opt": "logging", "dockerfile": "build"}


def _target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target", ""))
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _deep(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _deep(base.get(k), v) if k in base else v
        return out
    return over


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key not in base:
            out[key] = value
        elif key == "volumes":
            merged = {_target(v): v for v in base[key]}
            merged.update({_target(v): v for v in value})
            out[key] = list(merged.values())
        elif key in _UNIONS and isinstance(value, list) and isinstance(base[key], list):
            out[key] = base[key] + [v for v in value if v not in base[key]]
        elif key in _MAPPINGS and isinstance(value, dict) and isinstance(base[key], dict):
            out[key] = _deep(base[key], value)
        else:
            out[key] = value
    return out


def _refs(doc_ref: Ref, raw: dict[str, Any]) -> dict[str, Ref]:
    refs = {key: Ref(doc_ref.doc, (*doc_ref.path, key)) for key in raw}
    for old, new in _RENAMED.items():
        if old in refs:
            refs.setdefault(new, refs[old])
    return refs


class Resolver:
    """Resolves services of files (with extends), loading extended files once."""

    def __init__(self, project_dir: Path, loader: Callable[[Path], LoadedFile], report: Report | None = None) -> None:
        self.project_dir = project_dir
        self.report = report
        self.loader = loader
        self.files: dict[Path, LoadedFile] = {}

    def file(self, path: Path) -> LoadedFile:
        key = path.resolve()
        if key not in self.files:
            self.files[key] = self.loader(path)
        return self.files[key]

    def service(self, lf: LoadedFile, name: str, chain: tuple[tuple[Path, str], ...] = ()) -> Service:
        here = (lf.key, name)
        ref = Ref(lf.doc, ("services", name))
        if here in chain:
            cycle = " -> ".join(f"{p.name}:{s}" for p, s in (*chain, here))
            raise ref.error(f"extends cycle: {cycle}", "break the cycle of extends")
        if len(chain) >= MAX_EXTENDS:
            raise ref.error(f"extends chain deeper than {MAX_EXTENDS} services", "flatten the chain of extends")
        raw = lf.doc.data["services"][name] or {}
        data = normalize.service(raw, lf.path.parent, self.project_dir)
        refs = _refs(ref, raw)
        ext = data.pop("extends", None)
        if ext is None:
            return Service(name, data, refs, ref)
        base_lf = lf
        if "file" in ext:
            target = lf.path.parent / ext["file"]
            if self.report is not None and not target.resolve().is_relative_to(self.project_dir):
                ref.add(self.report, "warning", f"service {name}: extends reads {target.resolve()}, outside the "
                        f"project folder {self.project_dir}", "compose.path.outside", None, "extends")
            try:
                base_lf = self.file(target)
            except ComposeError as exc:
                if exc.line is not None:
                    raise
                raise ref.error(f"extends: {exc.message}", exc.fix or "check the path", "extends") from None
            if (base_lf.version == "1") != (lf.version == "1"):
                raise ref.error(f"cannot extend a version {base_lf.version} file from a version {lf.version} file",
                                "convert both files to the same version", "extends")
        services = base_lf.doc.data.get("services") or {}
        if ext["service"] not in services:
            raise ref.error(f"extends: no service {ext['service']!r} in {base_lf.path.name}",
                            "name a service defined in that file", "extends")
        base = self.service(base_lf, ext["service"], (*chain, here))
        inherited = {k: v for k, v in base.data.items() if k not in _NOT_INHERITED}
        merged_refs = {k: v for k, v in base.refs.items() if k in inherited}
        merged_refs.update(refs)
        return Service(name, merge_service(inherited, data), merged_refs, ref)


def _section(lf: LoadedFile, name: str) -> dict[str, tuple[dict[str, Any], Ref]]:
    section = lf.doc.data.get(name) or {}
    return {k: (dict(v or {}), Ref(lf.doc, (name, k))) for k, v in section.items()}


def _check_versions(files: list[LoadedFile]) -> str:
    families = {f.version.split(".")[0] for f in files}
    if len(families) > 1:
        raise ComposeError("the -f files mix compose versions " + ", ".join(f"{f.path.name}: {f.version}"
                           for f in files), source=str(files[-1].path),
                           fix="give every file the same major version")
    return max((f.version for f in files), key=lambda v: tuple(int(p) for p in v.split(".")))


def load_project(paths: list[Path], environ: Mapping[str, str], report: Report) -> Project:
    """Load, resolve extends and merge the -f files in order (later files override)."""
    if not paths:
        raise ComposeError("no compose file given", fix="bakery convert docker-compose.yml")
    project_dir = paths[0].resolve().parent
    resolver = Resolver(project_dir, lambda p: load_file(p, environ, report), report)
    files = [resolver.file(p) for p in paths]
    version = _check_versions(files)
    services: dict[str, Service] = {}
    networks: dict[str, tuple[dict[str, Any], Ref]] = {}
    volumes: dict[str, tuple[dict[str, Any], Ref]] = {}
    extras: dict[str, Any] = {}
    for lf in files:
        for name in lf.doc.data.get("services") or {}:
            svc = resolver.service(lf, name)
            old = services.get(name)
            if old is not None:
                svc = Service(name, merge_service(old.data, svc.data), {**old.refs, **svc.refs}, svc.ref)
            services[name] = svc
        for name, target in (("networks", networks), ("volumes", volumes)):
            for key, (value, ref) in _section(lf, name).items():
                target[key] = (_deep(target[key][0], value) if key in target else value, ref)
        for name in ("secrets", "configs"):
            extras.setdefault(name, {}).update(lf.doc.data.get(name) or {})
        if isinstance(lf.doc.data.get("x-bakery"), dict):  # bakery's own side data in a stack file it wrote
            extras.setdefault("x-bakery", {}).update(lf.doc.data["x-bakery"])
        for name in sorted(k for k in lf.doc.data if k.startswith("x-") and k != "x-bakery"):
            Ref(lf.doc, (name,)).add(report, "info", f"top-level {name} not carried over (its anchors are "
                                     "already applied)", "compose.extension.dropped")
    if not services:
        raise ComposeError("no services defined", source=str(paths[0]), fix="define at least one service")
    return Project(version, services, networks, volumes, {k: v for k, v in extras.items() if v}, project_dir)
