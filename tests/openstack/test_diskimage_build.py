"""`bakery bake --target openstack --from-local`, for real: diskimage-builder builds a kernel-boot node
image on this machine with an archive of the test image pre-loaded, and bakery uploads its three parts
to the real Glance on loopback. The image is then read without mounting it (debugfs) and booted in
qemu with the seed's user-data (test_diskimage_boot.py).

One build per session (3 to 4 minutes: debootstrap from the Debian mirror, Docker, the kernel).
BAKERY_REQUIRE_DIB=1 (set in CI) turns a missing diskimage-builder, root or qemu-img into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bakery.providers.openstack import diskimage, glance
from tests.conftest import require_or_skip

pytestmark = [pytest.mark.glance, pytest.mark.dib]
SWITCH = "BAKERY_REQUIRE_DIB"


class Built:
    def __init__(self, out: dict, files: Path, conn, stderr: str) -> None:
        self.out, self.files, self.conn, self.stderr = out, files, conn, stderr

    def file(self, suffix: str) -> Path:
        return self.files / f"{self.out['image_name']}.{suffix}"


@pytest.fixture(scope="session")
def built(engine, busybox_image, glance_endpoint, tmp_path_factory) -> Built:
    import openstack

    if os.geteuid() != 0:
        require_or_skip(SWITCH, "a diskimage-builder build needs root")
    try:
        diskimage.disk_image_create()
    except Exception as exc:  # noqa: BLE001 (EnvironmentMissing, said as the skip reason)
        require_or_skip(SWITCH, str(exc))
    for tool in ("qemu-img", "debootstrap", "systemd-nspawn", "debugfs"):
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin:/sbin"):
            require_or_skip(SWITCH, f"{tool} is not installed")
    work = tmp_path_factory.mktemp("dib")
    archive = work / "busybox.tar"
    engine.docker("save", "-o", str(archive), busybox_image)
    clouds = work / "clouds.yaml"
    clouds.write_text(f"clouds:\n  loopback:\n    auth_type: none\n    image_endpoint_override: {glance_endpoint}\n")
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds))
    env.pop("OS_CLOUD", None)
    files = work / "image"
    cmd = [sys.executable, "-m", "bakery", "bake", "--target", "openstack", "--from-local", "--layout",
           "kernel-boot", "--pre-pull-archive", str(archive), "--keep-image", str(files), "--os-cloud", "loopback",
           "--image-name", "bakery-dib-test", "--output", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if done.returncode != 0:
        log = "".join(p.read_text(errors="replace")[-4000:] for p in files.glob("*.log"))
        pytest.fail(f"bakery bake --from-local exited {done.returncode}:\n{done.stderr[-3000:]}\n{log}")
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, auth_type="none",
                             image_endpoint_override=glance_endpoint)
    return Built(json.loads(done.stdout), files, conn, done.stderr)


def test_the_build_shows_its_phases_and_leaves_nothing_mounted(built):
    for phase in ("root.d", "install.d", "post-root.d", "finalise.d"):
        assert f"diskimage-builder: {phase}" in built.stderr, built.stderr
    assert "bakery-bake: loading archive 1 of 1" in built.stderr
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(built.files) not in mounts and "dib_build" not in mounts
    loops = subprocess.run(["losetup", "-l", "-n"], capture_output=True, text=True).stdout
    assert str(built.files) not in loops


def test_three_linked_images_in_glance_with_the_marker(built, busybox_image):
    out = built.out
    root = built.conn.image.get_image(out["image_id"])
    assert root.status == "active" and root.disk_format == "qcow2"
    assert (root.kernel_id, root.ramdisk_id) == (out["kernel_id"], out["ramdisk_id"])
    assert root.os_command_line == diskimage.COMMAND_LINE
    props = root.properties
    assert props["os_distro"] == "debian" and props[glance.STATE_PROPERTY] == "complete"
    assert props["bakery_docker_version"].startswith("20.10"), props  # Debian 12's docker.io
    assert props["bakery_image_count"] == "1"
    assert props["bakery_image_0"].startswith(f"{busybox_image}@sha256:")
    bake_tag = glance.bake_tag(out["bake_id"])
    tagged = glance.find(built.conn, tag=bake_tag)
    assert {i.id for i in tagged} == {out["image_id"], out["kernel_id"], out["ramdisk_id"]}
    kernel = built.conn.image.get_image(out["kernel_id"])
    assert kernel.disk_format == "aki" and kernel.size == built.file("vmlinuz").stat().st_size


def _debugfs(raw: Path, request: str) -> str:
    done = subprocess.run(["debugfs", "-R", request, str(raw)], capture_output=True, text=True, check=False)
    return done.stdout


@pytest.fixture(scope="session")
def raw_root(built, tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("dib-raw") / "root.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(built.file("qcow2")), str(raw)], check=True)
    return raw


def test_the_image_holds_docker_the_loaded_image_and_the_marker(raw_root, busybox_image):
    marker = json.loads(_debugfs(raw_root, "cat /etc/bakery/baked"))
    assert [i["ref"] for i in marker["images"]] == [busybox_image]
    assert marker["docker_version"].startswith("20.10")
    repos = json.loads(_debugfs(raw_root, "cat /var/lib/docker/image/overlay2/repositories.json"))
    assert busybox_image in repos["Repositories"]["local/busybox"]
    wants = _debugfs(raw_root, "ls -l /etc/systemd/system/multi-user.target.wants")
    assert "docker.service" in wants  # enabled; the user-data configures TLS before its restart
    daemon = json.loads(_debugfs(raw_root, "cat /etc/docker/daemon.json"))
    assert daemon == {"storage-driver": "overlay2"}
    sources = _debugfs(raw_root, "cat /etc/cloud/cloud.cfg.d/91-dib-cloud-init-datasources.cfg")
    assert "ConfigDrive" in sources and "OpenStack" in sources


def test_the_image_is_clean_for_cloning(raw_root):
    assert _debugfs(raw_root, "cat /etc/machine-id") == ""  # empty, not missing: systemd makes a new one
    assert "machine-id" in _debugfs(raw_root, "ls /etc")
    for gone in ("/etc/docker/key.json", "/var/lib/docker/engine-id", "/var/lib/docker/network",
                 "/var/lib/cloud/instance", "/etc/bakery-images"):
        assert _debugfs(raw_root, f"stat {gone}") == "", gone
    assert "ssh_host_" not in _debugfs(raw_root, "ls /etc/ssh")
    # Nothing of the bake's own remains: its files were bind-mounted, never copied in.
    assert _debugfs(raw_root, "stat /run/bakery-bake") == ""
