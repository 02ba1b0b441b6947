"""NFS shares on a booted node against a real NFS server (README "NFS", docs/FACTS.md §7).

nfs-ganesha serves NFSv4 on the host's loopback, on a free port, started and stopped by each test
(testkit/ganesha.py); the node is the kernel-boot image test_diskimage_build.py builds (built once per
session, tests/openstack/conftest.py), booted in qemu with the seed's user-data (testkit/qemu.py). The
guest reaches the server at 10.0.2.2 through qemu's user network; the CI kernel has no NFS client, so
this is the only tier where a share is really mounted. Two boots (a TCG boot takes minutes, so the
required share that is up and the optional one that is down share a boot):

- two shares from two servers: the required one's server up, the `required: false` one's down. The
  required share mounts before Docker starts, a file round-trips host <-> guest through a container's
  bind mount of it, and the swarm is active while the optional share is still missing (it never holds
  the node); once its server starts it mounts, and a file round-trips through it too;
- server down at first boot, started after three failed attempts: the bootstrap still finishes, the
  share's service logs each failed attempt with its reason, Docker waits; once the server answers the
  share mounts, Docker starts and the seed inits its swarm, with no manual step.

Nothing asserts on time: deadlines are generous, and the durations are printed (pytest -s shows them).
The guest is only reachable through its TLS Docker API, so what the node's systemd says is read by a
privileged busybox container that enters PID 1's namespaces (qemu.host_command).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from testkit import ganesha, qemu
from testkit.engine import free_port

pytestmark = [pytest.mark.glance, pytest.mark.dib]
SWITCH = "BAKERY_REQUIRE_DIB"
WHERE = "/mnt/shared"
MOUNT = "mnt-shared.mount"
SERVICE = "bakery-nfs-mnt-shared.service"
SHARE = f"{qemu.HOST}:{ganesha.PSEUDO}"
OPTIONAL = "/mnt/optional"  # the second share of the two-share boot, from the second server
OPTIONAL_MOUNT = "mnt-optional.mount"
OPTIONAL_SERVICE = "bakery-nfs-mnt-optional.service"
FAILED = f"bakery-nfs: NFS share {SHARE} on {WHERE} is not mounted (attempt 1: "
RETRIED = f"bakery-nfs: NFS share {SHARE} on {WHERE} is not mounted (attempt 3: "  # after 5 s, then 10 s
MOUNTED = f"bakery-nfs: NFS share {SHARE} mounted on {WHERE}"
BOOTSTRAPPED = "bakery: role seed bootstrapped"
MOUNT_TIMEOUT = 420  # the retry backoff is capped at 60 s; a TCG guest is slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ganesha.Ganesha]:
    qemu.require_tools(SWITCH)
    nfs = ganesha.Ganesha.prepare(ganesha.binary(SWITCH), tmp_path / "nfs", free_port())
    try:
        yield nfs
    finally:
        nfs.stop()


@pytest.fixture
def second_server(tmp_path: Path) -> Iterator[ganesha.Ganesha]:
    """Another ganesha (its own directory and port): the kernel's NFS client tells servers apart by port."""
    nfs = ganesha.Ganesha.prepare(ganesha.binary(SWITCH), tmp_path / "nfs2", free_port())
    try:
        yield nfs
    finally:
        nfs.stop()


UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"  # systemd's MESSAGE_ID of "Starting <unit>..."
FACTS = f"""
systemctl show -p Id -p ActiveState -p ActiveEnterTimestampMonotonic {MOUNT} docker.service bakery-join.service
echo ---
journalctl -b -q --no-pager -o cat -u docker.service MESSAGE_ID={UNIT_STARTING} | wc -l
echo ---
journalctl -b -q --no-pager -o short-monotonic -u {SERVICE}
"""


@dataclass
class Facts:
    """What the node's systemd says, in one container run (each takes half a minute under TCG)."""

    state: dict[str, str]
    entered: dict[str, float]  # when each unit last became active, in s since the guest's kernel started
    docker_starts: int  # this boot
    log: str  # the share's service's journal

    @classmethod
    def parse(cls, text: str) -> Facts:
        units, starts, log = text.split("---\n", 2)
        state, entered = {}, {}
        for block in units.strip().split("\n\n"):
            props = dict(line.split("=", 1) for line in block.splitlines())
            state[props["Id"]] = props["ActiveState"]
            entered[props["Id"]] = int(props["ActiveEnterTimestampMonotonic"]) / 1e6
        return cls(state, entered, int(starts), log.strip())


class Node:
    """One booted seed with one share, and what it says through its Docker API."""

    def __init__(self, vm: qemu.VM, certs: Path, image: str) -> None:
        self.vm, self.certs, self.image = vm, certs, image
        self.swarm: qemu.Swarm | None = None

    def wait_for_swarm(self) -> qemu.Swarm:
        self.swarm = qemu.wait_for_swarm(self.vm, self.certs)
        return self.swarm

    def run(self, *argv: str) -> str:
        assert self.swarm is not None
        return qemu.host_command(self.swarm.client, self.image, *argv)

    def state(self, unit: str) -> str:
        return self.run("systemctl", "show", "-P", "ActiveState", unit).strip()

    def facts(self) -> Facts:
        return Facts.parse(self.run("sh", "-c", FACTS))

    def round_trip(self, export: Path, where: str = WHERE) -> None:
        """A file written on the host is read in a container through the share, and one written there
        is read on the host."""
        assert self.swarm is not None
        stamp = str(time.time_ns())
        (export / "from-host.txt").write_text(f"host {stamp}\n")
        out = self.swarm.client.containers.run(
            self.image, ["sh", "-c", f"cat /data/from-host.txt && echo guest {stamp} > /data/from-guest.txt"],
            remove=True, volumes={where: {"bind": "/data", "mode": "rw"}}, network_mode="none",
            security_opt=qemu.UNCONFINED)
        assert bytes(out).decode() == f"host {stamp}\n"
        assert (export / "from-guest.txt").read_text() == f"guest {stamp}\n"


def _config(tmp_path: Path, name: str, shares: list[tuple[str, int, bool]]) -> Path:
    """A new swarm's seed with these shares: (mount point, server port, required)."""
    config = tmp_path / "bakery.yml"
    text = f"cluster:\n  name: {name}\nswarm:\n  seed: {qemu.GUEST}\n  form: true\nnfs:\n"
    for where, port, required in shares:
        text += (f"  - server: {qemu.HOST}\n    export: {ganesha.PSEUDO}\n    path: {where}\n"
                 f"    options: [vers=4.1, hard, timeo=600, retrans=2, port={port}]\n"
                 f"    required: {'true' if required else 'false'}\n")
    config.write_text(text)
    return config


@contextmanager
def _booted(built, tmp_path: Path, name: str, shares: list[tuple[str, int, bool]], image: str) -> Iterator[Node]:
    state = tmp_path / "state"
    user_data = qemu.seed_user_data(_config(tmp_path, name, shares), state)
    work = tmp_path / "vm"
    work.mkdir()
    units = (SERVICE, MOUNT, OPTIONAL_SERVICE, OPTIONAL_MOUNT)
    with qemu.running(built.kernel_image(), user_data, work, f"bakery-{name}", units=units) as vm:
        yield Node(vm, state / name / "client", image)


def _report(title: str, facts: Facts, lines: list[str]) -> None:
    print(f"\n== {title}")
    for line in lines:
        print(f"   {line}")
    print("   the share's service logged:")
    for line in facts.log.splitlines():
        print(f"     {line}")


def _docker_started_once_after_the_share(facts: Facts) -> None:
    """Docker first started from the bootstrap, after the share was mounted: the image's own start at
    boot was cancelled (bootcmd), so no container ever ran on the empty mount point."""
    assert facts.docker_starts == 1, facts
    at = facts.entered
    assert facts.state[MOUNT] == "active" and 0 < at[MOUNT] < at["docker.service"] < at["bakery-join.service"], facts


def _times(facts: Facts) -> str:
    at = facts.entered
    return (f"in the guest (s since its kernel started): share mounted {at[MOUNT]:.1f}, docker active "
            f"{at['docker.service']:.1f}, swarm init done {at['bakery-join.service']:.1f}")


def test_a_required_share_mounts_before_docker_and_an_optional_one_down_never_holds_the_node(
        built, server, second_server, busybox_image, tmp_path):
    server.start()
    shares = [(WHERE, server.port, True), (OPTIONAL, second_server.port, False)]
    with _booted(built, tmp_path, "nfsup", shares, busybox_image) as node:
        vm = node.vm
        swarm = node.wait_for_swarm()  # the optional share's server down all along
        node.round_trip(server.export)
        facts = node.facts()
        _docker_started_once_after_the_share(facts)
        console = vm.console_text()
        assert MOUNTED in console and FAILED not in console
        optional_failed = f"bakery-nfs: NFS share {SHARE} on {OPTIONAL} is not mounted (attempt 1: "
        assert optional_failed in console, console[-3000:]
        # not mounted; "activating" while one of its retries is under way (a slow machine: CI8 saw it)
        assert node.state(OPTIONAL_MOUNT) in ("inactive", "failed", "activating")
        served = second_server.start() - vm.started
        qemu.poll(lambda: node.state(OPTIONAL_MOUNT) == "active", MOUNT_TIMEOUT,
                  f"{OPTIONAL} mounted after its server started", vm.check_running, vm.tail, every=10)
        mounted = vm.since_start()
        node.round_trip(second_server.export, OPTIONAL)
        _report("required share's server up, optional share's server down", facts, [
            f"swarm active {swarm.seconds:.0f} s after qemu started, with the optional share still missing",
            _times(facts),
            f"optional share's server started at {served:.0f} s; share seen mounted at {mounted:.0f} s "
            f"({mounted - served:.0f} s later)"])


def test_server_down_at_first_boot_then_started_the_node_joins(built, server, busybox_image, tmp_path):
    with _booted(built, tmp_path, "nfsdown", [(WHERE, server.port, True)], busybox_image) as node:
        vm = node.vm
        failed_at = vm.wait_for_console(FAILED)
        bootstrapped_at = vm.wait_for_console(BOOTSTRAPPED)  # the failed mount did not stop it
        retried_at = vm.wait_for_console(RETRIED)
        reason = next(line for line in vm.console_text().splitlines() if FAILED in line)
        served = server.start() - vm.started
        joined = node.wait_for_swarm().seconds
        node.round_trip(server.export)
        facts = node.facts()
        _docker_started_once_after_the_share(facts)
        assert "(attempt 1: " in facts.log and "next attempt in" in facts.log and "mounted on" in facts.log, facts
        _report("server down at first boot, started later", facts, [
            f"first failed attempt on the console {failed_at:.0f} s after qemu started: {reason.strip()}",
            f"bootstrap finished (share still down) by {bootstrapped_at:.0f} s; third attempt failed by "
            f"{retried_at:.0f} s",
            f"server started at {served:.0f} s; swarm active at {joined:.0f} s ({joined - served:.0f} s later)",
            _times(facts)])
