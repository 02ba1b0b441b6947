"""Boot a diskimage-builder kernel-boot image in qemu as Nova would (docs/ENGINES.md §6).

qemu gets the kernel, ramdisk and command line the Glance images carry, a copy-on-write layer over
the root image as a virtio disk (as Nova gives each server), and the user-data from `bakery render`
on a NoCloud seed drive. User networking: the guest is 10.0.2.15, the host's loopback is 10.0.2.2
to the guest, and the guest's TLS Docker API (2376) is forwarded to a free port on 127.0.0.1.
TCG (no KVM) unless BAKERY_QEMU_ACCEL says otherwise. Only the qemu started here is ever stopped,
by its own process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testkit import require_or_skip
from testkit.engine import free_port, stop_process

GUEST = "10.0.2.15"  # qemu's user network gives the guest this address by DHCP
HOST = "10.0.2.2"  # the host (its 127.0.0.1) as the guest sees it
BOOT_TIMEOUT = 600
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "mkfs.vfat": "dosfstools",
         "mcopy": "mtools", "debugfs": "e2fsprogs"}


@dataclass(frozen=True)
class KernelImage:
    """The three parts of a kernel-boot image, and the command line its Glance root image carries."""

    root: Path  # qcow2
    kernel: Path
    ramdisk: Path
    command_line: str


def require_tools(switch: str) -> None:
    for tool, package in TOOLS.items():
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin:/sbin"):
            require_or_skip(switch, f"{tool} is not installed ({package})")


def seed_user_data(config: Path, state: Path) -> bytes:
    """What `bakery render --role seed` prints for the guest (its certificate names its addresses)."""
    done = subprocess.run([sys.executable, "-m", "bakery", "render", "--role", "seed", "--config", str(config),
                           "--state-dir", str(state), "--address", GUEST, "--address", "127.0.0.1"],
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout


def nocloud(where: Path, user_data: bytes, instance_id: str, hostname: str = "seed") -> Path:
    """A NoCloud seed drive: a FAT filesystem labelled CIDATA with user-data and meta-data."""
    (where / "user-data").write_bytes(user_data)
    (where / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n")
    seed = where / "seed.img"
    with seed.open("wb") as f:
        f.truncate(4 << 20)
    subprocess.run(["mkfs.vfat", "-n", "CIDATA", str(seed)], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(seed), str(where / "user-data"), str(where / "meta-data"), "::"],
                   check=True, capture_output=True)
    return seed


@dataclass
class VM:
    proc: subprocess.Popen[bytes]
    disk: Path
    console: Path
    api_port: int
    work: Path
    started: float  # time.monotonic() when qemu was started

    def since_start(self) -> float:
        return time.monotonic() - self.started

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode()[-1500:] if self.proc.stderr else ""
            pytest.fail(f"qemu exited {self.proc.returncode}: {err}\n{self.tail()}")

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        text = self.console_text()
        return "\n".join(text.splitlines()[-lines:]) if text else "(no console output)"

    def wait_for_console(self, text: str, timeout: float = BOOT_TIMEOUT) -> float:
        """Seconds since qemu started when `text` first showed on the serial console."""
        return poll(lambda: text in self.console_text() or None, timeout,
                    f"{text!r} on the console", self.check_running, self.tail) and self.since_start()


def poll(probe: Callable[[], Any], timeout: float, what: str, check: Callable[[], None] | None = None,
         context: Callable[[], str] | None = None, every: float = 3) -> Any:
    """probe() until it returns something truthy; a generous deadline, never an assertion on time."""
    start = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - start < timeout:
        if check:
            check()
        try:
            got = probe()
            if got:
                return got
        except Exception as exc:  # noqa: BLE001 (not up yet: refused, reset, TLS handshake cut by slirp)
            last = f"{type(exc).__name__}: {str(exc)[:200]}"
        time.sleep(every)
    pytest.fail(f"no {what} within {timeout:.0f}s ({last})" + (f":\n{context()}" if context else ""))


def boot(image: KernelImage, user_data: bytes, work: Path, instance_id: str) -> VM:
    seed = nocloud(work, user_data, instance_id)
    disk = work / "root.qcow2"  # a copy-on-write layer, as Nova gives each server
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.root), str(disk),
                    "4G"], check=True)
    port = free_port()
    console = work / "console.log"
    accel = os.environ.get("BAKERY_QEMU_ACCEL", "tcg")
    qemu = shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"
    cmd = [qemu, "-accel", accel, "-cpu", "max", "-m", "2048", "-smp", "2", "-display", "none", "-no-reboot",
           "-kernel", str(image.kernel), "-initrd", str(image.ramdisk), "-append", image.command_line,
           "-drive", f"file={disk},if=virtio,format=qcow2", "-drive", f"file={seed},if=virtio,format=raw",
           "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:2376",
           "-serial", f"file:{console}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return VM(proc, disk, console, port, work, time.monotonic())


@contextmanager
def running(image: KernelImage, user_data: bytes, work: Path, instance_id: str,
            units: tuple[str, ...] = ()) -> Iterator[VM]:
    """A booted VM, stopped afterwards; on a failure the journal of `units` is read off its disk."""
    vm = boot(image, user_data, work, instance_id)
    try:
        yield vm
    except BaseException:
        stop_process(vm.proc)
        print(journal(vm, units), file=sys.stderr)
        raise
    stop_process(vm.proc)


def journal(vm: VM, units: tuple[str, ...] = ()) -> str:
    """The journal of bakery's units, from the stopped VM's disk (debugfs: no mount needed)."""
    raw, out = vm.work / "after.raw", vm.work / "journal"
    try:
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(vm.disk), str(raw)], check=True, timeout=300)
        out.mkdir(exist_ok=True)
        subprocess.run(["debugfs", "-R", f"rdump /var/log/journal {out}", str(raw)], capture_output=True,
                       timeout=300)
        names = ("bakery-join", "docker", "docker-tcp.socket", "cloud-final", *units)
        done = subprocess.run(["journalctl", "-D", str(out / "journal"), "--no-pager", "-o", "short-monotonic",
                               *[a for u in names for a in ("-u", u)]], capture_output=True, text=True, timeout=120)
        return "journal of the VM:\n" + "\n".join(done.stdout.splitlines()[-80:])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(no journal from the VM's disk: {exc})"
    finally:
        raw.unlink(missing_ok=True)


@dataclass
class Swarm:
    client: Any  # docker.DockerClient over mutual TLS
    info: dict[str, Any]
    seconds: float  # since qemu started


def tls_client(vm: VM, certs: Path, timeout: float = 10.0) -> Any:
    from bakery.providers.openstack import ready

    return ready.tls_client("127.0.0.1", vm.api_port, certs, timeout)  # what `bakery up` waits with


def wait_for_swarm(vm: VM, certs: Path, timeout: float = BOOT_TIMEOUT) -> Swarm:
    """Until the guest's engine answers over mutual TLS as an active swarm manager. The Swarm's
    client waits longer for an answer: a container's run takes a while under TCG."""
    client = tls_client(vm, certs)

    def active() -> dict[str, Any] | None:
        info: dict[str, Any] = client.info()
        swarm = info["Swarm"]
        return info if swarm["LocalNodeState"] == "active" and swarm.get("ControlAvailable") else None

    info = poll(active, timeout, "active swarm on the booted image", vm.check_running, vm.tail, every=5)
    return Swarm(tls_client(vm, certs, timeout=180), info, vm.since_start())


# The diskimage-builder image has no apparmor_parser while its kernel has AppArmor on, so dockerd cannot
# load its docker-default profile and refuses to start a container that asks for it.
UNCONFINED = ["apparmor=unconfined"]


def host_command(client: Any, image: str, *argv: str) -> str:
    """Run a command on the guest itself (systemctl, journalctl), from a privileged container of `image`
    (a static busybox) that enters PID 1's namespaces: the only way in is the Docker API."""
    out = client.containers.run(image, ["/bin/busybox", "nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--",
                                        *argv], remove=True, privileged=True, pid_mode="host", stderr=True)
    return bytes(out).decode(errors="replace")
