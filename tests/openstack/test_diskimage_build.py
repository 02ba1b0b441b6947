"""`bakery bake --target openstack --from-local`, for real: diskimage-builder builds a kernel-boot node
image on this machine with an archive of the test image pre-loaded, and bakery uploads its three parts
to the real Glance on loopback. The image is then read without mounting it (debugfs) and booted as
Nova would boot it: qemu with the kernel, ramdisk and command line the Glance images carry, the root
image as a virtio disk, and the seed's user-data from `bakery render` on a NoCloud drive. Real
cloud-init, systemd and dockerd in a VM: the baked marker makes the user-data skip the install,
dockerd serves the TLS API, the seed inits the swarm, and the pre-loaded image is there without a pull.
qemu runs without KVM (TCG) unless BAKERY_QEMU_ACCEL says otherwise: about two minutes.

One build per session (3 to 4 minutes: debootstrap from the Debian mirror, Docker, the kernel).
BAKERY_REQUIRE_DIB=1 (set in CI) turns a missing diskimage-builder, root or qemu-img into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import require_or_skip

from bakery.providers.openstack import diskimage, glance

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


# Booting the image.
GUEST = "10.0.2.15"  # qemu's user network gives the guest this address by DHCP
BOOT_TIMEOUT = 600


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
    config.write_text(f"cluster:\n  name: dibboot\nswarm:\n  seed: {GUEST}\n  form: true\n")  # a new swarm
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
        up = _wait_for_swarm(vm, port, certs, console)
    except BaseException:
        _stop(vm)
        print(_journal(disk, work), file=sys.stderr)  # what the units said, read off the VM's disk
        raise
    try:
        yield up
    finally:
        _stop(vm)


def _stop(vm: subprocess.Popen[bytes]) -> None:
    vm.terminate()
    try:
        vm.wait(timeout=30)
    except subprocess.TimeoutExpired:
        vm.kill()


def _journal(disk: Path, work: Path) -> str:
    """The journal of bakery's units, from the stopped VM's disk (debugfs: no mount needed)."""
    raw, out = work / "after.raw", work / "journal"
    try:
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True, timeout=300)
        out.mkdir(exist_ok=True)
        subprocess.run(["debugfs", "-R", f"rdump /var/log/journal {out}", str(raw)], capture_output=True, timeout=300)
        units = [a for u in ("bakery-join", "docker", "docker-tcp.socket", "cloud-final") for a in ("-u", u)]
        done = subprocess.run(["journalctl", "-D", str(out / "journal"), "--no-pager", "-o", "short-monotonic",
                               *units], capture_output=True, text=True, timeout=120)
        return "journal of the VM:\n" + "\n".join(done.stdout.splitlines()[-80:])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(no journal from the VM's disk: {exc})"


class Booted:
    def __init__(self, client, info: dict, console: Path, seconds: float) -> None:
        self.client, self.info, self.console, self.seconds = client, info, console, seconds


def _wait_for_swarm(vm: subprocess.Popen[bytes], port: int, certs: Path, console: Path) -> Booted:
    from bakery.providers.openstack import ready

    client = ready.tls_client("127.0.0.1", port, certs)  # what `bakery up` waits with
    start = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - start < BOOT_TIMEOUT:
        if vm.poll() is not None:
            pytest.fail(f"qemu exited {vm.returncode}: {vm.stderr.read().decode()[-1500:] if vm.stderr else ''}\n"
                        f"{_tail(console)}")
        try:
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
