"""The bake user-data: a #cloud-config that turns a base image into a baked node image.

Booted once on a builder server, it installs Docker by the cluster's method
(and the NFS client the nodes may need), loads `docker save` archives and
pulls images, writes the baked-image marker /etc/bakery/baked (JSON:
bakery_version, docker_version, images [{ref, id}], built_at) and powers off
through cloud-init's power_state, only when all of that succeeded. The
hygiene (`cloud-init clean --logs --machine-id --seed`, an empty machine-id,
no Docker engine identity, no SSH host keys) runs at shutdown from a unit
under /run, after cloud-init has written its last state, so the snapshot
starts clean. Everything bake-specific lives under /run and is gone from the
image. No secrets are in this user-data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from . import __version__, cloudyaml
from .config import ClusterConfig
from .errors import UserError
from .render import UserData, fill, finish, templates_dir

BAKE_DIR = "/run/bakery-bake"
MARKER = "/etc/bakery/baked"
MARKER_PREFIX = "bakery-bake-marker: "
DONE_LINE = "bakery-bake: done"
FAILED_LINE = "bakery-bake: FAILED"
# Packages every baked image carries: nodes skip package installs when the marker exists.
PACKAGES = ("ca-certificates", "curl", "nfs-common", "python3")

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*\Z")


@dataclass(frozen=True)
class Archive:
    """A `docker save` archive: an https URL or an absolute path on the builder."""

    source: str
    sha256: str | None = None


@dataclass(frozen=True)
class BakeSpec:
    bake_id: str
    install: str
    version: str | None
    apt_proxy: str | None
    storage_driver: str | None
    pulls: tuple[str, ...] = ()
    archives: tuple[Archive, ...] = ()


def spec_from_config(cfg: ClusterConfig, bake_id: str, pulls: tuple[str, ...] = (),
                     archives: tuple[Archive, ...] = ()) -> BakeSpec:
    if cfg.docker.install == "none":
        raise UserError("docker.install is none: a bake must install Docker",
                        path=("docker", "install"), fix="use distro, apt-repo or convenience-script")
    for ref in pulls:
        if not _REF.match(ref):
            raise UserError(f"{ref!r} is not an image reference", fix="use e.g. nginx:1.27 or registry/app@sha256:...")
    for a in archives:
        if not (a.source.startswith("https://") or a.source.startswith("http://") or a.source.startswith("/")):
            raise UserError(f"archive {a.source!r}: the builder cannot reach it",
                            fix="give an http(s) URL the builder can download, or a path on the base image")
        if a.sha256 is not None and not _SHA256.match(a.sha256):
            raise UserError(f"archive {a.source}: {a.sha256!r} is not a sha256", fix="64 lower-case hex digits")
    return BakeSpec(bake_id=bake_id, install=cfg.docker.install, version=cfg.docker.version,
                    apt_proxy=cfg.docker.apt_proxy, storage_driver=cfg.docker.daemon.storage_driver,
                    pulls=tuple(pulls), archives=tuple(archives))


def cloud_config(spec: BakeSpec) -> tuple[str, list[str]]:
    """The #cloud-config text and the paths it writes; same spec, same bytes."""
    values = {"bake_id": spec.bake_id}

    def entry(path: str, content: str, mode: str = "0644") -> dict[str, str]:
        return {"path": path, "owner": "root:root", "permissions": mode, "content": content}

    files = [
        entry(f"{BAKE_DIR}/bake.json", json.dumps({"bake_id": spec.bake_id, "bakery_version": __version__},
                                                  sort_keys=True) + "\n"),
        entry(f"{BAKE_DIR}/bake.sh", fill(
            "cloud-init/bake.sh.j2", install=spec.install, version=spec.version, packages=PACKAGES,
            storage_driver=spec.storage_driver, archives=spec.archives, pulls=spec.pulls, **values), "0755"),
        entry(f"{BAKE_DIR}/run.sh", fill("cloud-init/bake-run.sh.j2", **values), "0755"),
        entry(f"{BAKE_DIR}/seal.sh", fill("cloud-init/bake-seal.sh.j2", **values), "0755"),
        entry(f"{BAKE_DIR}/marker.py", (templates_dir() / "cloud-init" / "bake-marker.py").read_text(), "0755"),
        entry("/run/systemd/system/bakery-seal.service", fill("cloud-init/bake-seal.service.j2", **values)),
    ]
    doc: dict[str, object] = {}
    if spec.apt_proxy:
        doc["apt"] = {"proxy": spec.apt_proxy}
    doc["write_files"] = files
    doc["runcmd"] = [["/bin/sh", f"{BAKE_DIR}/run.sh"]]
    doc["power_state"] = {
        "mode": "poweroff",
        "message": f"bakery bake {spec.bake_id}: powering off for the snapshot",
        "timeout": 1800,
        "condition": ["test", "-f", f"{BAKE_DIR}/ok"],
    }
    text = f"#cloud-config\n# bakery bake {spec.bake_id}\n" + cloudyaml.dump(doc)
    return text, [f["path"] for f in files]


def build(spec: BakeSpec, gzip_mode: str = "auto") -> UserData:
    text, paths = cloud_config(spec)
    return finish(text.encode(), "text/cloud-config", paths, gzip_mode)


def parse_console(console: str) -> tuple[str | None, dict[str, object] | None]:
    """From a builder's console log: ("done" | "failed" | None, the marker or None)."""
    state: str | None = None
    marker: dict[str, object] | None = None
    for line in console.splitlines():
        if DONE_LINE in line:
            state = "done"
        elif FAILED_LINE in line:
            state = "failed"
        at = line.find(MARKER_PREFIX)
        if at >= 0:
            try:
                found = json.loads(line[at + len(MARKER_PREFIX):])
            except ValueError:
                continue  # a console line cut short; a later copy may be whole
            if isinstance(found, dict):
                marker = found
    return state, marker
