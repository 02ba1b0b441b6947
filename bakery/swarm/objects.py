"""Top-level stack objects: networks, volumes, secrets and configs.

Names and labels follow `docker stack deploy` (`<stack>_<key>`, label
`com.docker.stack.namespace`) so `docker stack ls/ps/rm` see bakery stacks.
Secrets and configs cannot be changed in place, so unless the file names them
explicitly their engine name carries a hash of the content: a new content is
a new object, the service update switches to it, and `--prune` removes the old.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .model import NAMESPACE_LABEL, Desired
from .parts import Invalid, key_values

CONTENT_LABEL = "com.bakery.content-hash"


def _labels(stack: str, value: Any) -> dict[str, str]:
    labels = {k: v or "" for k, v in key_values(value or {}).items()}
    labels[NAMESPACE_LABEL] = stack
    return dict(sorted(labels.items()))


def _external(cfg: Mapping[str, Any]) -> str | None:
    """The engine name of an external object, or None when the stack owns it."""
    ext = cfg.get("external")
    if not ext:
        return None
    if isinstance(ext, Mapping) and ext.get("name"):
        return str(ext["name"])
    return str(cfg.get("name") or "")


@dataclass(frozen=True)
class Ref:
    """How services refer to a top-level object."""

    name: str  # engine name
    external: bool


def network(stack: str, key: str, cfg: Mapping[str, Any]) -> tuple[Ref, Desired | None]:
    ext = _external(cfg)
    if ext is not None:
        return Ref(ext or key, True), None
    name = str(cfg.get("name") or f"{stack}_{key}")
    spec: dict[str, Any] = {
        "Name": name,
        "CheckDuplicate": True,
        "Driver": str(cfg.get("driver") or "overlay"),
        "Scope": "swarm",
        "Labels": _labels(stack, cfg.get("labels")),
    }
    if cfg.get("driver_opts"):
        spec["Options"] = {k: str(v) for k, v in sorted(key_values(cfg["driver_opts"]).items())}
    for key_, api in (("attachable", "Attachable"), ("internal", "Internal"), ("enable_ipv6", "EnableIPv6")):
        if cfg.get(key_):
            spec[api] = True
    ipam = cfg.get("ipam") or {}
    if ipam:
        spec["IPAM"] = _ipam(ipam)
    return Ref(name, False), Desired("network", key, name, spec)


def _ipam(ipam: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Driver": str(ipam.get("driver") or "default")}
    configs = []
    for pool in ipam.get("config") or []:
        item: dict[str, Any] = {}
        for key, api in (("subnet", "Subnet"), ("ip_range", "IPRange"), ("gateway", "Gateway")):
            if pool.get(key):
                item[api] = str(pool[key])
        if pool.get("aux_addresses"):
            item["AuxiliaryAddresses"] = dict(sorted(pool["aux_addresses"].items()))
        configs.append(item)
    if configs:
        out["Config"] = configs
    if ipam.get("options"):
        out["Options"] = dict(sorted(ipam["options"].items()))
    return out


def volume(stack: str, key: str, cfg: Mapping[str, Any]) -> tuple[dict[str, Any], Desired | None]:
    """The mount template services use, and the volume to create (None if external).

    The driver config goes into every mount too: a swarm volume is created by
    each node that runs a task, and only the mount tells that node the driver
    and options (NFS through the local driver's `type=nfs` options, say).
    """
    ext = _external(cfg)
    if ext is not None:
        return {"Source": ext or key}, None
    name = str(cfg.get("name") or f"{stack}_{key}")
    labels = _labels(stack, cfg.get("labels"))
    driver = str(cfg.get("driver") or "local")
    opts = {k: str(v) for k, v in sorted(key_values(cfg.get("driver_opts") or {}).items())}
    options: dict[str, Any] = {"Labels": labels}
    if cfg.get("driver") or opts:
        options["DriverConfig"] = {"Name": driver, **({"Options": opts} if opts else {})}
    spec = {"Name": name, "Driver": driver, "DriverOpts": opts, "Labels": labels}
    return {"Source": name, "VolumeOptions": options}, Desired("volume", key, name, spec)


def payload(kind: str, key: str, cfg: Mapping[str, Any], base_dir: Path | None, environ: Mapping[str, str]) -> bytes:
    if cfg.get("file"):
        path = Path(str(cfg["file"]))
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        from ..errors import UserError
        from ..yamlsrc import read_bytes

        try:
            return read_bytes(path, UserError, f"{kind} file")
        except UserError as exc:
            raise Invalid((f"{kind}s", key, "file"), exc.message) from None
    if cfg.get("environment"):
        var = str(cfg["environment"])
        if var not in environ:
            raise Invalid((f"{kind}s", key, "environment"), f"${var} is not set", f"export {var}")
        return environ[var].encode()
    if "content" in cfg:
        return str(cfg["content"]).encode()
    raise Invalid(
        (f"{kind}s", key),
        f"{kind} {key!r} has no file, environment or content",
        "give `file: PATH` or `external: true`",
    )


def blob(
    stack: str,
    kind: Literal["secret", "config"],
    key: str,
    cfg: Mapping[str, Any],
    base_dir: Path | None,
    environ: Mapping[str, str],
) -> tuple[Ref, Desired | None]:
    """A secret or config: content-hashed name unless the file names it."""
    ext = _external(cfg)
    if ext is not None:
        return Ref(ext or key, True), None
    data = payload(kind, key, cfg, base_dir, environ)
    digest = hashlib.sha256(data).hexdigest()
    name = str(cfg.get("name") or f"{stack}_{key}_{digest[:12]}")
    labels = _labels(stack, cfg.get("labels"))
    labels[CONTENT_LABEL] = digest
    # The payload stays out of the spec (specs get printed); apply adds it as `Data`.
    spec = {"Name": name, "Labels": dict(sorted(labels.items()))}
    return Ref(name, False), Desired(kind, key, name, spec, data=data)
