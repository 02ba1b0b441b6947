"""The OpenStack bake's user-data (bakery/bakedata.py), booted for real (BAKERY_NODES_FULL=1; ~3 min).

  BAKERY_REQUIRE_NODES=1 BAKERY_NODES_FULL=1 pytest -m nodes tests/nodes/test_bake_userdata.py

A builder node boots the plain local image (no Docker) with the bake
user-data, installs docker.io through the apt proxy on the bridge, loads a
`docker save` archive from a path on the builder (bind-mounted from the
host), writes the marker and powers itself off through cloud-init's
power_state, sealing the image on the way down. The checks read what a
snapshot would hold: the builder's overlay over the plain image, and its
/var/lib/docker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from testkit.engine import private_dockerd
from testkit.nodes import bakery

pytestmark = [
    pytest.mark.nodes,
    pytest.mark.skipif(os.environ.get("BAKERY_NODES_FULL") != "1", reason="the bake boot needs BAKERY_NODES_FULL=1"),
]

ON_BUILDER = "/srv/bakery-archives/busybox.tar"  # an absolute path on the builder: bakedata.Archive's form


def _archive_image_id(archive: Path) -> str:
    """The image id `docker load` gives the archive: the digest of its config (see archive.py)."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        config = json.load(member)[0]["Config"]
    return "sha256:" + config.removesuffix(".json")


@pytest.fixture(scope="module")
def built(node_host: None, cache_dir: Path, app_archive: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from bakery import bakedata
    from bakery.providers.local import builder
    from bakery.providers.local.host import quiet

    digest = hashlib.sha256(app_archive.read_bytes()).hexdigest()
    spec = bakedata.BakeSpec(bake_id="nodes-test", install="distro", version=None, apt_proxy=builder.APT_PROXY,
                             storage_driver="vfs", archives=(bakedata.Archive(ON_BUILDER, digest),))
    user_data = bakedata.build(spec, gzip_mode="never").payload
    state = tmp_path_factory.mktemp("bake-boot") / "state"
    try:
        builder.boot(state, "bake", cache_dir, user_data, quiet, binds=(f"--bind-ro={app_archive}:{ON_BUILDER}",))
        result = builder.wait_poweroff(state, "bake", timeout=1200, progress=quiet)
        with _merged(result.upper, result.lower) as root:
            yield {"root": root, "docker": result.docker, "console": result.console.read_text(errors="replace"),
                   "journal": _journal(result.upper), "image_id": _archive_image_id(app_archive)}
    finally:
        if (state / "bake" / "local.json").exists():
            done = bakery("down", "--cluster", "bake", "--state-dir", str(state), check=False, timeout=300)
            assert done.returncode == 0, done.stderr


def _journal(upper: Path) -> str:
    """The builder's journal, kept in its overlay: what cloud-init's stages printed (journal+console).

    On a VM those lines reach the serial console log. An nspawn console here
    shows systemd's own status lines but not what services print to the
    console, so the bake's outcome lines are read from the journal instead.
    """
    done = subprocess.run(["journalctl", "--no-pager", "-o", "cat", "-D", str(upper / "var/log/journal")],
                          capture_output=True, text=True, check=True)
    return done.stdout


@contextmanager
def _merged(upper: Path, lower: Path) -> Iterator[Path]:
    """The builder's root as its snapshot would be: its overlay over the image, mounted read-only."""
    mnt = Path(tempfile.mkdtemp(prefix="bakery-bake-root-"))
    subprocess.run(["mount", "-t", "overlay", "bakery-bake-check", "-o", f"ro,lowerdir={upper}:{lower}", str(mnt)],
                   check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)
        mnt.rmdir()


def test_the_bake_succeeded_and_said_so_on_the_console(built: dict[str, Any]) -> None:
    from bakery import bakedata

    state, marker = bakedata.parse_console(built["journal"])
    assert state == "done", built["journal"][-3000:]
    # It powered itself off (cloud-init's power_state, after the seal), it did not crash.
    assert "bakery bake nodes-test: powering off for the snapshot" in built["journal"]
    assert "Powering off." in built["console"]
    # What `bakery bake --target openstack` reads from the console log is what the image holds.
    assert marker == json.loads((built["root"] / "etc/bakery/baked").read_text())


def test_marker_lists_the_loaded_image_with_its_id(built: dict[str, Any]) -> None:
    marker = json.loads((built["root"] / "etc/bakery/baked").read_text())
    assert set(marker) == {"bakery_version", "docker_version", "images", "built_at"}
    from bakery import __version__

    assert marker["bakery_version"] == __version__
    assert marker["docker_version"].startswith("20.10")
    assert marker["images"] == [{"ref": "local/busybox:1", "id": built["image_id"]}]
    assert time.strptime(marker["built_at"], "%Y-%m-%dT%H:%M:%SZ")


def test_the_image_is_sealed(built: dict[str, Any]) -> None:
    root, docker = built["root"], built["docker"]
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "var/lib/dbus/machine-id").exists()
    for gone in ("etc/docker/key.json", "var/lib/cloud/instance", "var/lib/cloud/instances", "var/lib/cloud/seed",
                 "var/log/cloud-init.log", "var/log/cloud-init-output.log", "run/bakery-bake"):
        assert not (root / gone).exists(), gone
    assert not (docker / "engine-id").exists() and not (docker / "network").exists()
    assert (root / "usr/sbin/dockerd").exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/docker.service").exists()
    assert json.loads((root / "etc/docker/daemon.json").read_text()) == {"storage-driver": "vfs"}


def test_the_loaded_image_runs_from_the_builders_docker_dir(built: dict[str, Any], tmp_path: Path) -> None:
    """Last: a throwaway dockerd on the builder's /var/lib/docker (it writes there) finds and runs the image."""
    with _dockerd(built["docker"], tmp_path) as docker:
        image_id = docker("image", "inspect", "local/busybox:1", "--format", "{{.Id}}").strip()
        assert image_id == built["image_id"]
        out = docker("run", "--rm", "--network", "none", "local/busybox:1", "cat", "/www/index.html")
        assert out == "hello from bakery\n"


@contextmanager
def _dockerd(data_root: Path, tmp: Path) -> Iterator[Any]:
    """A private dockerd (vfs, no networking of its own) on `data_root`, stopped by its own process."""
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    with private_dockerd("--bridge=none", "--iptables=false", "--ip-masq=false", prefix="bakery-bake-",
                         data_root=data_root) as d:

        def docker(*args: str) -> str:
            return subprocess.run([cli, "-H", f"unix://{d.socket}", *args], capture_output=True, text=True,
                                  check=True, timeout=120).stdout

        yield docker
