"""The image diskimage-builder built (test_diskimage_build.py) boots as Nova would boot it: qemu with
the kernel, ramdisk and command line the Glance images carry, the root image as a virtio disk, and the
seed's user-data from `bakery render` on a NoCloud drive. Real cloud-init, systemd and dockerd in a
VM: the baked marker makes the user-data skip the install, dockerd serves the TLS API, the seed inits
the swarm, and the pre-loaded image is there without any pull.

qemu runs without KVM (TCG) unless BAKERY_QEMU_ACCEL says otherwise: a few minutes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bakery.providers.openstack import diskimage
from tests.conftest import require_or_skip

from .test_diskimage_build import SWITCH

pytestmark = [pytest.mark.glance, pytest.mark.dib]
GUEST = "10.0.2.15"  # qemu's user network gives the guest this address by DHCP
BOOT_TIMEOUT = 1200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bakery(*args: str) -> bytes:
    done = subprocess.run([sys.executable, "-m", "bakery", *args], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout


def _nocloud(where: Path, user_data: bytes) -> Path:
    """A NoCloud seed drive: a FAT filesystem labelled CIDATA with user-data and meta-data."""
    (where / "user-data").write_bytes(user_data)
    (where / "meta-data").write_text("instance-id: bakery-dib-boot\nlocal-hostname: seed\n")
    seed = where / "seed.img"
    with seed.open("wb") as f:
        f.truncate(4 << 20)
    subprocess.run(["mkfs.vfat", "-n", "CIDATA", str(seed)], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(seed), str(where / "user-data"), str(where / "meta-data"), "::"],
                   check=True, capture_output=True)
    return seed


@pytest.fixture(scope="session")
def booted(built, tmp_path_factory):
    qemu = shutil.which("qemu-system-x86_64")
    for tool in ("qemu-system-x86_64", "mkfs.vfat", "mcopy"):
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin:/sbin"):
            require_or_skip(SWITCH, f"{tool} is not installed (qemu-system-x86, dosfstools, mtools)")
    assert qemu is not None
    work = tmp_path_factory.mktemp("dib-boot")
    state = work / "state"
    config = work / "bakery.yml"
    config.write_text(f"cluster:\n  name: dibboot\nswarm:\n  seed: {GUEST}\n")
    user_data = _bakery("render", "--role", "seed", "--config", str(config), "--state-dir", str(state),
                        "--address", GUEST, "--address", "127.0.0.1")
    seed = _nocloud(work, user_data)
    disk = work / "root.qcow2"  # a copy-on-write layer, as Nova gives each server
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(built.file("qcow2")),
                    str(disk), "4G"], check=True)
    port = _free_port()
    console = work / "console.log"
    accel = os.environ.get("BAKERY_QEMU_ACCEL", "tcg")
    cmd = [qemu, "-accel", accel, "-cpu", "max", "-m", "2048", "-smp", "2", "-display", "none", "-no-reboot",
           "-kernel", str(built.file("vmlinuz")), "-initrd", str(built.file("initrd")),
           "-append", diskimage.COMMAND_LINE,
           "-drive", f"file={disk},if=virtio,format=qcow2", "-drive", f"file={seed},if=virtio,format=raw",
           "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:2376",
           "-serial", f"file:{console}"]
    vm = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    certs = state / "dibboot" / "client"
    try:
        yield _wait_for_swarm(vm, port, certs, console)
    finally:
        vm.terminate()
        try:
            vm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vm.kill()


class Booted:
    def __init__(self, client, info: dict, console: Path, seconds: float) -> None:
        self.client, self.info, self.console, self.seconds = client, info, console, seconds


def _wait_for_swarm(vm: subprocess.Popen[bytes], port: int, certs: Path, console: Path) -> Booted:
    import docker
    from docker.tls import TLSConfig

    tls = TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")), ca_cert=str(certs / "ca.pem"),
                    verify=True)
    start = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - start < BOOT_TIMEOUT:
        if vm.poll() is not None:
            pytest.fail(f"qemu exited {vm.returncode}: {vm.stderr.read().decode()[-1500:] if vm.stderr else ''}\n"
                        f"{_tail(console)}")
        try:
            client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, timeout=10)
            info = client.info()
            if info["Swarm"]["LocalNodeState"] == "active" and info["Swarm"].get("ControlAvailable"):
                return Booted(client, info, console, time.monotonic() - start)
            last = f"swarm state {info['Swarm']['LocalNodeState']}"
        except Exception as exc:  # noqa: BLE001 (not up yet: refused, reset, TLS handshake cut by slirp)
            last = f"{type(exc).__name__}: {str(exc)[:200]}"
        time.sleep(5)
    pytest.fail(f"the booted image's swarm was not active within {BOOT_TIMEOUT}s ({last}):\n{_tail(console)}")


def _tail(console: Path, lines: int = 40) -> str:
    try:
        return "\n".join(console.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"


def test_the_baked_image_boots_into_a_swarm_seed_with_its_image_preloaded(booted, busybox_image):
    text = booted.console.read_text(errors="replace")
    assert "bakery: baked image: Docker and packages are preinstalled" in text, _tail(booted.console)
    assert booted.info["Swarm"]["NodeAddr"] == GUEST
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
