"""`bakery up --provider openstack` on the HTTP-level fake cloud: only what the test cloud cannot show
(an injected quota refusal half-way, a server in ERROR with a fault, the seed that must not form again).
Ports, rules, user_data, re-runs and `down` are tested against the real services: test_cloud_up.py."""

from __future__ import annotations

import base64

import pytest
from testkit.fakecloud import connect

from bakery import config
from bakery.errors import CloudError
from bakery.providers.openstack import up as ou

OPTS = ou.UpOptions(cluster="prod", flavor="m1.small", image="debian-12", network="private",
                    operator_cidr="198.51.100.0/24", managers=1, workers=1, poll=1)


def run_up(cloud, clock, tmp_path, opts=OPTS):
    cloud.default_statuses = ["BUILD", "ACTIVE"]
    return ou.up(connect(), opts, config.build({}), tmp_path / "state", lambda m: None, clock)


def test_partial_failure_then_rerun_completes(cloud, clock, tmp_path):
    cloud.fail("POST", "/v2.1/servers", 403, "Quota exceeded for instances: Requested 1, but already used 5 of 5")
    with pytest.raises(CloudError, match="booting prod-seed: quota exceeded"):
        run_up(cloud, clock, tmp_path)
    cloud.failures.clear()
    ids = run_up(cloud, clock, tmp_path)
    assert len(ids.servers) == 2 and len(cloud.neutron["ports"]) == 1 and len(cloud.server_groups) == 1


def test_server_in_error_is_reported_with_its_fault(cloud, clock, tmp_path):
    cloud.default_statuses = ["BUILD", "ERROR"]
    with pytest.raises(CloudError, match="went to ERROR: No valid host was found.*smaller flavor"):
        ou.up(connect(), OPTS, config.build({}), tmp_path / "state", lambda m: None, clock)


def _join_json(server_body: dict) -> dict:
    import json

    from testkit.render_util import cloud_config_parts, written_files

    files = written_files(cloud_config_parts(base64.b64decode(server_body["user_data"]))[0])
    return json.loads(files["/etc/bakery/join.json"]["content"])


def test_only_the_seed_of_a_new_cluster_forms_the_swarm(cloud, clock, tmp_path):
    """No second swarm: a seed booted again beside running managers is rendered to join them."""
    opts = ou.UpOptions(**{**OPTS.__dict__, "managers": 2})
    run_up(cloud, clock, tmp_path, opts)
    first = {b["server"]["name"]: _join_json(b["server"]) for b in cloud.bodies("POST", "/v2.1/servers")}
    assert first["prod-seed"]["form"] is True
    assert "form" not in first["prod-manager-1"] and "form" not in first["prod-worker-1"]
    seed = next(s for s in cloud.servers.values() if s["name"] == "prod-seed")
    seed["_deleted"] = True  # the seed is gone; prod-manager-1 still runs the swarm
    run_up(cloud, clock, tmp_path, opts)
    again = cloud.bodies("POST", "/v2.1/servers")[3:]
    assert [b["server"]["name"] for b in again] == ["prod-seed"]
    assert _join_json(again[0]["server"])["form"] is False


def test_every_node_knows_the_managers_so_a_rebuilt_seed_can_rejoin(cloud, clock, tmp_path):
    """The managers get their ports (and fixed IPs) before any user-data is rendered: the seed's names
    them, and a seed booted again beside the running managers fetches its token from them."""
    opts = ou.UpOptions(**{**OPTS.__dict__, "managers": 3})
    run_up(cloud, clock, tmp_path, opts)
    ports = {p["name"]: p for p in cloud.neutron["ports"].values()}
    ips = {n: ports[n]["fixed_ips"][0]["ip_address"] for n in ("prod-seed", "prod-manager-1", "prod-manager-2")}
    assert len(set(ips.values())) == 3 and all(ports[n]["tags"] == ["bakery.cluster=prod"] for n in ips)
    bodies = {b["server"]["name"]: b["server"] for b in cloud.bodies("POST", "/v2.1/servers")}
    managers = [ips["prod-manager-1"], ips["prod-manager-2"]]
    for name in ("prod-manager-1", "prod-manager-2"):
        assert bodies[name]["networks"] == [{"port": ports[name]["id"]}]
        assert sorted(ports[name]["security_groups"]) == ["secu-0001", "secu-0002"]  # nodes, managers
        others = [ips["prod-seed"], *[m for m in managers if m != ips[name]]]
        assert _join_json(bodies[name])["endpoints"] == others  # never itself
    assert _join_json(bodies["prod-worker-1"])["endpoints"] == [ips["prod-seed"], *managers]
    seed = _join_json(bodies["prod-seed"])
    assert seed["form"] is True and seed["endpoints"] == [ips["prod-seed"], *managers]

    next(s for s in cloud.servers.values() if s["name"] == "prod-seed")["_deleted"] = True
    run_up(cloud, clock, tmp_path, opts)
    (again,) = [b["server"] for b in cloud.bodies("POST", "/v2.1/servers")[4:]]
    rebuilt = _join_json(again)
    assert again["name"] == "prod-seed" and rebuilt["form"] is False
    assert rebuilt["endpoints"] == [ips["prod-seed"], *managers]  # the managers it rejoins through
    assert len(cloud.neutron["ports"]) == 3  # every port found again, none duplicated
