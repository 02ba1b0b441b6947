"""A deterministic `docker save` archive of a busybox image, made without an engine.

`docker save` of an imported image embeds the import time, so its bytes (and
the bake cache key) would change every session. This writes the same format
(manifest.json + config + one layer) with fixed timestamps: the same input
gives the same bytes, and `docker load` in the baked image reads it like any
saved image.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

APPLETS = ("sh", "httpd", "sleep", "echo", "cat", "wget", "ls", "true", "env", "nc", "hostname")


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, link: str = "", mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = mode
    if link:
        info.type = tarfile.SYMTYPE
        info.linkname = link
        tar.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _tar(members: list[tuple[str, bytes | None, str, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, link, mode in members:
            _add(tar, name, data, link=link, mode=mode)
    return buf.getvalue()


def busybox_archive(dest: Path, ref: str = "local/busybox:1") -> Path:
    busybox = Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    members: list[tuple[str, bytes | None, str, int]] = [("bin", None, "", 0), ("www", None, "", 0)]
    members.append(("bin/busybox", busybox, "", 0o755))
    members += [(f"bin/{a}", b"", "busybox", 0o777) for a in APPLETS]
    members.append(("www/index.html", b"hello from bakery\n", "", 0o644))
    layer = _tar(members)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "bakery tests"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = hashlib.sha256(layer).hexdigest()
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": [f"{layer_dir}/layer.tar"]}]).encode()
    outer = _tar(
        [
            (layer_dir, None, "", 0),
            (f"{layer_dir}/layer.tar", layer, "", 0o644),
            (config_name, config, "", 0o644),
            ("manifest.json", manifest, "", 0o644),
        ]
    )
    dest.write_bytes(outer)
    return dest
