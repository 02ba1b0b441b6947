"""`bakery bake --target local`: the node image, its marker and hygiene, and its cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from testkit.nodes import bakery

pytestmark = pytest.mark.nodes


def test_image_has_docker_cloud_init_and_nfs_client(baked_image: dict[str, Any]) -> None:
    root = Path(baked_image["root"])
    for tool in ("usr/sbin/dockerd", "usr/bin/cloud-init", "sbin/mount.nfs", "lib/systemd/systemd"):
        assert (root / tool).exists(), tool
    assert "NoCloud" in (root / "etc/cloud/cloud.cfg.d/90-bakery-datasource.cfg").read_text()
    assert (root / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service").exists()


def test_marker_lists_the_preloaded_images(baked_image: dict[str, Any]) -> None:
    marker = json.loads((Path(baked_image["root"]) / "etc/bakery/baked").read_text())
    assert marker == baked_image["marker"]
    # The OpenStack bake's format (bakery/bakedata.py): [{ref, id}], the id Docker loaded it as.
    repos = json.loads((Path(baked_image["root"]) / "var/lib/docker/image/vfs/repositories.json").read_text())
    loaded = repos["Repositories"]["local/busybox"]["local/busybox:1"]
    assert marker["images"] == [{"ref": "local/busybox:1", "id": loaded}]
    assert loaded.startswith("sha256:") and len(loaded) == 71
    assert marker["docker_version"].startswith("20.10")
    assert set(marker) >= {"bakery_version", "docker_version", "images", "built_at"}


def test_hygiene_before_cloning(baked_image: dict[str, Any]) -> None:
    root = Path(baked_image["root"])
    assert (root / "etc/machine-id").read_text() == ""
    for gone in ("etc/docker/key.json", "var/lib/docker/engine-id", "var/lib/cloud/instance", "etc/resolv.conf"):
        assert not (root / gone).exists(), gone
    # The storage driver is the user-data's choice, not the image's.
    assert not (root / "etc/docker/daemon.json").exists()


def test_second_bake_is_cached(baked_image: dict[str, Any], app_archive: Path, cache_dir: Path) -> None:
    done = bakery("bake", "--target", "local", "--pre-pull-archive", str(app_archive),
                  "--cache-dir", str(cache_dir), "--output", "json")
    assert json.loads(done.stdout)["key"] == baked_image["key"]
    assert "is cached" in done.stderr
    assert "debootstrap" not in done.stderr


def test_key_follows_the_inputs(app_archive: Path, tmp_path: Path) -> None:
    from bakery.providers.local import rootfs

    other = tmp_path / "other.tar"
    other.write_bytes(app_archive.read_bytes() + b"\0" * 1024)
    one = rootfs.Recipe(baked=True, mirror="http://deb.debian.org/debian", archives=(app_archive,))
    two = rootfs.Recipe(baked=True, mirror="http://deb.debian.org/debian", archives=(other,))
    plain = rootfs.Recipe(baked=False, mirror="http://deb.debian.org/debian")
    assert rootfs.image_key(one) == rootfs.image_key(one)
    assert len({rootfs.image_key(one), rootfs.image_key(two), rootfs.image_key(plain)}) == 3
    assert rootfs.base_key(one) == rootfs.base_key(plain)
