"""Boot, run commands in, and stop systemd-nspawn nodes (docs/local-nodes.md).

Each node boots the shared image read-only under its own overlay, with its
own /var/lib/docker (seeded from the image's when it has one, so baked images
are there) and a NoCloud seed holding its user-data and meta-data, so the real
cloud-init runs on exactly what `bakery render` printed.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from ...errors import BakeryError
from ...state import write_private
from .host import run, which
from .net import DOMAIN, HOST_ADDRESS
from .state import NodeRecord, Proc, proc_starttime

SEED_MOUNT = "/var/lib/cloud/seed/nocloud"
# What a command run inside a node gets as its environment: the node's own, never the operator's
# (an exported DOCKER_HOST would send the node's docker CLI to the host's swarm address).
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8"}


def prepare(node: NodeRecord, image_root: Path, user_data: bytes, *, seed_in_overlay: bool = False) -> None:
    """The node's directory: overlay upper, docker dir, NoCloud seed.

    The seed is a read-only bind mount, unless `seed_in_overlay`: then it is a
    plain directory of the node's root, which `cloud-init clean --seed` can
    remove (a builder seals itself that way; a mount would stop the clean half way).
    """
    d = Path(node.dir)
    seed = d / "upper" / SEED_MOUNT.lstrip("/") if seed_in_overlay else d / "seed"
    for sub in (d / "upper/etc", d / "docker", seed):
        sub.mkdir(parents=True, exist_ok=True)
    write_private(seed / "user-data", user_data)  # it holds the node's keys
    # A fresh instance-id per boot: cloud-init treats the node as a new instance, as a new VM would be.
    meta = f"instance-id: {node.name}-{uuid.uuid4().hex[:12]}\nlocal-hostname: {node.name}\n"
    (seed / "meta-data").write_text(meta)
    # No resolved in the image: point the resolver at dnsmasq on the bridge, as a tenant DHCP would.
    (d / "upper/etc/resolv.conf").write_text(f"nameserver {HOST_ADDRESS}\nsearch {DOMAIN}\n")
    # The node's /var/lib/docker is a bind mount over the image's, which would hide preloaded
    # images: copy what the image has there into it (docs/local-nodes.md). An image need not have
    # one: dockerd creates it at first start, and neither a bake without archives (nothing loaded,
    # dockerd never ran) nor the plain image (no Docker) started it.
    if (image_root / "var/lib/docker").is_dir():
        run(["cp", "-a", "--reflink=auto", f"{image_root}/var/lib/docker/.", str(d / "docker")], d / "prepare.log")


IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")  # Debian's ignition package


def prepare_ignition(node: NodeRecord, image_root: Path, config: bytes) -> None:
    """An Ignition node's directory (`up --format ignition`): the image made to look like Flatcar's or Fedora
    CoreOS's root before its first boot (python3 whited out, cloud-init disabled, a first boot's machine-id,
    DHCP by networkd, SELinux disabled), then the config applied by the real `ignition`
    (platform `file`, stages fetch-offline and files, `--root`), as an initramfs would (docs/IGNITION.md)."""
    import os
    import tempfile

    from ...errors import EnvironmentMissing

    if not IGNITION.exists():
        raise EnvironmentMissing(f"{IGNITION} is missing: --format ignition nodes are set up by the real "
                                 "Ignition (apt-get install ignition)")
    d = Path(node.dir)
    upper, work, merged = d / "upper", d / "ovl-work", d / "ignition-root"
    for sub in (upper / "etc/systemd/network", d / "docker", work, merged):
        sub.mkdir(parents=True, exist_ok=True)
    # DHCP as the cloud-init nodes: dnsmasq hands out the name's fixed address and names it in DNS (a static
    # address would get no lease, and the other nodes could not resolve this one's name)
    (upper / "etc/systemd/network/05-host0.network").write_text(
        "[Match]\nName=host0\n[Network]\nDHCP=ipv4\n[DHCPv4]\nSendHostname=yes\nUseDomains=yes\n")
    (upper / "etc/resolv.conf").write_text(f"nameserver {HOST_ADDRESS}\nsearch {DOMAIN}\n")
    (upper / "etc/hostname").write_text(f"{node.name}\n")
    if (image_root / "var/lib/docker").is_dir():
        run(["cp", "-a", "--reflink=auto", f"{image_root}/var/lib/docker/.", str(d / "docker")], d / "prepare.log")
    run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={image_root},upperdir={upper},workdir={work}",
         str(merged)], d / "prepare.log")
    try:
        for python in (merged / "usr/bin").glob("python3*"):
            python.unlink()  # a whiteout in the upper: like Flatcar and Fedora CoreOS, no Python
        (merged / "etc/cloud").mkdir(exist_ok=True)
        (merged / "etc/cloud/cloud-init.disabled").touch()
        (merged / "etc/machine-id").write_text("uninitialized\n")  # systemd applies Ignition's presets
        # a first boot would run Debian's systemd-firstboot, which asks on a console the node lacks
        # (failed: 208/STDIN); Flatcar and Fedora CoreOS do not run it at first boot either
        (merged / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
        mask = merged / "etc/systemd/system/systemd-firstboot.service"
        if not mask.is_symlink():
            mask.symlink_to("/dev/null")
        (merged / "etc/selinux").mkdir(exist_ok=True)
        (merged / "etc/selinux/config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
        with tempfile.TemporaryDirectory(prefix="bakery-ignition-") as tmp:
            t = Path(tmp)
            write_private(t / "config.ign", config)  # it holds the node's keys
            (t / "setfiles").write_text("#!/bin/sh\ncat >/dev/null\n")  # the relabel step: no SELinux here
            (t / "setfiles").chmod(0o755)
            env = dict(os.environ, IGNITION_CONFIG_FILE=str(t / "config.ign"), PATH=f"{t}:{os.environ['PATH']}")
            for stage in ("fetch-offline", "files"):
                res = subprocess.run([str(IGNITION), "-platform", "file", "-stage", stage, "-root", str(merged),
                                      "-config-cache", str(t / "cache.json"), "-state-file", str(t / "state"),
                                      "-neednet", str(t / "neednet"), "-log-to-stdout"],
                                     capture_output=True, text=True, env=env, timeout=300)
                with (d / "prepare.log").open("a") as log:
                    log.write(res.stdout)
                if res.returncode != 0:
                    raise BakeryError(f"ignition (stage {stage}) failed for node {node.name}: see {d / 'prepare.log'}")
    finally:
        run(["umount", str(merged)], d / "prepare.log")


def boot(node: NodeRecord, image_root: Path, bridge: str, binds: Sequence[str] = (), *,
         console: str = "pipe") -> None:
    """Start the node; `binds` are extra nspawn --bind/--bind-ro options (host paths it may read).

    console "pipe": the node's stdout and stderr go to console.log, it has no /dev/console.
    "passive": a /dev/console whose output nspawn copies to console.log, like a VM's serial
    console log (where `bakery bake` reads a builder's outcome).
    """
    d = Path(node.dir)
    seed = [f"--bind-ro={d / 'seed'}:{SEED_MOUNT}"] if (d / "seed").is_dir() else []
    cmd = [
        which("systemd-nspawn"),
        "-q",
        "-D", str(image_root),
        f"--overlay=+/:{d / 'upper'}:/",
        f"--bind={d / 'docker'}:/var/lib/docker",
        *seed,
        *binds,
        "--boot",
        f"--machine={node.name}",
        "--register=no",
        "--keep-unit",
        f"--console={console}",
        "--link-journal=no",
        "--resolv-conf=off",
        "--capability=all",
        # runc joins a fresh session keyring for each container; nspawn's seccomp filter refuses
        # keyctl/add_key by default ("unable to join session keyring: operation not permitted").
        "--system-call-filter=add_key keyctl request_key",
        f"--network-bridge={bridge}",
    ]
    with (d / "console.log").open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    node.nspawn = Proc.of(proc.pid)
    node.stopped = False


def find_init(node: NodeRecord, timeout: float = 30) -> Proc:
    """The node's PID 1 seen from the host: the child of systemd-nspawn whose comm is `systemd`.

    (Not nspawn itself: nsenter into nspawn's namespaces enters the host.)
    """
    if node.nspawn is None:
        raise BakeryError(f"node {node.name} was never booted")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.nspawn.alive():
            log = Path(node.dir) / "console.log"
            raise BakeryError(f"node {node.name}: systemd-nspawn exited:\n{log.read_text(errors='replace')[-800:]}")
        for pid in _children(node.nspawn.pid):
            if _comm(pid) == "systemd":
                return Proc.of(pid)
        time.sleep(0.2)
    raise BakeryError(f"node {node.name}: systemd did not start within {timeout:.0f}s")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def running(node: NodeRecord) -> bool:
    return node.init is not None and node.init.alive()


def exec_in(node: NodeRecord, cmd: Sequence[str], *, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002 (subprocess's name)
    """Run `cmd` inside the node (all its namespaces), as root; `input` goes to its stdin (secrets too:
    never put them on a command line, where every process in the node can read them)."""
    if not running(node):
        raise BakeryError(f"node {node.name} is not running")
    assert node.init is not None
    return subprocess.run(
        [which("nsenter"), "-t", str(node.init.pid), "-a", "--", *cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        env=NODE_ENV,
    )


def stop(node: NodeRecord, grace: float = 20, *, signalled: bool = False) -> None:
    """Orderly poweroff (nspawn turns SIGTERM into SIGRTMIN+3 for the node's systemd), then kill.

    Killing nspawn alone would orphan the node's PID namespace; killing its
    init ends every process in it.
    """
    if node.nspawn is not None:
        node.nspawn.stop(grace=grace, sig=None if signalled else signal.SIGTERM)
    if node.init is not None and node.init.alive():
        node.init.send(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while node.init.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    node.stopped = True


def kill(node: NodeRecord) -> None:
    """A hard fault: the node vanishes at once, as a VM whose hypervisor died."""
    for proc in (node.init, node.nspawn):
        if proc is not None:
            proc.send(signal.SIGKILL)
    for proc in (node.init, node.nspawn):
        deadline = time.monotonic() + 10
        while proc is not None and proc.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    node.stopped = True


def is_gone(node: NodeRecord) -> bool:
    return all(p is None or proc_starttime(p.pid) != p.starttime for p in (node.nspawn, node.init))
