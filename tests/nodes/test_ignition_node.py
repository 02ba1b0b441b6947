"""An Ignition node without Python joins a cloud-init seed's swarm (booted, systemd-nspawn).

The worker's root is the baked node image with curl added and python3 hidden (overlay whiteouts),
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


def _ignition_root(image: Path, upper: Path, config: Path, work: Path) -> None:
    """The worker's overlay upper: curl installed, python3 whited out, the Ignition config applied."""
    merged, scratch = work / "merged", work / "ovl-work"
    for d in (upper, merged, scratch):
        d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={image},upperdir={upper},workdir={scratch}", str(merged)], check=True)
    try:
        (merged / "etc/resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
        subprocess.run(["mount", "-t", "proc", "proc", str(merged / "proc")], check=True)
        try:
            res = subprocess.run(["chroot", str(merged), "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND="
                                  "noninteractive apt-get install -y -qq --no-install-recommends curl"],
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
    if not IGNITION.exists():
        require_or_skip(SWITCH, f"{IGNITION} is missing (apt-get install ignition)")
    image = Path(baked_image["root"])
    conf = tmp_path / "bakery.yml"
    conf.write_text(f"cluster: {{name: ign}}\nswarm: {{seed: '{NET}.11', form: true}}\n"
                    "docker: {install: none, daemon: {storage_driver: vfs}}\nsecurity: {block_metadata: false}\n")
    state = tmp_path / "state"
    seed_ud = render(["--role", "seed", "--address", f"{NET}.11", "--config", str(conf)], state, capsysbinary)
    config = tmp_path / "worker.ign"
    config.write_bytes(render(["--role", "worker", "--name", "worker-1", "--address", f"{NET}.12", "--config",
                               str(conf), "--format", "ignition"], state, capsysbinary))
    seed = NodeRecord("ign-seed", "seed", str(tmp_path / "seed"))
    worker = NodeRecord("ign-worker-1", "worker", str(tmp_path / "worker"))
    nodes.prepare(seed, image, seed_ud)
    seed_upper = Path(seed.dir) / "upper"
    _network(seed_upper, f"{NET}.11")
    (seed_upper / "etc/hostname").write_text("seed\n")
    (seed_upper / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (seed_upper / "etc/cloud/cloud.cfg.d/99-static-net.cfg").write_text("network: {config: disabled}\n")
    _ignition_root(image, Path(worker.dir) / "upper", config, tmp_path / "ignition")
    _network(Path(worker.dir) / "upper", f"{NET}.12")
    (Path(worker.dir) / "upper/etc/hostname").write_text("worker-1\n")
    (Path(worker.dir) / "docker").mkdir()
    net = Netns(f"i{os.getpid() % 1000}", NET)
    try:
        net.up()
        for node in (seed, worker):
            nodes.boot(node, image, net.bridge)
            node.init = nodes.find_init(node)
        yield {"seed": seed, "worker": worker, "state": state}
    finally:
        for node in (seed, worker):
            if node.nspawn is not None:
                nodes.stop(node)
        net.down()


def _until(what: str, check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(3)


def test_an_ignition_worker_without_python_joins_a_cloud_init_seed(booted: dict[str, Any]) -> None:
    seed, worker = booted["seed"], booted["worker"]

    def ready() -> bool:
        out = nodes.exec_in(seed, ["docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout
        return sorted(line for line in out.split("\n") if line) == ["ign-seed Ready", "worker-1 Ready"]

    _until("seed and worker-1 Ready in one swarm", ready)
    assert nodes.exec_in(worker, ["sh", "-c", "command -v python3"]).returncode != 0  # no Python on it
    journal = nodes.exec_in(worker, ["journalctl", "-u", "bakery-join", "--no-pager"]).stdout
    assert f"joined the swarm as worker through {NET}.11, advertising {NET}.12" in journal, journal
    units = nodes.exec_in(worker, ["systemctl", "is-enabled", "docker-tcp.socket", "bakery-join.service"]).stdout
    assert units.split() == ["enabled", "enabled"]
    mode = nodes.exec_in(worker, ["stat", "-c", "%a", "/etc/bakery/tls/server-key.pem", "/etc/bakery/tls/join-key.pem"])
    assert mode.stdout.split() == ["600", "600"]
    # The worker's Docker API: mutual TLS on 2376 with the operator's certificate, as render promises.
    client = booted["state"] / "ign" / "client"
    cli = shutil.which("docker", path="/usr/local/bin") or "docker"
    info = subprocess.run([cli, "--tlsverify", "--tlscacert", str(client / "ca.pem"), "--tlscert",
                           str(client / "cert.pem"), "--tlskey", str(client / "key.pem"), "-H",
                           f"tcp://{NET}.12:2376", "info", "--format", "{{.Swarm.LocalNodeState}}"],
                          capture_output=True, text=True, timeout=60)
    assert info.stdout.strip() == "active", info.stderr
    token = nodes.exec_in(seed, ["docker", "swarm", "join-token", "-q", "worker"]).stdout.strip()
    found = nodes.exec_in(worker, ["grep", "-rlF", "-f", "-", "/etc", "/opt", "/var/log", "/var/lib/bakery"],
                          input=token + "\n")  # the pattern on stdin: the test puts no token on a command line
    assert token and found.stdout == "", found.stdout  # never in a file
