"""`extends`, `include` and several `-f` files, with docker-compose's override rules.

Override rules (compose's merge_service_dicts): single values are replaced;
mappings (environment, labels, networks, ...) merge key by key; lists of
options (ports, dns, cap_add, ...) are unions in order; volumes merge by
container path. `extends` never inherits links, volumes_from or depends_on
(docker-compose 1.x refuses to extend a service that has them); in the
Compose Specification it inherits them (Docker Compose v2).

The Compose Specification parts, as Docker Compose v2 does them: `include`
loads other files as their own projects (paths relative to them) and adds
their services, networks and volumes (a name defined twice is an error);
`profiles` leave out the services of inactive profiles (`--profile`, or
COMPOSE_PROFILES; `*` activates all); `env_file` entries may be
`{path, required}`; a `depends_on` entry with `required: false` on a service
that is left out is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ComposeError, PathPart
from ..report import Report
from . import normalize
from .keys import SPEC
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

    def _env_files(self, entries: list[Any], file_dir: Path, ref: Ref) -> list[str]:
        """The long form `{path, required}`: a missing optional file is skipped, as Compose v2 does."""
        out: list[str] = []
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                out.append(entry)
            elif entry.get("required", True) or (file_dir / entry["path"]).is_file():
                out.append(entry["path"])
            elif self.report is not None:
                ref.add(self.report, "info", f"env_file {entry['path']} is missing and not required: skipped",
                        "compose.env_file.skipped", None, "env_file", i)
        return out

    def service(self, lf: LoadedFile, name: str, chain: tuple[tuple[Path, str], ...] = ()) -> Service:
        here = (lf.key, name)
        ref = Ref(lf.doc, ("services", name))
        if here in chain:
            cycle = " -> ".join(f"{p.name}:{s}" for p, s in (*chain, here))
            raise ref.error(f"extends cycle: {cycle}", "break the cycle of extends")
        if len(chain) >= MAX_EXTENDS:
            raise ref.error(f"extends chain deeper than {MAX_EXTENDS} services", "flatten the chain of extends")
        raw = lf.doc.data["services"][name] or {}
        if lf.version == SPEC and isinstance(raw.get("env_file"), list):
            raw = {**raw, "env_file": self._env_files(raw["env_file"], lf.path.parent, ref)}
        data = normalize.service(raw, lf.path.parent, self.project_dir)
        refs = _refs(ref, raw)
        ext = data.pop("extends", None)
        if ext is None:
            return Service(name, data, refs, ref)
        base_lf = lf
        if "file" in ext:
            target = lf.path.parent / ext["file"]
            if self.report is not None and not target.resolve().is_relative_to(self.project_dir):
                ref.add(self.report, "warning", f"reads {target.resolve()}, outside the project folder "
                        f"{self.project_dir}", "compose.path.outside", None, "extends", subject=f"service {name}")
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
        if lf.version != SPEC:
            _check_extendable(base, ref)
        # Compose v2 inherits everything; docker-compose 1.x never links, volumes_from or depends_on.
        skipped = ("extends",) if lf.version == SPEC else _NOT_INHERITED
        inherited = {k: v for k, v in base.data.items() if k not in skipped}
        merged_refs = {k: v for k, v in base.refs.items() if k in inherited}
        merged_refs.update(refs)
        return Service(name, merge_service(inherited, data), merged_refs, ref)


def _check_extendable(base: Service, ref: Ref) -> None:
    """docker-compose 1.x refuses to extend a service that links to or shares with another one."""
    mode = str(base.data.get("network_mode") or "")
    for key, bad in (("links", "links" in base.data), ("volumes_from", "volumes_from" in base.data),
                     ("depends_on", "depends_on" in base.data),
                     ("network_mode: service", mode.startswith(("service:", "container:")))):
        if bad:
            raise ref.error(f"cannot extend service {base.name}: services with {key!r} cannot be extended",
                            f"move {key.split(':')[0]} from {base.name} to the services that need it", "extends")


def _section(lf: LoadedFile, name: str) -> dict[str, tuple[dict[str, Any], Ref]]:
    section = lf.doc.data.get(name) or {}
    return {k: (dict(v or {}), Ref(lf.doc, (name, k))) for k, v in section.items()}


def _check_versions(files: list[LoadedFile]) -> str:
    families = {f.version.split(".")[0] for f in files}
    if SPEC in families and "1" not in families:
        return SPEC  # Compose v2 reads every -f file as the Compose Specification
    if len(families) > 1:
        raise ComposeError("the -f files mix compose versions " + ", ".join(f"{f.path.name}: {f.version}"
                           for f in files), source=str(files[-1].path),
                           fix="give every file the same major version")
    return max((f.version for f in files), key=lambda v: tuple(int(p) for p in v.split(".")))


class _Parts:
    """What the files of a project define, merged in order."""

    def __init__(self) -> None:
        self.services: dict[str, Service] = {}
        self.networks: dict[str, tuple[dict[str, Any], Ref]] = {}
        self.volumes: dict[str, tuple[dict[str, Any], Ref]] = {}
        self.extras: dict[str, Any] = {}
        self.files: list[LoadedFile] = []
        self.included: set[str] = set()  # service names an include brought in: not to be redefined

    def add_included(self, other: _Parts, ref: Ref) -> None:
        """An included project's definitions: Compose v2 refuses a name both define."""
        for kind in ("services", "networks", "volumes"):
            mine, theirs = getattr(self, kind), getattr(other, kind)
            for name in theirs:
                if name in mine:
                    raise ref.error(f"include: {kind[:-1]} {name!r} is defined both here and in the included "
                                    "project", "rename one of them, or remove it from one file")
                mine[name] = theirs[name]
        self.included |= set(other.services)
        for name, items in other.extras.items():
            self.extras.setdefault(name, {}).update(items)
        self.files += other.files


def _include_entries(lf: LoadedFile) -> Iterable[tuple[list[Path], Path | None, list[Path], Ref]]:
    here = lf.path.parent
    for i, entry in enumerate(lf.doc.data.get("include") or []):
        ref = Ref(lf.doc, ("include", i))
        if isinstance(entry, str):
            entry = {"path": entry}
        paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        env = entry.get("env_file") or []
        env = [env] if isinstance(env, str) else env
        directory = here / entry["project_directory"] if "project_directory" in entry else None
        yield [here / p for p in paths], directory, [here / e for e in env], ref


def _collect(paths: list[Path], environ: Mapping[str, str], report: Report,
             seen: tuple[Path, ...] = (), root: Path | None = None) -> tuple[_Parts, Resolver]:
    """The -f files (or one include entry's files) merged, with what they include.

    Relative paths are rebased onto `root`, the main project's folder (the stack's)."""
    project_dir = root or paths[0].resolve().parent
    resolver = Resolver(project_dir, lambda p: load_file(p, environ, report), report)
    files = [resolver.file(p) for p in paths]
    parts = _Parts()
    parts.files = list(files)
    for lf in files:
        for included, directory, env_files, ref in _include_entries(lf):
            _include(parts, included, directory, env_files, ref, environ, report, (*seen, lf.key), project_dir)
    _merge_files(parts, files, resolver, report)
    return parts, resolver


def _include(parts: _Parts, paths: list[Path], directory: Path | None, env_files: list[Path], ref: Ref,
             environ: Mapping[str, str], report: Report, seen: tuple[Path, ...], root: Path) -> None:
    for p in paths:
        if p.resolve() in seen:
            raise ref.error(f"include cycle: {p.name} includes itself", "remove one of the include entries")
        if not p.is_file():
            raise ref.error(f"include: {p} does not exist", "fix the path (relative to this file)")
    if directory is not None and directory.resolve() != paths[0].resolve().parent:
        ref.add(report, "warning", "include: project_directory is not supported; paths stay relative to "
                "the included file", "compose.include.project_directory", None, "project_directory")
    env = dict(environ)
    if env_files:
        from .interpolate import parse_env_file

        for f in env_files:
            env.update({k: v for k, v in parse_env_file(f).items() if v is not None})
        env.update(environ)
    sub, _ = _collect(paths, env, report, seen, root)
    parts.add_included(sub, ref)


def _merge_files(parts: _Parts, files: list[LoadedFile], resolver: Resolver, report: Report) -> None:
    services, networks, volumes, extras = parts.services, parts.networks, parts.volumes, parts.extras
    for lf in files:
        for name in lf.doc.data.get("services") or {}:
            if name in parts.included:
                raise Ref(lf.doc, ("services", name)).error(
                    f"service {name} conflicts with the service of that name an include brings in",
                    "rename one of them, or remove it from one file")
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
        if "name" in lf.doc.data:
            Ref(lf.doc, ("name",)).add(report, "info", f"project name {lf.doc.data['name']!r} not carried over: "
                                       "a stack is named when deployed", "compose.name.dropped",
                                       f"bakery deploy -n {lf.doc.data['name']}, or docker stack deploy "
                                       f"-c stack.yml {lf.doc.data['name']}")


# A compose key and the deploy key that says the same (Compose v2 refuses two different values).
_TWICE = (("cpus", ("resources", "limits", "cpus"), float), ("mem_limit", ("resources", "limits", "memory"), None),
          ("mem_reservation", ("resources", "reservations", "memory"), None),
          ("pids_limit", ("resources", "limits", "pids"), int), ("scale", ("replicas",), int))


def _check_twice_said(svc: Service) -> None:
    from .values import size_bytes

    deploy = svc.data.get("deploy") or {}
    for key, path, kind in _TWICE:
        holder: Any = deploy
        for part in path[:-1]:
            holder = holder.get(part) if isinstance(holder, dict) else None
        here = svc.data.get(key)
        # Compose v2: once deploy.resources.limits (or reservations) is there, a value missing from it
        # counts as a different one; replicas only when both are given.
        if here is None or not isinstance(holder, dict) or (path[-1] == "replicas" and "replicas" not in holder):
            continue
        there = holder.get(path[-1])
        if there is None:
            raise svc.at(key).error(f"{key} {here!r} and deploy.{'.'.join(path[:-1])} without "
                                    f"{path[-1]} differ", f"give deploy.{'.'.join(path)} the same value, or keep "
                                    "only one of them (Docker Compose v2 refuses two values)")
        try:
            same = (kind(here) == kind(there)) if kind else size_bytes(here) == size_bytes(there)
        except (TypeError, ValueError):
            continue  # a bad value: conversion says so, located
        if not same:
            raise svc.at(key).error(f"{key} {here!r} and deploy.{'.'.join(path)} {there!r} differ",
                                    "keep one of them (Docker Compose v2 refuses two values)")


def active_profiles(profiles: Iterable[str] | None, environ: Mapping[str, str]) -> set[str]:
    """--profile values, else COMPOSE_PROFILES (comma separated), as Compose v2 takes them."""
    given = list(profiles or [])
    if not given:
        given = [p.strip() for p in environ.get("COMPOSE_PROFILES", "").split(",")]
    return {p for p in given if p}


def _apply_profiles(services: dict[str, Service], active: set[str], report: Report) -> dict[str, Service]:
    """Services without profiles always run; the others only when one of their profiles is active."""
    def enabled(svc: Service) -> bool:
        wanted = svc.data.get("profiles") or []
        return not wanted or "*" in active or bool(active & set(wanted))

    kept = {n: s for n, s in services.items() if enabled(s)}
    left_out = {n: s for n, s in services.items() if n not in kept}
    for name, svc in sorted(left_out.items()):
        profiles = ", ".join(svc.data["profiles"])
        svc.at("profiles").add(report, "info", f"left out: its profiles ({profiles}) are not active",
                               "compose.profiles.inactive", f"--profile {svc.data['profiles'][0]} includes it",
                               subject=f"service {name}")
    out: dict[str, Service] = {}
    for name, svc in kept.items():
        data = {k: v for k, v in svc.data.items() if k != "profiles"}
        if "depends_on" in data:
            data["depends_on"] = _reachable_depends(svc, data["depends_on"], left_out, report)
            if not data["depends_on"]:
                del data["depends_on"]
        out[name] = Service(name, data, svc.refs, svc.ref)
    return out


def _reachable_depends(svc: Service, depends: dict[str, Any], left_out: dict[str, Service],
                       report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dep, spec in depends.items():
        required = spec.get("required", True)  # normalize made every entry a mapping
        if spec.get("restart") is True and dep not in left_out:
            svc.at("depends_on").add(
                report, "warning", "dropped: swarm never restarts the service when this dependency is updated "
                "(compose up does)", "compose.depends_on.restart", "after updating the dependency, run `docker "
                "service update --force STACK_SERVICE` for this one", dep, "restart", kind="lost",
                subject=f"service {svc.name}")
        if dep not in left_out:
            out[dep] = spec
        elif required:
            raise svc.at("depends_on").error(
                f"service {svc.name} depends on {dep}, which is left out (profiles: "
                f"{', '.join(left_out[dep].data['profiles'])})",
                f"--profile {left_out[dep].data['profiles'][0]}, or set required: false on the dependency", dep)
        else:
            svc.at("depends_on").add(report, "info", "optional dependency left out (its profiles are not active)",
                                     "compose.depends_on.skipped", None, dep, subject=f"service {svc.name}")
    return out


Unset = dict[str, Mapping[tuple[PathPart, ...], list[str]]]  # file -> YAML path -> unset variables there


def load(paths: list[Path], environ: Mapping[str, str], report: Report,
         profiles: Iterable[str] | None = None) -> tuple[Project, Unset]:
    """The project (extends and includes resolved, the -f files merged in order, later files override),
    and where unset variables emptied values (for messages about those values)."""
    if not paths:
        raise ComposeError("no compose file given", fix="bakery convert docker-compose.yml")
    parts, resolver = _collect(paths, environ, report)
    version = _check_versions(parts.files)
    services = parts.services
    if version == SPEC or any("profiles" in s.data for s in services.values()):
        services = _apply_profiles(services, active_profiles(profiles, environ), report)
    for svc in services.values():
        if version == SPEC:
            _check_twice_said(svc)
        elif version == "1" and "image" in svc.data and "build" in svc.data:
            raise svc.at("build").error("both image and build (version 1 takes one)",
                                        "keep one of them, or move the file to version 2", "build")
    if not services:  # as both compose tools take it: a stack with no services (deploying it changes nothing)
        report.info("no services defined: the stack has none", code="compose.services.none", source=str(paths[0]))
    unset: Unset = {}
    for lf in [*parts.files, *resolver.files.values()]:
        if lf.unset_at:
            shown = getattr(lf.doc, "shown", None)
            unset[lf.doc.source] = {tuple(shown(p) if shown else p): n for p, n in lf.unset_at.items()}
    return Project(version, services, parts.networks, parts.volumes,
                   {k: v for k, v in parts.extras.items() if v}, resolver.project_dir, dict(environ)), unset
