"""Fault scenarios on booted nodes (BAKERY_NODES_FULL=1; about 3 minutes here).

  BAKERY_REQUIRE_NODES=1 BAKERY_NODES_FULL=1 pytest -m nodes tests/nodes/test_faults.py

One cluster of 3 managers (seed included) and 2 workers. In order: a worker
dies and its tasks are rescheduled; the seed dies and the two remaining
managers keep quorum; a worker booted after that still joins, its token coming
from a remaining manager.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.nodes import LocalCluster, boot_cluster

pytestmark = [
    pytest.mark.nodes,
    pytest.mark.skipif(os.environ.get("BAKERY_NODES_FULL") != "1", reason="fault scenarios need BAKERY_NODES_FULL=1"),
]


@pytest.fixture(scope="module")
def cluster(baked_image: dict[str, Any], cache_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from boot_cluster(tmp_path_factory.mktemp("faults"), cache_dir, managers=3, workers=2)


def manager_docker(cluster: LocalCluster, *args: str) -> str:
    """`docker ARGS` on the first running manager (the seed may be gone)."""
    from bakery.providers.local import cluster as local
    from bakery.providers.local import nodes

    rec = local.load(cluster.state_dir, cluster.name)
    for node in rec.nodes:
        if node.role in ("seed", "manager") and nodes.running(node):
            done = nodes.exec_in(node, ["docker", *args])
            if done.returncode == 0:
                return done.stdout
    raise AssertionError(f"no running manager answered docker {' '.join(args)}")


def eventually(what: str, check: Callable[[], bool], timeout: float = 180) -> None:
    """Poll `check`. A manager that cannot answer yet (a raft election after the leader
    died: "the swarm does not have a leader") is "not yet", not a failure."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if check():
                return
        except AssertionError as exc:
            last = f" (last: {exc})"
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {timeout:.0f}s{last}")
        time.sleep(2)


def running_tasks(cluster: LocalCluster, service: str) -> list[str]:
    out = manager_docker(cluster, "service", "ps", service, "--filter", "desired-state=running",
                         "--format", "{{.Node}} {{.CurrentState}}")
    return [line.split()[0] for line in out.splitlines() if " Running " in f" {line} "]


def node_states(cluster: LocalCluster) -> dict[str, tuple[str, str]]:
    out = manager_docker(cluster, "node", "ls", "--format", "{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}")
    return {h: (s, m) for h, s, m in (line.split("|") for line in out.splitlines())}


def test_tasks_of_a_dead_worker_are_rescheduled(cluster: LocalCluster) -> None:
    from bakery.providers.local import cluster as local

    manager_docker(cluster, "service", "create", "--detach", "--name", "resched", "--replicas", "2",
                   "--no-resolve-image", "--constraint", "node.role==worker", "local/busybox:1", "sleep", "100000")
    eventually("2 tasks running on workers", lambda: len(running_tasks(cluster, "resched")) == 2)
    victim = running_tasks(cluster, "resched")[0]
    local.kill_node(cluster.state_dir, cluster.name, victim)
    survivor = {"worker-1", "worker-2"} - {victim}
    eventually(f"{victim} Down", lambda: node_states(cluster)[victim][0] == "Down")
    eventually("both tasks on the surviving worker",
               lambda: running_tasks(cluster, "resched") == [*survivor, *survivor])


def test_two_managers_keep_quorum_without_the_seed(cluster: LocalCluster) -> None:
    from bakery.providers.local import cluster as local

    local.kill_node(cluster.state_dir, cluster.name, "seed")
    eventually("seed Down", lambda: node_states(cluster)["seed"][0] == "Down")
    eventually("a leader among the remaining managers",
               lambda: any(node_states(cluster)[m][1] == "Leader" for m in ("manager-1", "manager-2")))
    # Quorum means the managers still accept writes.
    manager_docker(cluster, "service", "create", "--detach", "--name", "after-seed", "--replicas", "1",
                   "--no-resolve-image", "local/busybox:1", "sleep", "100000")
    eventually("a task of a service created without the seed", lambda: len(running_tasks(cluster, "after-seed")) == 1)


def test_a_late_worker_joins_through_a_remaining_manager(cluster: LocalCluster) -> None:
    from bakery.providers.local import cluster as local
    from bakery.providers.local.host import quiet

    local.grow(cluster.state_dir, cluster.name, "worker-3", "worker", quiet)
    eventually("worker-3 Ready", lambda: node_states(cluster).get("worker-3", ("", ""))[0] == "Ready", timeout=180)
    assert node_states(cluster)["worker-3"][1] == ""  # a worker, not a manager
