"""Day two on booted local nodes (issue 13): grow, shrink and roll a live cluster without losing quorum or a task.

  BAKERY_REQUIRE_NODES=1 pytest -m nodes tests/nodes/test_day_two.py -s   # -s shows the figures

One cluster of 3 managers (the seed included) and 2 workers runs `web` (4 replicas) and `everywhere`
(global). While a watcher samples the swarm every second from inside the managers: `bakery up
--workers 4`, then `bakery up --workers 1` (first stopped by a service pinned to the node it retires
first, then finished), then `bakery roll`, in which the node being replaced is
killed (the roll stops, saying where each node is) and a re-run finishes. Through all of it `web`
never has fewer than 3 running tasks, some manager always answers `docker node ls`, and no hostname
is listed twice; at the end every node is new and the managers are 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.daytwo import Watcher
from testkit.nodes import LocalCluster, bakery, boot_cluster

pytestmark = pytest.mark.nodes


@pytest.fixture(scope="module")
def cluster(baked_image: dict[str, Any], cache_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from boot_cluster(tmp_path_factory.mktemp("daytwo"), cache_dir, managers=3, workers=2)


def swarm(cluster: LocalCluster) -> dict[str, dict[str, str]]:
    out = cluster.docker("node", "ls", "--format", "{{json .}}").stdout
    return {n["Hostname"]: n for n in map(json.loads, out.splitlines())}


def names(cluster: LocalCluster) -> dict[str, str]:
    return {n["name"]: n["role"] for n in json.loads(cluster.record.read_text())["nodes"]}


def up(cluster: LocalCluster, *args: str) -> dict[str, Any]:
    done = bakery("up", "--provider", "local", *args, *cluster.args(), "--cache-dir", str(cluster.cache_dir),
                  "--output", "json", timeout=900)
    out: dict[str, Any] = json.loads(done.stdout)
    cluster.up["docker_host"] = out["docker_host"]
    return out


def wait_running(cluster: LocalCluster, service: str, want: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ps = cluster.docker("service", "ps", service, "--filter", "desired-state=running", "--format",
                            "{{.CurrentState}}", check=False).stdout
        if sum(line.startswith("Running") for line in ps.splitlines()) == want:
            return
        time.sleep(2)
    pytest.fail(f"{service}: not {want} running tasks within {timeout:.0f}s")


def test_grow_shrink_and_roll_keep_quorum_and_tasks(cluster: LocalCluster) -> None:
    for args in (["--name", "web", "--replicas", "4"], ["--name", "everywhere", "--mode", "global"]):
        cluster.docker("service", "create", "--detach", *args, "--no-resolve-image", "local/busybox:1",
                       "sleep", "1000000")
    wait_running(cluster, "web", 4)
    wait_running(cluster, "everywhere", 5)
    figures: dict[str, Any] = {}
    with Watcher(cluster.record, ["web"]) as watch:
        # The plan first: nothing changes.
        plan = json.loads(bakery("up", "--provider", "local", "--workers", "4", "--dry-run", *cluster.args(),
                                 "--output", "json").stdout)
        assert plan["plan"] == ["1. boot worker-3 (worker) and wait until Ready",
                                "2. boot worker-4 (worker) and wait until Ready"]
        assert len(names(cluster)) == 5

        watch.phase = "grow"
        start = time.monotonic()
        grown = up(cluster, "--workers", "4")
        figures["grow 2 workers"] = time.monotonic() - start
        assert sorted(grown["seconds_per_change"]) == ["worker-3", "worker-4"]
        assert {h: n["Status"] for h, n in swarm(cluster).items()} == dict.fromkeys(
            ["seed", "manager-1", "manager-2", "worker-1", "worker-2", "worker-3", "worker-4"], "Ready")

        watch.phase = "pinned"
        # A task that cannot run elsewhere stops the retire of its node, which stays drained and listed.
        cluster.docker("service", "create", "--detach", "--name", "pinned", "--constraint",
                       "node.hostname==worker-4", "--no-resolve-image", "local/busybox:1", "sleep", "1000000")
        wait_running(cluster, "pinned", 1)
        held = bakery("up", "--provider", "local", "--workers", "1", "--drain-timeout", "15", *cluster.args(),
                      check=False, timeout=300)
        assert held.returncode == 1, held.stderr[-2000:]
        assert "worker-4 is drained but after 15s" in held.stderr and "pinned 0/1 running" in held.stderr
        assert "cannot be placed elsewhere" in held.stderr and "worker-4 (worker): running, Ready, Drain" in held.stderr
        assert "worker-4" in swarm(cluster) and "worker-4" in names(cluster)
        cluster.docker("service", "rm", "pinned")

        watch.phase = "shrink"
        start = time.monotonic()
        up(cluster, "--workers", "1")
        figures["shrink 3 workers (one already drained)"] = time.monotonic() - start
        assert sorted(names(cluster)) == ["manager-1", "manager-2", "seed", "worker-1"]
        assert sorted(swarm(cluster)) == ["manager-1", "manager-2", "seed", "worker-1"]
        wait_running(cluster, "web", 4)
        assert not list((cluster.state_dir / cluster.name / "local" / "nodes").glob("worker-[234]"))

        watch.phase = "roll"
        before = {h: n["ID"] for h, n in swarm(cluster).items()}
        # The roll, with the node being replaced killed while its replacement boots.
        start = time.monotonic()
        roll = subprocess.Popen([sys.executable, "-m", "bakery", "roll", *cluster.args(), "--cache-dir",
                                 str(cluster.cache_dir), "--output", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert roll.stderr is not None
        err = []
        for line in roll.stderr:
            err.append(line)
            if "booting worker-2" in line:
                from bakery.providers.local import cluster as local
                from bakery.providers.local import nodes

                victim = local.load(cluster.state_dir, cluster.name).node("worker-1")
                nodes.kill(victim)  # the record is the roll's: it is not written from here
        out, _ = roll.communicate(timeout=900)
        stopped = "".join(err)
        assert roll.returncode == 1, stopped[-3000:]
        assert "worker-1 stopped (not by bakery) before it was retired" in stopped
        assert "where the nodes are now:" in stopped and "worker-2 (worker): running, Ready" in stopped
        assert "re-run `bakery roll` to continue" in stopped
        assert (cluster.state_dir / cluster.name / "roll.json").exists()

        watch.phase = "roll re-run"
        done = bakery("roll", *cluster.args(), "--cache-dir", str(cluster.cache_dir), "--output", "json",
                      timeout=1500)
        figures["roll (4 nodes, one stop)"] = time.monotonic() - start
        rolled = json.loads(done.stdout)
        assert [(r["old"], r["new"]) for r in rolled["replaced"]] == [
            ("worker-1", "worker-2"), ("manager-1", "manager-3"), ("manager-2", "manager-4"), ("seed", "manager-5")]
        assert "continuing the roll" in done.stderr
        assert not (cluster.state_dir / cluster.name / "roll.json").exists()
        cluster.up["docker_host"] = f"tcp://{_api(cluster)}:2376"
        wait_running(cluster, "web", 4)
        wait_running(cluster, "everywhere", 4)

    after = swarm(cluster)
    assert sorted(after) == ["manager-3", "manager-4", "manager-5", "worker-2"]
    assert sum(1 for n in after.values() if n["ManagerStatus"]) == 3
    assert all(n["Status"] == "Ready" for n in after.values())
    assert not set(n["ID"] for n in after.values()) & set(before.values())  # every node is new
    assert names(cluster) == {"manager-3": "manager", "manager-4": "manager", "manager-5": "manager",
                              "worker-2": "worker"}
    # The watcher: quorum held, tasks kept, no node twice.
    assert len(watch.samples) > 60
    assert watch.unanswered() == [], [round(s.at - watch.samples[0].at) for s in watch.unanswered()]
    assert watch.min_running("web") >= 3, watch.below("web", 3)
    assert watch.twice() == []
    print("\nday two on booted nodes:")
    for what, seconds in figures.items():
        print(f"  {what}: {seconds:.0f}s")
    for r in rolled["replaced"]:
        print(f"  roll (re-run): {r['old']} -> {r['new']}: Ready in {r['boot_seconds']:.0f}s, "
              f"retired in {r['retire_seconds']:.0f}s")
    print(f"  min running tasks of web (4 replicas): {watch.min_running('web')}; samples: {len(watch.samples)}")


def _api(cluster: LocalCluster) -> str:
    from bakery.providers.local import cluster as local

    rec = local.load(cluster.state_dir, cluster.name)
    node = local.api_node(rec)
    return local.address_for(node.name, node.role)
