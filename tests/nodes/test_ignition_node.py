"""Ignition nodes without Python form a swarm with a cloud-init node (booted, systemd-nspawn).

The seed and worker-1 are rendered with --format ignition; manager-1 with cloud-init (a mixed
cluster). The Ignition nodes' root is the baked node image with curl and socat added and python3
hidden (overlay whiteouts),
cloud-init disabled, and `bakery render --format ignition` applied by the real `ignition` binary
(platform `file`, stages fetch-offline then files, `--root`), as an initramfs would before the real
root boots. Its /etc/machine-id says `uninitialized`, as a first boot's does, so systemd applies
Ignition's presets. The seed boots the same image with its cloud-init user-data. Both are on a
bridge of this test's own (10.213.94.0/24, static addresses), never the local provider's.

Ignition's SELinux relabel step needs SELINUXTYPE in the root's /etc/selinux/config and runs
`setfiles`: the root gets a disabled config and Ignition a `setfiles` that does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import require_or_skip
from testkit.join import Netns
from testkit.nodes import SWITCH
from testkit.render_util import render

from bakery.providers.local import nodes
from bakery.providers.local.state import NodeRecord

pytestmark = pytest.mark.nodes

NET = "10.213.94"
IGNITION = Path("/usr/lib/dracut/modules.d/30ignition/ignition")


def _network(upper: Path, address: str) -> None:
    (upper / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (upper / "etc/systemd/network/05-host0.network").write_text(
        f"[Match]\nName=host0\n[Network]\nAddress={address}/24\nGateway={NET}.1\n")
    (upper / "etc/resolv.conf").write_text(f"nameserver {NET}.1\n")


def _overlay(image: Path, upper: Path, work: Path) -> Path:
    merged, scratch = work / "merged", work / "ovl-work"
    for d in (upper, merged, scratch):
        d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={image},upperdir={upper},workdir={scratch}", str(merged)], check=True)
    return merged


def _container_linux_base(image: Path, upper: Path, work: Path) -> None:
    """An overlay upper that makes the image look like Flatcar's or Fedora CoreOS's root before Ignition:
    curl and socat installed, python3 whited out, cloud-init disabled, a first boot's machine-id."""
    merged = _overlay(image, upper, work)
    try:
        (merged / "etc/resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
        subprocess.run(["mount", "-t", "proc", "proc", str(merged / "proc")], check=True)
        try:
            res = subprocess.run(["chroot", str(merged), "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND="
                                  "noninteractive apt-get install -y -qq --no-install-recommends curl socat"],
                                 capture_output=True, text=True, timeout=600)
            assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        finally:
            subprocess.run(["umount", str(merged / "proc")], check=True)
        for python in (merged / "usr/bin").glob("python3*"):
            python.unlink()  # a whiteout in the upper: the node has no python3
        (merged / "etc/cloud/cloud-init.disabled").touch()
        (merged / "etc/machine-id").write_text("uninitialized\n")
        (merged / "etc/selinux").mkdir(exist_ok=True)
        (merged / "etc/selinux/config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def _ignition_root(image: Path, base: Path, upper: Path, config: Path, work: Path) -> None:
    """A node's overlay upper: the base's copy, then the Ignition config applied by the real `ignition`."""
    upper.mkdir(parents=True)
    subprocess.run(["cp", "-a", f"{base}/.", str(upper)], check=True)
    merged = _overlay(image, upper, work)
    try:
        shim = work / "bin"
        shim.mkdir()
        (shim / "setfiles").write_text("#!/bin/sh\ncat >/dev/null\n")
        (shim / "setfiles").chmod(0o755)
        env = dict(os.environ, IGNITION_CONFIG_FILE=str(config), PATH=f"{shim}:{os.environ['PATH']}")
        for stage in ("fetch-offline", "files"):
            res = subprocess.run([str(IGNITION), "-platform", "file", "-stage", stage, "-root", str(merged),
                                  "-config-cache", str(work / "ignition.json"), "-state-file", str(work / "state"),
                                  "-neednet", str(work / "neednet"), "-log-to-stdout"],
                                 capture_output=True, text=True, env=env, timeout=120)
            assert res.returncode == 0, res.stdout[-3000:]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@pytest.fixture()
def booted(baked_image: dict[str, Any], tmp_path: Path, capsysbinary: Any) -> Iterator[dict[str, Any]]:
    """Three nodes: the seed and worker-1 from --format ignition (no Python), manager-1 from cloud-init."""
    if not IGNITION.exists():
        require_or_skip(SWITCH, f"{IGNITION} is missing (apt-get install ignition)")
    image = Path(baked_image["root"])
    conf = tmp_path / "bakery.yml"
    conf.write_text(f"cluster: {{name: ign}}\nswarm: {{seed: '{NET}.11', form: true}}\n"
                    "docker: {install: none, daemon: {storage_driver: vfs}}\nsecurity: {block_metadata: false}\n")
    state = tmp_path / "state"
    ignition = {"seed": (["--role", "seed"], 11), "worker-1": (["--role", "worker", "--name", "worker-1"], 12)}
    manager_ud = render(["--role", "manager", "--name", "manager-1", "--address", f"{NET}.13", "--config", str(conf)],
                        state, capsysbinary)
    base = tmp_path / "container-linux"
    _container_linux_base(image, base, tmp_path / "base-work")
    records = {"manager-1": NodeRecord("ign-manager-1", "manager", str(tmp_path / "manager-1"))}
    for name, (args, octet) in ignition.items():
        config = tmp_path / f"{name}.ign"
        config.write_bytes(render([*args, "--address", f"{NET}.{octet}", "--config", str(conf), "--format",
                                   "ignition"], state, capsysbinary))
        records[name] = NodeRecord(f"ign-{name}", args[1], str(tmp_path / name))
        upper = Path(records[name].dir) / "upper"
        _ignition_root(image, base, upper, config, tmp_path / f"{name}-work")
        _network(upper, f"{NET}.{octet}")
        (upper / "etc/hostname").write_text(f"{name}\n")
        (Path(records[name].dir) / "docker").mkdir()
    manager = records["manager-1"]
    nodes.prepare(manager, image, manager_ud)
    manager_upper = Path(manager.dir) / "upper"
    _network(manager_upper, f"{NET}.13")
    (manager_upper / "etc/hostname").write_text("manager-1\n")
    (manager_upper / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (manager_upper / "etc/cloud/cloud.cfg.d/99-static-net.cfg").write_text("network: {config: disabled}\n")
    net = Netns(f"i{os.getpid() % 1000}", NET)
    order = [records["seed"], records["manager-1"], records["worker-1"]]
    try:
        net.up()
        for node in order:
            nodes.boot(node, image, net.bridge)
            node.init = nodes.find_init(node)
        yield {**records, "state": state}
    finally:
        for node in order:
            if node.nspawn is not None:
                nodes.stop(node)
        net.down()


def _until(what: str, check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(3)


def _diagnose(booted: dict[str, Any]) -> str:
    """What the nodes say of their join, for a failure message."""
    out = []
    for name in ("seed", "manager-1", "worker-1"):
        for cmd in (["systemctl", "--no-pager", "--failed"],
                    ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
                    ["journalctl", "--no-pager", "-n", "60", "-u", "bakery-join", "-u", "bakery-join-tls",
                     "-u", "bakery-join-server.socket", "-u", "bakery-join-server", "-u", "docker"]):
            try:
                res = nodes.exec_in(booted[name], cmd)
                out.append(f"--- {name}: {' '.join(cmd)}\n{res.stdout[-4000:]}{res.stderr[-1000:]}")
            except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the failure
                out.append(f"--- {name}: {exc}")
    return "\n".join(out)


def test_ignition_seed_and_worker_without_python_and_a_cloud_init_manager_form_one_swarm(
        booted: dict[str, Any]) -> None:
    seed, manager, worker = booted["seed"], booted["manager-1"], booted["worker-1"]  # manager-1: cloud-init

    def ready() -> bool:
        out = nodes.exec_in(seed, ["docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout
        want = ["ign-manager-1 Ready", "seed Ready", "worker-1 Ready"]  # a cloud-init node's hostname: its name
        return sorted(line for line in out.split("\n") if line) == want

    try:
        _until("seed, manager-1 and worker-1 Ready in one swarm", ready)
    except AssertionError:
        raise AssertionError(_diagnose(booted)) from None
    for node in (seed, worker):
        assert nodes.exec_in(node, ["sh", "-c", "command -v python3"]).returncode != 0  # no Python on it
    seed_log = nodes.exec_in(seed, ["journalctl", "-u", "bakery-join", "--no-pager"]).stdout
    assert f"initialised the swarm, advertising {NET}.11" in seed_log, seed_log
    journal = nodes.exec_in(worker, ["journalctl", "-u", "bakery-join", "--no-pager"]).stdout
    assert f"joined the swarm as worker through {NET}.11, advertising {NET}.12" in journal, journal
    # the swarm can list the manager before its agent's last lines reach the journal
    _until("manager-1's join logged", lambda: "joined the swarm as manager" in nodes.exec_in(
        manager, ["journalctl", "-u", "bakery-join", "--no-pager"]).stdout, 60)
    # The seed's join service without Python answered both: the sh worker and the Python manager.
    served = nodes.exec_in(seed, ["journalctl", "-u", "bakery-join-tls", "--no-pager"]).stdout
    assert '/v1/token/worker HTTP/1.1" 200' in served and '/v1/token/manager HTTP/1.1" 200' in served, served
    units = nodes.exec_in(seed, ["systemctl", "is-enabled", "docker-tcp.socket", "bakery-join.service",
                                 "bakery-join-server.socket"]).stdout
    assert units.split() == ["enabled", "enabled", "enabled"]
    units = nodes.exec_in(worker, ["systemctl", "is-enabled", "docker-tcp.socket", "bakery-join.service"]).stdout
    assert units.split() == ["enabled", "enabled"]
    for node in (seed, worker):
        mode = nodes.exec_in(node, ["stat", "-c", "%a", "/etc/bakery/tls/server-key.pem",
                                    "/etc/bakery/tls/join-key.pem"])
        assert mode.stdout.split() == ["600", "600"]
    # The worker's Docker API: mutual TLS on 2376 with the operator's certificate, as render promises.
    client = booted["state"] / "ign" / "client"
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    info = subprocess.run([cli, "--tlsverify", "--tlscacert", str(client / "ca.pem"), "--tlscert",
                           str(client / "cert.pem"), "--tlskey", str(client / "key.pem"), "-H",
                           f"tcp://{NET}.12:2376", "info", "--format", "{{.Swarm.LocalNodeState}}"],
                          capture_output=True, text=True, timeout=60)
    assert info.stdout.strip() == "active", info.stderr
    for kind in ("worker", "manager"):
        token = nodes.exec_in(seed, ["docker", "swarm", "join-token", "-q", kind]).stdout.strip()
        for node in (seed, worker):
            found = nodes.exec_in(node, ["grep", "-rlF", "-f", "-", "/etc", "/opt", "/var/log", "/var/lib/bakery"],
                                  input=token + "\n")  # the pattern on stdin: no token on a command line
            assert token and found.stdout == "", (kind, found.stdout)  # never in a file
            logs = nodes.exec_in(node, ["journalctl", "--no-pager"], input=None).stdout
            assert token not in logs, kind
