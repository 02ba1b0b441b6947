"""`bakery bake --target openstack --from-local`, for real: diskimage-builder builds a kernel-boot node
image on this machine with an archive of the test image pre-loaded, and bakery uploads its three parts
to the real Glance on loopback. The image is then read without mounting it (debugfs) and booted as
Nova would boot it: qemu with the kernel, ramdisk and command line the Glance images carry, the root
image as a virtio disk, and the seed's user-data from `bakery render` on a NoCloud drive. Real
cloud-init, systemd and dockerd in a VM: the baked marker makes the user-data skip the install,
dockerd serves the TLS API, the seed inits the swarm, and the pre-loaded image is there without a pull.
qemu runs without KVM (TCG) unless BAKERY_QEMU_ACCEL says otherwise: about two minutes.

One build per session (3 to 4 minutes: debootstrap from the Debian mirror, Docker, the kernel), shared
with test_nfs_boot.py (the `built` fixture, tests/openstack/conftest.py); the boot is testkit/qemu.py.
BAKERY_REQUIRE_DIB=1 (set in CI) turns a missing diskimage-builder, root or qemu-img into a failure.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from testkit import qemu

from bakery.providers.openstack import diskimage, glance

pytestmark = [pytest.mark.glance, pytest.mark.dib]
SWITCH = "BAKERY_REQUIRE_DIB"


def test_the_build_shows_its_phases_and_leaves_nothing_mounted(built):
    for phase in ("root.d", "install.d", "post-root.d", "finalise.d"):
        assert f"diskimage-builder: {phase}" in built.stderr, built.stderr
    assert "bakery-bake: loading archive 1 of 1" in built.stderr
    # DIB's build directory is under built.files (TMP_DIR): another build on the machine may be mid-way.
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(built.files) not in mounts
    loops = subprocess.run(["losetup", "-l", "-n"], capture_output=True, text=True).stdout
    assert str(built.files) not in loops


def test_three_linked_images_in_glance_with_the_marker(built, busybox_image):
    out = built.out
    root = built.conn.image.get_image(out["image_id"])
    assert root.status == "active" and root.disk_format == "qcow2"
    assert (root.kernel_id, root.ramdisk_id) == (out["kernel_id"], out["ramdisk_id"])
    assert root.os_command_line == diskimage.COMMAND_LINE
    props = root.properties
    assert root.os_distro == "debian" and props[glance.STATE_PROPERTY] == "complete"
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
    sources = _debugfs(raw_root, "cat /etc/cloud/cloud.cfg.d/91-dib-cloud-init-datasources.cfg")
    assert "ConfigDrive" in sources and "OpenStack" in sources


def test_the_image_is_clean_for_cloning(raw_root):
    # Empty or "uninitialized" (what DIB leaves), not missing: systemd makes a new one at first boot.
    assert _debugfs(raw_root, "cat /etc/machine-id") in ("", "uninitialized\n")
    assert "machine-id" in _debugfs(raw_root, "ls /etc")
    for gone in ("/etc/docker/key.json", "/var/lib/docker/engine-id", "/var/lib/docker/network",
                 "/var/lib/cloud/instance", "/etc/bakery-images"):
        assert _debugfs(raw_root, f"stat {gone}") == "", gone
    assert "ssh_host_" not in _debugfs(raw_root, "ls /etc/ssh")
    # Nothing of the bake's own remains: its files were bind-mounted, never copied in.
    assert _debugfs(raw_root, "stat /run/bakery-bake") == ""


# Booting the image (testkit/qemu.py).
@pytest.fixture(scope="session")
def booted(built, tmp_path_factory):
    qemu.require_tools(SWITCH)
    work = tmp_path_factory.mktemp("dib-boot")
    state = work / "state"
    config = work / "bakery.yml"
    config.write_text(f"cluster:\n  name: dibboot\nswarm:\n  seed: {qemu.GUEST}\n  form: true\n")  # a new swarm
    user_data = qemu.seed_user_data(config, state)
    with qemu.running(built.kernel_image(), user_data, work, "bakery-dib-boot") as vm:
        up = qemu.wait_for_swarm(vm, state / "dibboot" / "client")
        yield Booted(up.client, up.info, vm.console, up.seconds)


class Booted:
    def __init__(self, client, info: dict, console: Path, seconds: float) -> None:
        self.client, self.info, self.console, self.seconds = client, info, console, seconds


def _tail(console: Path, lines: int = 40) -> str:
    try:
        return "\n".join(console.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"


def test_the_baked_image_boots_into_a_swarm_seed_with_its_image_preloaded(booted, busybox_image):
    text = booted.console.read_text(errors="replace")
    assert "bakery: baked image: Docker and packages are preinstalled" in text, _tail(booted.console)
    assert booted.info["Swarm"]["NodeAddr"] == qemu.GUEST
    assert booted.info["Driver"] == "overlay2"
    tags = [t for image in booted.client.images.list() for t in image.tags]
    assert busybox_image in tags  # loaded at bake time: no registry was asked
    print(f"booted to an active swarm in {booted.seconds:.0f}s")


def test_the_api_refuses_a_client_without_a_certificate(booted):
    import ssl

    port = int(booted.client.api.base_url.rsplit(":", 1)[1])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET /info HTTP/1.0\r\n\r\n")
                if not tls.recv(1):
                    raise ConnectionResetError("closed without an answer")
