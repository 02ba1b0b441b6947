"""`bakery bake --target openstack --from-local`: the node image built on this machine with diskimage-builder.

For clouds where a builder server is unwanted. diskimage-builder (PyPI
`diskimage-builder`, `disk-image-create`) builds Debian from debootstrap with
its elements `debian-minimal`, `cloud-init`, `cloud-init-datasources` and
`openssh-server`, plus bakery's own element rendered from templates/dib/:

- install.d (in the image's chroot): the packages and Docker by the cluster's
  method, from the same shell as the builder server's bake
  (templates/cloud-init/bake-install.sh.j2);
- post-root.d (on this machine): the image's own dockerd under systemd-nspawn
  loads the archives and pulls the images (bake-images.sh.j2), and the same
  marker.py writes /etc/bakery/baked and prints it; the marker line in the
  build log gives the Glance properties, as a builder's console does;
- finalise.d: the bake's hygiene (bake-seal.sh.j2).

Two layouts. `whole-disk` adds DIB's `vm` and `block-device-mbr` (a
partitioned disk with GRUB, the usual cloud image); DIB partitions it through
device-mapper (kpartx), so it needs /dev/mapper/control. `kernel-boot` is a
filesystem image with the kernel and ramdisk beside it (DIB's `baremetal`),
uploaded as three Glance images: the root image carries kernel_id, ramdisk_id
and os_command_line, which Nova's libvirt driver boots directly (and Ironic
uses for partition images). It needs no device-mapper and is what builds on
machines without it (containers, microVMs). The kernel then comes from Glance:
a kernel update inside a node takes effect only with a new bake.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ... import __version__
from ...bakedata import PACKAGES, Archive, BakeSpec, parse_console
from ...errors import BakeryError, EnvironmentMissing, UserError
from ...render import fill, templates_dir

Progress = Callable[[str], None]
LAYOUTS = ("whole-disk", "kernel-boot")
RELEASE = "bookworm"
ELEMENT = "bakery-bake"
BASE_ELEMENTS = ("debian-minimal", ELEMENT)
ELEMENT_DEPS = ("cloud-init", "cloud-init-datasources", "openssh-server")
LAYOUT_ELEMENTS = {"whole-disk": ("vm", "block-device-mbr"), "kernel-boot": ("baremetal",)}
DATASOURCES = "ConfigDrive, OpenStack, NoCloud"
# What debian-minimal lacks and a cloud node needs. No network manager: cloud-init would render for
# systemd-networkd, which is not enabled, and the node would boot without a network; with ifupdown
# cloud-init renders /etc/network/interfaces.d/50-cloud-init for the NIC it finds (ens3, not DIB's
# eth0 stubs). cloud-guest-utils: growpart, with which cloud-init grows a whole-disk root partition.
IMAGE_PACKAGES = ("ifupdown", "isc-dhcp-client", "cloud-guest-utils")
ROOT_LABEL = "cloudimg-rootfs"  # DIB's default root filesystem label
COMMAND_LINE = f"root=LABEL={ROOT_LABEL} ro console=tty0 console=ttyS0"
DM_CONTROL = Path("/dev/mapper/control")
ARCHIVE_DIR = "/run/bakery-archives"
HOOK_LINE = re.compile(r"dib-run-parts Running \S*/([a-z-]+\.d)/([^/\s]+)$")


@dataclass(frozen=True)
class DiskImage:
    """What a build left: the root image (qcow2) and, for kernel-boot, its kernel and ramdisk."""

    root: Path
    kernel: Path | None
    ramdisk: Path | None
    layout: str
    marker: dict[str, object]
    log: Path

    @property
    def command_line(self) -> str | None:
        return COMMAND_LINE if self.layout == "kernel-boot" else None


def disk_image_create() -> str:
    """disk-image-create from PATH, or beside this Python (a venv's bin is often not on PATH)."""
    found = shutil.which("disk-image-create")
    if found:
        return found
    beside = Path(sys.executable).parent / "disk-image-create"
    if beside.exists():
        return str(beside)
    raise EnvironmentMissing("diskimage-builder is not installed (no disk-image-create): "
                             "pip install diskimage-builder (into the same environment as bakery)")


def check_host(layout: str) -> str:
    """The disk-image-create to run, after checking what a build needs on this machine."""
    if os.geteuid() != 0:
        raise EnvironmentMissing("building an image needs root (diskimage-builder mounts loop devices): "
                                 "run bakery as root")
    dib = disk_image_create()
    missing = [t for t in ("qemu-img", "debootstrap", "systemd-nspawn", "sudo", "losetup") if not shutil.which(t)]
    if missing:
        raise EnvironmentMissing(f"building an image needs {', '.join(missing)}: "
                                 "apt install qemu-utils debootstrap systemd-container sudo util-linux")
    if layout == "whole-disk" and not device_mapper():
        raise EnvironmentMissing(
            f"--layout whole-disk: this machine has no device-mapper ({DM_CONTROL} does not open), which "
            "diskimage-builder needs to partition a disk image; build on a machine with it "
            "(modprobe dm_mod), or use --layout kernel-boot")
    return dib


def device_mapper(control: Path = DM_CONTROL) -> bool:
    """Whether the kernel's device-mapper answers (the node can exist without a driver behind it)."""
    try:
        fd = os.open(control, os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def check_archives(paths: Sequence[Path]) -> tuple[Path, ...]:
    out = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such image archive", fix="make one with `docker save -o FILE IMAGE`")
        resolved = path.resolve()
        if ":" in str(resolved):  # systemd-nspawn --bind-ro separates source and target with ':'
            raise UserError(f"{path}: an archive path may not contain ':'", fix="rename or move the archive")
        out.append(resolved)
    return tuple(out)


def write_element(where: Path, spec: BakeSpec, archives: tuple[Path, ...]) -> tuple[Path, Path]:
    """bakery's DIB element under where/elements and the files its hooks run under where/run."""
    element = where / "elements" / ELEMENT
    run = where / "run"
    for d in (element / "install.d", element / "post-root.d", element / "finalise.d", run):
        d.mkdir(parents=True, exist_ok=True)
    (element / "element-deps").write_text("".join(f"{d}\n" for d in ELEMENT_DEPS))
    (element / "package-installs.yaml").write_text("".join(f"{p}:\n" for p in IMAGE_PACKAGES))
    (element / "README.rst").write_text(f"bakery bake {spec.bake_id}: written by bakery {__version__}\n")
    values = {"bake_id": spec.bake_id}
    # The local archives appear inside the build under ARCHIVE_DIR, bind-mounted by the post-root.d hook.
    all_archives = (*spec.archives, *(Archive(f"{ARCHIVE_DIR}/{i}.tar") for i in range(1, len(archives) + 1)))
    hooks = {
        element / "install.d" / "50-bakery-docker": fill(
            "dib/install.sh.j2", install=spec.install, version=spec.version, packages=PACKAGES,
            storage_driver=spec.storage_driver, **values),
        element / "post-root.d" / "50-bakery-images": fill(
            "dib/post-root.sh.j2", bake_dir=str(run), archive_paths=[str(a) for a in archives],
            network=bool(spec.pulls or spec.archives), **values),
        element / "finalise.d" / "99-bakery-seal": fill("cloud-init/bake-seal.sh.j2", **values),
        run / "images.sh": fill("dib/images.sh.j2", archives=all_archives, pulls=spec.pulls, **values),
    }
    for path, text in hooks.items():
        path.write_text(text)
        path.chmod(0o755)
    (run / "bake.json").write_text(json.dumps({"bake_id": spec.bake_id, "bakery_version": __version__},
                                              sort_keys=True) + "\n")
    shutil.copy(templates_dir() / "cloud-init" / "bake-marker.py", run / "marker.py")
    return element.parent, run


def command(dib: str, layout: str, out: Path) -> list[str]:
    return [dib, "-a", "amd64", "-t", "qcow2", "-o", str(out), "--no-tmpfs",
            *BASE_ELEMENTS, *LAYOUT_ELEMENTS[layout]]


def environment(elements_path: Path, mirror: str, security_mirror: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ELEMENTS_PATH": str(elements_path),
        "DIB_RELEASE": RELEASE,
        "DIB_DISTRIBUTION_MIRROR": mirror,
        "DIB_CLOUD_INIT_DATASOURCES": DATASOURCES,
        "DEBIAN_FRONTEND": "noninteractive",  # debconf must never wait for an answer
        "DIB_APT_MINIMAL_CREATE_INTERFACES": "0",  # no eth0/eth1 stubs: cloud-init writes the network
        # DIB puts its sbin helpers first; its scripts call sudo, which is a no-op for root.
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
    })
    if security_mirror:
        env["DIB_DEBIAN_SECURITY_MIRROR"] = security_mirror
    return env


def build(spec: BakeSpec, archives: Sequence[Path], layout: str, out_dir: Path, name: str, progress: Progress,
          timeout: float = 3600.0, mirror: str | None = None, security_mirror: str | None = None) -> DiskImage:
    """Run diskimage-builder; the image files land in out_dir as name.qcow2 (+ .vmlinuz, .initrd)."""
    from ..local import rootfs

    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    dib = check_host(layout)
    local = check_archives(archives)
    mirror = mirror or rootfs.host_mirror()
    if security_mirror is None:
        security_mirror = _security_mirror()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f".{name}.dib"
    shutil.rmtree(work, ignore_errors=True)
    elements_path, _ = write_element(work, spec, local)
    scratch = work / "tmp"  # DIB's TMP_DIR: its build and image directories, and nothing else, live here
    scratch.mkdir()
    log = out_dir / f"{name}.log"
    cmd = command(dib, layout, out_dir / name)
    env = environment(elements_path, mirror, security_mirror)
    env["TMP_DIR"] = str(scratch)
    progress(f"diskimage-builder: Debian {RELEASE} from {mirror}, layout {layout} (log: {log})")
    try:
        _run(cmd, env, log, timeout, progress)
    finally:
        left = release_under(scratch)  # DIB cleans up after itself, but not always when interrupted
        if left:
            progress(f"released what diskimage-builder left mounted or attached: {', '.join(left)}")
        shutil.rmtree(work, ignore_errors=True)
    _, marker = parse_console(log.read_text(errors="replace"))
    root = out_dir / f"{name}.qcow2"
    if marker is None or not root.exists():
        raise BakeryError(f"diskimage-builder finished but the image has no bakery marker; log: {log}\n"
                          f"{_tail(log)}")
    kernel = out_dir / f"{name}.vmlinuz" if layout == "kernel-boot" else None
    ramdisk = out_dir / f"{name}.initrd" if layout == "kernel-boot" else None
    for part in (kernel, ramdisk):
        if part is not None and not part.exists():
            raise BakeryError(f"diskimage-builder did not write {part}; log: {log}")
    progress(f"image built: {root} ({root.stat().st_size // (1 << 20)} MiB)")
    return DiskImage(root=root, kernel=kernel, ramdisk=ramdisk, layout=layout, marker=marker, log=log)


def release_under(root: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    """Unmount every mount point under `root` (deepest first) and detach the loop devices backed by files
    under it; what was released."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    points = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point.startswith(prefix):
                points.append(point)
    released = []
    for point in sorted(set(points), key=lambda p: p.count("/"), reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
        released.append(point)
    loops = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True)
    for line in loops.stdout.splitlines():
        device, _, backing = line.strip().partition(" ")
        if backing.strip().startswith(prefix):
            subprocess.run(["losetup", "-d", device], capture_output=True)
            released.append(device)
    return released


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _security_mirror() -> str | None:
    """The host's Debian security mirror, if apt has one (DIB's default host is often unreachable)."""
    from ..local import rootfs

    try:
        return rootfs.host_mirror(suite=f"{RELEASE}-security")
    except EnvironmentMissing:
        return None


def _run(cmd: list[str], env: dict[str, str], log: Path, timeout: float, progress: Progress) -> None:
    """disk-image-create with its output in `log`, each hook phase and bake line as progress."""
    start = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, text=True,
                                errors="replace", start_new_session=True)
        assert proc.stdout is not None
        phase = ""
        try:
            for line in proc.stdout:
                sink.write(line)
                phase = _progress_line(line, progress, phase)
                if time.monotonic() - start > timeout:
                    raise BakeryError(f"diskimage-builder did not finish within {timeout:.0f}s; log: {log}")
            code = proc.wait()
        except BaseException:  # the timeout and Ctrl-C: DIB unmounts and detaches on SIGINT
            _stop(proc)
            raise
    if code != 0:
        raise BakeryError(f"diskimage-builder failed (exit {code}); log: {log}\n{_tail(log)}")


def _progress_line(line: str, progress: Progress, phase: str) -> str:
    """Say when DIB enters a hook phase (root.d, install.d, ...) and what bakery's hooks say; the phase now."""
    found = HOOK_LINE.search(line.rstrip())
    if found:
        if found.group(1) != phase:
            progress(f"diskimage-builder: {found.group(1)}")
        return found.group(1)
    text = line.split(" | ", 1)[-1].strip()  # DIB stamps each line "date time | "
    if text.startswith("bakery-bake: "):  # what bakery's hooks say (log() in the templates)
        progress(text)
    return phase


def _stop(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGINT, 120), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path, lines: int = 25) -> str:
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
