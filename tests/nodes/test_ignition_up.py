"""`bakery up --provider local --format ignition`: the one command that boots Ignition nodes (booted,
systemd-nspawn). Each node's root is the baked image made to look like Flatcar's or Fedora CoreOS's
before a first boot (python3 whited out, cloud-init disabled), with its `bakery render --format ignition`
config applied by the real `ignition` binary (bakery/providers/local/nodes.py, prepare_ignition)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.nodes import LocalCluster, boot_cluster

from bakery.providers.local import nodes
from bakery.providers.local.state import ClusterRecord

pytestmark = pytest.mark.nodes


@pytest.fixture()
def ignition_cluster(baked_image: dict[str, Any], cache_dir: Path, tmp_path: Path) -> Iterator[LocalCluster]:
    if not nodes.IGNITION.exists():
        pytest.fail(f"{nodes.IGNITION} is missing (apt-get install ignition)")
    yield from boot_cluster(tmp_path, cache_dir, 1, 1, "--format", "ignition")


def test_up_format_ignition_boots_nodes_without_python_into_one_swarm(ignition_cluster: LocalCluster) -> None:
    cluster = ignition_cluster
    listed = cluster.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
    assert sorted(line for line in listed if line) == ["seed Ready", "worker-1 Ready"]
    rec = ClusterRecord.load(cluster.record)
    assert rec.format == "ignition"
    for node in rec.nodes:
        assert nodes.exec_in(node, ["sh", "-c", "command -v python3"]).returncode != 0, node.name
        assert not nodes.exec_in(node, ["test", "-e", "/var/lib/cloud/instance"]).returncode == 0  # no cloud-init
        units = nodes.exec_in(node, ["systemctl", "is-enabled", "docker-tcp.socket", "bakery-join.service"]).stdout
        assert units.split() == ["enabled", "enabled"], node.name
        # systemd-firstboot (its first boot) asked a console the node lacks and failed: masked, as it is
        # off on Flatcar and Fedora CoreOS
        firstboot = nodes.exec_in(node, ["systemctl", "is-failed", "systemd-firstboot.service"]).stdout.strip()
        assert firstboot != "failed", node.name
    seed = rec.node("seed")
    assert nodes.exec_in(seed, ["systemctl", "is-active", "bakery-join-server.socket"]).stdout.strip() == "active"
    # The cluster keeps its kind: a re-run is a converge of Ignition nodes, and another --format is refused.
    from testkit.nodes import bakery

    again = bakery("up", "--provider", "local", "--format", "cloud-init", *cluster.args(), "--output", "json",
                   check=False)
    assert again.returncode == 2
    assert json.loads(again.stdout)["error"]["message"].startswith("cluster local's nodes are ignition nodes")
