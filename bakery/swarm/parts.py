"""Pieces of a service spec: ports, mounts, healthcheck, ulimits, environment.

Each function takes the compose value (already shape-checked by the
converter or the schema) and returns the Engine API form. Wrong values
raise `Invalid` with the path below the service, so the caller can say
`services.web.ports[0]: ...`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .units import duration_ns, size_bytes


class Invalid(ValueError):
    def __init__(self, path: tuple[str | int, ...], message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.fix = fix


_PORT = re.compile(
    r"^(?:(?:(?P<ip>[^:]+|\[[^\]]+\]):)?(?P<pub>\d+(?:-\d+)?)?:)?(?P<tgt>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)


def _range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def ports(value: list[Any], path: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Short (`"8080:80/udp"`) and long (`{target, published, mode}`) syntax, sorted like docker."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            port = {
                "Protocol": str(item.get("protocol", "tcp")),
                "TargetPort": int(item["target"]),
                "PublishMode": str(item.get("mode", "ingress")),
            }
            if item.get("published") not in (None, ""):
                port["PublishedPort"] = int(item["published"])
            out.append(port)
            continue
        match = _PORT.match(str(item))
        if not match:
            raise Invalid(
                path + (i,), f"{item!r} is not a port", "use TARGET, PUBLISHED:TARGET or PUBLISHED:TARGET/udp"
            )
        targets = _range(match["tgt"])
        published = _range(match["pub"]) if match["pub"] else []
        if published and len(published) != len(targets):
            raise Invalid(path + (i,), f"{item!r}: published and target ranges differ in size")
        for n, target in enumerate(targets):
            port = {"Protocol": match["proto"] or "tcp", "TargetPort": target, "PublishMode": "ingress"}
            if published:
                port["PublishedPort"] = published[n]
            out.append(port)
    return sorted(out, key=lambda p: (p.get("PublishedPort", 0), p["TargetPort"], p["Protocol"]))


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def _host_path(source: str, base_dir: Path | None) -> str:
    path = Path(os.path.expanduser(source))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return os.path.normpath(path)


def _short_mount(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    mode = parts[2].split(",") if len(parts) > 2 else []
    long: dict[str, Any] = {
        "type": "bind" if _is_path(parts[0]) else "volume",
        "source": parts[0],
        "target": parts[1],
        "read_only": "ro" in mode,
    }
    if "nocopy" in mode:
        long["volume"] = {"nocopy": True}
    propagation = [m for m in mode if m in ("shared", "rshared", "slave", "rslave", "private", "rprivate")]
    if propagation:
        long["bind"] = {"propagation": propagation[0]}
    return long


def mounts(
    value: list[Any],
    path: tuple[str | int, ...],
    *,
    volumes: Mapping[str, dict[str, Any]],
    base_dir: Path | None,
) -> list[dict[str, Any]]:
    """`volumes:` of a service. `volumes` maps a top-level volume key to its
    mount template (engine name, labels, driver config) built by objects.py."""
    out = []
    for i, item in enumerate(value):
        m = dict(item) if isinstance(item, Mapping) else _short_mount(str(item))
        kind, source, target = str(m.get("type", "volume")), m.get("source"), m.get("target")
        if not target:
            raise Invalid(path + (i,), "a mount needs a target path", "use SOURCE:/path/in/container")
        mount: dict[str, Any] = {"Type": kind, "Target": str(target)}
        if m.get("read_only"):
            mount["ReadOnly"] = True
        if kind == "bind":
            mount["Source"] = _host_path(str(source or ""), base_dir)
            if (m.get("bind") or {}).get("propagation"):
                mount["BindOptions"] = {"Propagation": m["bind"]["propagation"]}
        elif kind == "volume" and source:
            if str(source) not in volumes:
                raise Invalid(
                    path + (i,),
                    f"volume {source!r} is not declared under top-level volumes",
                    f"add `volumes: {{{source}: {{}}}}` at the top level",
                )
            template = volumes[str(source)]
            mount["Source"] = template["Source"]
            options = dict(template.get("VolumeOptions", {}))
            if (m.get("volume") or {}).get("nocopy"):
                options["NoCopy"] = True
            if options:
                mount["VolumeOptions"] = options
        elif kind == "volume" and (m.get("volume") or {}).get("nocopy"):
            mount["VolumeOptions"] = {"NoCopy": True}
        elif kind == "tmpfs":
            tmpfs = m.get("tmpfs") or {}
            if tmpfs.get("size") is not None:
                mount["TmpfsOptions"] = {"SizeBytes": size_bytes(tmpfs["size"])}
        elif kind not in ("volume", "tmpfs", "npipe"):
            raise Invalid(path + (i, "type"), f"unknown mount type {kind!r}", "use volume, bind or tmpfs")
        out.append(mount)
    return sorted(out, key=lambda m: m["Target"])


def healthcheck(value: Mapping[str, Any]) -> dict[str, Any]:
    if value.get("disable"):
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    test = value.get("test")
    if isinstance(test, str):
        out["Test"] = ["CMD-SHELL", test]
    elif test:
        out["Test"] = [str(t) for t in test]
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if value.get(key) is not None:
            out[api] = duration_ns(value[key])
    if value.get("retries") is not None:
        out["Retries"] = int(value["retries"])
    return out


def ulimits(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, limit in sorted(value.items()):
        if isinstance(limit, Mapping):
            out.append({"Name": name, "Soft": int(limit["soft"]), "Hard": int(limit["hard"])})
        else:
            out.append({"Name": name, "Soft": int(limit), "Hard": int(limit)})
    return out


def key_values(value: Any) -> dict[str, str | None]:
    """A list of `K=V` (or `K`) or a mapping, as a dict; None means "no value"."""
    if isinstance(value, Mapping):
        return {str(k): None if v is None else _scalar(v) for k, v in value.items()}
    out: dict[str, str | None] = {}
    for item in value or []:
        key, sep, val = str(item).partition("=")
        out[key] = val if sep else None
    return out


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def env_file(path: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, val = line.partition("=")
            out[key.strip()] = val if sep else None
    return out


def environment(values: dict[str, str | None], environ: Mapping[str, str]) -> list[str]:
    """Sorted `K=V`; a key without a value takes the deployer's environment, or is dropped."""
    out = []
    for key, val in values.items():
        if val is None:
            if key not in environ:
                continue
            val = environ[key]
        out.append(f"{key}={val}")
    return sorted(out)


def command(value: Any) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def extra_hosts(value: Any) -> list[str]:
    """compose `host:ip` -> the engine's `ip host`."""
    pairs = value.items() if isinstance(value, Mapping) else (str(v).split(":", 1) for v in value)
    return [f"{ip} {host}" for host, ip in pairs]
