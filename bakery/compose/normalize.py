"""One shape per service key, so merging and converting see one form.

Lists of `K=V` become mappings, strings become one-item lists, version 1
spellings (`net`, `log_driver`, `log_opt`, `dockerfile`) become their 2.x
keys, `depends_on` lists become `{service: {condition}}`, and relative paths
are fixed to where the file that wrote them lives.

Classic-Swarm hints in an environment list (`constraint:node==x`) are kept
whole as a key with no value, so two hints on the same key do not collapse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .hints import HINT_PREFIXES

_LISTS = ("dns", "dns_search", "env_file", "tmpfs")


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def environment(value: Any) -> dict[str, str | None]:
    if isinstance(value, dict):
        return {str(k): _scalar_text(v) for k, v in value.items()}
    out: dict[str, str | None] = {}
    for entry in value or []:
        if entry.startswith(HINT_PREFIXES):
            out[entry] = None
            continue
        key, sep, val = entry.partition("=")
        out[key] = val if sep else None
    return out


def labels(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): _scalar_text(v) or "" for k, v in value.items()}
    out: dict[str, str] = {}
    for entry in value or []:
        key, _, val = entry.partition("=")
        out[key] = val
    return out


def extra_hosts(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): _scalar_text(v) or "" for k, v in value.items()}
    out: dict[str, str] = {}
    for entry in value or []:
        host, _, ip = entry.partition(":")
        out[host.strip()] = ip.strip()
    return out


def depends_on(value: Any) -> dict[str, dict[str, Any]]:
    """`{service: {condition}}`, with the long form's `restart` and `required` where written (read after
    the files are merged: an override file's entry for another dependency keeps them)."""
    if isinstance(value, dict):
        return {k: _dependency(v or {}) for k, v in value.items()}
    return {name: {"condition": "service_started"} for name in value}


def _dependency(spec: dict[str, Any]) -> dict[str, Any]:
    return {"condition": spec.get("condition", "service_started"),
            **{key: spec[key] for key in ("restart", "required") if key in spec}}


def _rebase(path: str, file_dir: Path, project_dir: Path) -> str:
    """A relative path written in `file_dir`, made relative to the project directory."""
    if file_dir == project_dir or not path.startswith("."):
        return path
    rel = os.path.relpath(file_dir / path, project_dir)
    return rel if rel.startswith(".") else "./" + rel


def volume(entry: Any, file_dir: Path, project_dir: Path) -> Any:
    if isinstance(entry, dict):
        src = entry.get("source")
        if isinstance(src, str) and entry.get("type") == "bind":
            return {**entry, "source": _rebase(src, file_dir, project_dir)}
        return entry
    src, sep, rest = str(entry).partition(":")
    if sep and src.startswith("."):
        return f"{_rebase(src, file_dir, project_dir)}:{rest}"
    return entry


def service(data: dict[str, Any], file_dir: Path, project_dir: Path) -> dict[str, Any]:
    """Normalise one service mapping (a new dict; the input is not changed)."""
    out = dict(data)
    for key in _LISTS:
        if isinstance(out.get(key), str):
            out[key] = [out[key]]
    if "environment" in out:
        out["environment"] = environment(out["environment"])
    for key, fn in (("labels", labels), ("extra_hosts", extra_hosts), ("sysctls", labels)):
        if key in out:
            out[key] = fn(out[key])
    if "depends_on" in out:
        out["depends_on"] = depends_on(out["depends_on"])
    if isinstance(out.get("networks"), list):
        out["networks"] = {name: None for name in out["networks"]}
    if isinstance(out.get("build"), str):
        out["build"] = {"context": out["build"]}
    if isinstance(out.get("extends"), str):
        out["extends"] = {"service": out["extends"]}
    if "env_file" in out:
        out["env_file"] = [str((file_dir / p).resolve()) for p in out["env_file"]]
    if "volumes" in out:
        out["volumes"] = [volume(v, file_dir, project_dir) for v in out["volumes"]]
    _v1_spellings(out)
    return out


def _v1_spellings(out: dict[str, Any]) -> None:
    if "net" in out:
        out.setdefault("network_mode", out.pop("net"))
    if "log_driver" in out or "log_opt" in out:
        logging = {"driver": out.pop("log_driver", "json-file")}
        if "log_opt" in out:
            logging["options"] = out.pop("log_opt")
        out.setdefault("logging", logging)
    if "dockerfile" in out:
        build = dict(out.get("build") or {})
        build["dockerfile"] = out.pop("dockerfile")
        out["build"] = build
