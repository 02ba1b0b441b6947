"""A newcomer's path (CI tier, about a minute): `bakery bake --target local` with no archive, `up` with
1 manager + 1 worker, `nodes` as the swarm sees them (also with a node down), `down`, and `down` again.

The bake shares the base system and the Docker install with the archive bake (rootfs.py: an image with
archives is a copy of this one plus the archives), so in a cache where that bake was made this one is a
cache hit. `up` boots the image `bake` made last; the other booted modules boot the archive image, so the
pointer is put back afterwards.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit.nodes import LocalCluster, bakery, boot_cluster

pytestmark = pytest.mark.nodes


@pytest.fixture(scope="module")
def image(cache_dir: Path) -> Iterator[dict[str, Any]]:
    from bakery.providers.local import rootfs

    before = rootfs.current(cache_dir)
    done = bakery("bake", "--target", "local", "--cache-dir", str(cache_dir), "--output", "json", timeout=1800)
    try:
        yield json.loads(done.stdout)
    finally:
        if before is not None:
            rootfs.set_current(cache_dir, before)


@pytest.fixture(scope="module")
def cluster(image: dict[str, Any], cache_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from boot_cluster(tmp_path_factory.mktemp("no-archive"), cache_dir, managers=1, workers=1)


def nodes_json(cluster: LocalCluster) -> dict[str, Any]:
    done = bakery("nodes", *cluster.args(), "--output", "json")  # fails the test unless it exits 0
    out: dict[str, Any] = json.loads(done.stdout)
    out["stderr"] = done.stderr
    return out


def test_the_image_has_no_archives_and_no_docker_dir(image: dict[str, Any]) -> None:
    assert image["baked"] is True and image["marker"]["images"] == []
    assert not (Path(image["root"]) / "var/lib/docker").exists()  # what `up` used to need


def test_both_nodes_are_ready_as_docker_node_ls_says(cluster: LocalCluster, image: dict[str, Any]) -> None:
    assert json.loads(cluster.record.read_text())["image"] == image["root"]  # `up` booted that image
    out = nodes_json(cluster)
    assert out["answered_by"] == "seed" and out["stderr"] == ""
    # Each node's certificate end (new nodes: 825 days), then the swarm's view.
    for node in out["nodes"]:
        assert node.pop("cert_days_left") >= 824 and node.pop("cert_not_after").endswith("Z")
    assert out["nodes"] == [
        {"name": "seed", "role": "seed", "address": "10.213.0.10", "running": True, "status": "Ready",
         "availability": "Active", "manager_status": "Leader"},
        {"name": "worker-1", "role": "worker", "address": "10.213.0.31", "running": True, "status": "Ready",
         "availability": "Active", "manager_status": ""}]
    # The same, from the operator's TLS client as `up` said to reach it.
    listed = cluster.docker("node", "ls", "--format", "{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}")
    assert sorted(listed.stdout.split()) == ["seed|Ready|Active|Leader", "worker-1|Ready|Active|"]
    table = bakery("nodes", *cluster.args()).stdout.splitlines()
    assert table[0].split() == ["NAME", "ROLE", "ADDRESS", "RUNNING", "STATUS", "AVAILABILITY", "MANAGER", "STATUS"]
    assert [line.split() for line in table[1:]] == [["seed", "seed", "10.213.0.10", "yes", "Ready", "Active", "Leader"],
                                                    ["worker-1", "worker", "10.213.0.31", "yes", "Ready", "Active"]]


def test_a_stopped_worker_is_listed_and_goes_down(cluster: LocalCluster) -> None:
    from bakery.providers.local import cluster as local

    local.kill_node(cluster.state_dir, cluster.name, "worker-1")
    deadline = time.monotonic() + 120
    while True:
        out = nodes_json(cluster)
        worker = out["nodes"][1]
        assert worker["name"] == "worker-1" and worker["running"] is False
        if worker["status"] == "Down":
            break
        assert worker["status"] == "Ready"  # the managers have not noticed yet
        if time.monotonic() > deadline:
            pytest.fail(f"the seed never reported worker-1 Down: {out}")
        time.sleep(3)
    assert out["nodes"][0]["status"] == "Ready" and out["answered_by"] == "seed"


def test_with_no_manager_running_every_node_is_still_listed(cluster: LocalCluster) -> None:
    from bakery.providers.local import cluster as local

    local.kill_node(cluster.state_dir, cluster.name, "seed")
    out = nodes_json(cluster)
    assert out["answered_by"] is None and "no running manager" in out["stderr"]
    assert [(n["name"], n["running"], n["status"], n["manager_status"]) for n in out["nodes"]] == [
        ("seed", False, "Unknown", ""), ("worker-1", False, "Unknown", "")]


def test_down_removes_everything_and_a_second_down_has_nothing_to_remove(cluster: LocalCluster) -> None:
    record = json.loads(cluster.record.read_text())
    done = cluster.down()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cluster local removed\n"
    assert not cluster.record.exists() and not Path(record["workdir"]).exists()
    links = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    assert record["bridge"] not in links and "10.213.0." not in links
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    assert record["bridge"] not in rules
    from bakery.providers.local.state import proc_starttime

    pids = [p["pid"] for p in record["services"].values()]
    pids += [n[k]["pid"] for n in record["nodes"] for k in ("nspawn", "init")]
    assert [p for p in pids if proc_starttime(p) is not None] == []
    again = cluster.down()
    assert again.returncode == 0 and again.stdout == ""
    assert again.stderr.splitlines() == [
        f"bakery down: cluster local: nothing to remove (no record of it in {cluster.state_dir})"]
