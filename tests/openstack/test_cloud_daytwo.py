"""Day two against the test cloud (real Keystone, Nova with the fake driver, Neutron, Placement, Glance):
`bakery up` re-run with other counts and `bakery roll`, through fleet's planner, on one cluster.

Fake-driver servers run no cloud-init, so every run has `--wait active`: servers that go are only deleted
(the swarm is not asked), and the plan says so. Without it, a swarm no manager's API answers for (here:
every node address is an unreachable route) refuses the change. What each step deleted and created is
read back from Nova and Neutron: exactly the server (and what bakery made for it) named in the plan.
"""

from __future__ import annotations

import base64
import json

import pytest
from testkit.osbakery import run, servers_of, up_argv

pytestmark = pytest.mark.openstack

NOT_ASKED = "(--wait active: the swarm is not asked, nothing is drained)"


def inventory(user, cluster: str) -> dict[str, dict]:
    pid = user.current_project_id
    return {
        "servers": {s.name: s.id for s in user.compute.servers(details=True)
                    if (s.metadata or {}).get("bakery.cluster") == cluster},
        "ports": {p.id: (p.name, p.device_id) for p in user.network.ports(project_id=pid)
                  if not p.device_owner.startswith("network:")},
        "floating_ips": {ip.id: (ip.floating_ip_address, ip.port_id) for ip in user.network.ips()},
        "security_groups": {sg.id: sg.name for sg in user.network.security_groups(project_id=pid)},
        "server_groups": {g.id: (g.name, tuple(sorted(g.member_ids))) for g in user.compute.server_groups()},
    }


def without(inv: dict[str, dict], server_id: str) -> dict[str, dict]:
    """The inventory less one server and the ports it held."""
    out = {k: dict(v) for k, v in inv.items()}
    out["servers"] = {n: i for n, i in inv["servers"].items() if i != server_id}
    out["ports"] = {p: v for p, v in inv["ports"].items() if v[1] != server_id}
    return out


def check_new_server(admin, sent, name: str) -> None:
    server = servers_of(admin, "day2")[name]
    assert server.status == "ACTIVE"
    assert server.metadata == {"bakery.cluster": "day2", "bakery.role": "worker"}
    assert base64.b64decode(server.user_data) == sent[name]  # byte-exact
    assert {g["name"] for g in server.security_groups} == {"bakery-day2-nodes"}
    join = json.loads(_file(sent[name], "/etc/bakery/join.json"))
    assert "form" not in join and join["role"] == "worker"


def _file(payload: bytes, path: str) -> str:
    from testkit.render_util import cloud_config_parts, written_files

    return str(written_files(cloud_config_parts(payload)[0])[path]["content"])


def test_up_rerun_converges_and_roll_replaces(os_env, admin, user, sent, clean, capsys, tmp_path):
    state = tmp_path / "state"

    def up(*extra: str) -> tuple[int, str, str]:
        return run(capsys, up_argv("day2", state, "--managers", "3", *extra))

    code, _, err = up("--workers", "2")
    assert code == 0, err
    first = inventory(user, "day2")
    assert sorted(first["servers"]) == ["day2-manager-1", "day2-manager-2", "day2-seed", "day2-worker-1",
                                        "day2-worker-2"]

    # The plan, and nothing changed.
    code, out, err = up("--workers", "1", "--dry-run")
    assert code == 0, err
    assert json.loads(out)["plan"] == [f"1. delete server day2-worker-2 {NOT_ASKED}"]
    # Without --wait active the swarm must be asked; no manager answers: refused (fleet's quorum rule).
    argv = [a for a in up_argv("day2", state, "--managers", "3", "--workers", "1") if a not in ("--wait", "active")]
    code, _, err = run(capsys, argv)
    assert code == 2
    assert "the swarm has no quorum: 0 of 3 managers reachable, a majority is 2" in err
    assert "--wait active deletes and boots servers without asking the swarm" in err
    assert inventory(user, "day2") == first

    # Shrink: exactly worker-2's server (and the port Nova made for it) goes.
    code, out, err = up("--workers", "1")
    assert code == 0, err
    assert json.loads(out)["changes"] == [f"1. delete server day2-worker-2 {NOT_ASKED}"]
    assert inventory(user, "day2") == without(first, first["servers"]["day2-worker-2"])
    shrunk = inventory(user, "day2")

    # Grow: the lowest free names, bakery's user_data byte-exact, joining (never forming).
    sent.clear()
    code, out, err = up("--workers", "3")
    assert code == 0, err
    assert json.loads(out)["changes"] == [
        "1. boot server day2-worker-2 (worker) and wait until ACTIVE (--wait active: the swarm is not asked)",
        "2. boot server day2-worker-3 (worker) and wait until ACTIVE (--wait active: the swarm is not asked)"]
    grown = inventory(user, "day2")
    assert sorted(set(grown["servers"]) - set(shrunk["servers"])) == ["day2-worker-2", "day2-worker-3"]
    assert {n: i for n, i in grown["servers"].items() if n in shrunk["servers"]} == shrunk["servers"]
    for name in ("day2-worker-2", "day2-worker-3"):
        check_new_server(admin, sent, name)
    for kind in ("floating_ips", "security_groups", "server_groups"):
        assert grown[kind] == shrunk[kind]

    # Roll one worker: a new server replaces it, the old one is gone, the journal removed.
    sent.clear()
    code, out, err = run(capsys, ["roll", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "day2",
                                  "--state-dir", str(state), "--nodes", "worker-1", "--wait", "active",
                                  "--output", "json"])
    assert code == 0, err
    result = json.loads(out)
    assert result["image"] == "fake-raw"
    assert [(r["old"], r["new"]) for r in result["replaced"]] == [("day2-worker-1", "day2-worker-4")]
    assert result["plan"] == [
        "1. boot server day2-worker-4 (worker) to replace server day2-worker-1, and wait until ACTIVE "
        "(--wait active: the swarm is not asked)", f"2. delete server day2-worker-1 {NOT_ASKED}"]
    rolled = inventory(user, "day2")
    old = grown["servers"]["day2-worker-1"]
    assert sorted(rolled["servers"]) == sorted(set(grown["servers"]) - {"day2-worker-1"} | {"day2-worker-4"})
    assert {n: i for n, i in rolled["servers"].items() if n != "day2-worker-4"} == without(grown, old)["servers"]
    check_new_server(admin, sent, "day2-worker-4")
    assert not (state / "day2" / "roll.json").exists()
    assert any("--wait active: the swarm is not asked" in n for n in result["notes"])

    assert (state / "day2" / "openstack.json").exists()
    code, _, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "day2",
                                "--state-dir", str(state)])
    assert code == 0, err
    assert not (state / "day2" / "openstack.json").exists()
    gone = inventory(user, "day2")
    assert gone["servers"] == {} and gone["floating_ips"] == {} and gone["server_groups"] == {}
    assert list(gone["security_groups"].values()) == ["default"]
    assert all(name == "" or not name.startswith("day2-") for name, _ in gone["ports"].values())
