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
from typing import Any

from ..errors import UserError
from ..stack.model import Blob, Network, Pairs, Volume
from ..yamlsrc import read_bytes
from .model import NAMESPACE_LABEL, Desired

CONTENT_LABEL = "com.bakery.content-hash"


def _labels(stack: str, labels: Pairs) -> dict[str, str]:
    return dict(sorted({**dict(labels), NAMESPACE_LABEL: stack}.items()))


@dataclass(frozen=True)
class Ref:
    """How services refer to a top-level object."""

    name: str  # engine name
    external: bool


def network(stack: str, net: Network) -> tuple[Ref, Desired | None]:
    if net.external:
        return Ref(net.name or net.key, True), None
    name = net.name or f"{stack}_{net.key}"
    spec: dict[str, Any] = {
        "Name": name,
        "CheckDuplicate": True,
        "Driver": net.driver,
        "Scope": "swarm",
        "Labels": _labels(stack, net.labels),
    }
    if net.driver_opts:
        spec["Options"] = dict(net.driver_opts)
    for flag, api in ((net.attachable, "Attachable"), (net.internal, "Internal"), (net.enable_ipv6, "EnableIPv6")):
        if flag:
            spec[api] = True
    if net.ipam is not None:
        ipam: dict[str, Any] = {"Driver": net.ipam.driver}
        if net.ipam.subnets:
            ipam["Config"] = [dict(pool) for pool in net.ipam.subnets]
        if net.ipam.options:
            ipam["Options"] = dict(net.ipam.options)
        spec["IPAM"] = ipam
    return Ref(name, False), Desired("network", net.key, name, spec)


def volume(stack: str, vol: Volume) -> tuple[dict[str, Any], Desired | None]:
    """The mount template services use, and the volume to create (None if external).

    The driver config goes into every mount too: a swarm volume is created by
    each node that runs a task, and only the mount tells that node the driver
    and options (NFS through the local driver's `type=nfs` options, say).
    """
    if vol.external:
        return {"Source": vol.name or vol.key}, None
    name = vol.name or f"{stack}_{vol.key}"
    labels = _labels(stack, vol.labels)
    driver = vol.driver or "local"
    opts = dict(vol.driver_opts)
    options: dict[str, Any] = {"Labels": labels}
    if vol.driver or opts:
        options["DriverConfig"] = {"Name": driver, **({"Options": opts} if opts else {})}
    spec = {"Name": name, "Driver": driver, "DriverOpts": opts, "Labels": labels}
    return {"Source": name, "VolumeOptions": options}, Desired("volume", vol.key, name, spec)


def payload(blob: Blob, base_dir: Path | None, environ: Mapping[str, str]) -> bytes:
    if blob.file:
        path = Path(blob.file)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        try:
            return read_bytes(path, UserError, f"{blob.kind} file")
        except UserError as exc:
            raise blob.ref.error(exc.message, exc.fix, "file") from None
    if blob.environment:
        if blob.environment not in environ:
            raise blob.ref.error(f"${blob.environment} is not set", f"export {blob.environment}", "environment")
        return environ[blob.environment].encode()
    if blob.content is not None:
        return blob.content.encode()
    raise blob.ref.error(f"{blob.kind} {blob.key!r} has no file, environment or content",
                         "give `file: PATH` or `external: true`")


def blob(stack: str, blob: Blob, base_dir: Path | None, environ: Mapping[str, str]) -> tuple[Ref, Desired | None]:
    """A secret or config: content-hashed name unless the file names it."""
    if blob.external:
        return Ref(blob.name or blob.key, True), None
    data = payload(blob, base_dir, environ)
    digest = hashlib.sha256(data).hexdigest()
    name = blob.name or f"{stack}_{blob.key}_{digest[:12]}"
    labels = _labels(stack, blob.labels)
    labels[CONTENT_LABEL] = digest
    # The payload stays out of the spec (specs get printed); apply adds it as `Data`.
    spec = {"Name": name, "Labels": dict(sorted(labels.items()))}
    return Ref(name, False), Desired(blob.kind, blob.key, name, spec, data=data)
