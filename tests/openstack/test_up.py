"""`bakery up/down --provider openstack` on the fake cloud: exact ports, requests, convergence, tagged-only down."""

from __future__ import annotations

import base64
import gzip

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


def rules_of(cloud):
    names = {sg["id"]: sg["name"] for sg in cloud.neutron["security-groups"].values()}
    return sorted((names[r["security_group_id"]], r["protocol"], r["port_range_min"],
                   names.get(r.get("remote_group_id")), r.get("remote_ip_prefix"))
                  for r in cloud.neutron["security-group-rules"].values())


def test_exactly_the_swarm_ports(cloud, clock, tmp_path):
    run_up(cloud, clock, tmp_path)
    assert rules_of(cloud) == [
        ("bakery-prod-consul", "tcp", 8300, "bakery-prod-nodes", None),
        ("bakery-prod-consul", "tcp", 8301, "bakery-prod-nodes", None),
        ("bakery-prod-consul", "udp", 8301, "bakery-prod-nodes", None),
        ("bakery-prod-managers", "tcp", 2376, None, "198.51.100.0/24"),
        ("bakery-prod-managers", "tcp", 2377, "bakery-prod-managers", None),
        ("bakery-prod-managers", "tcp", 2378, "bakery-prod-nodes", None),
        ("bakery-prod-nodes", "tcp", 7946, "bakery-prod-nodes", None),
        ("bakery-prod-nodes", "udp", 4789, "bakery-prod-nodes", None),
        ("bakery-prod-nodes", "udp", 7946, "bakery-prod-nodes", None),
    ]
    assert all(r["direction"] == "ingress" for r in cloud.neutron["security-group-rules"].values())


def test_up_requests_seed_port_first_and_user_data_knows_its_ip(cloud, clock, tmp_path):
    ids = run_up(cloud, clock, tmp_path)
    writes = [c for c in cloud.calls() if not c.startswith("GET")]
    assert writes[:3] == ["POST /v2.0/security-groups", "PUT /v2.0/security-groups/secu-0001/tags",
                          "POST /v2.0/security-groups"]
    assert writes[-5:] == ["POST /v2.1/os-server-groups", "POST /v2.0/ports",
                           "PUT /v2.0/ports/port-0014/tags", "POST /v2.1/servers", "POST /v2.1/servers"]
    port = cloud.neutron["ports"]["port-0014"]
    assert port["tags"] == ["bakery.cluster=prod"] and port["name"] == "prod-seed"
    assert sorted(port["security_groups"]) == ["secu-0001", "secu-0002"]  # nodes, managers
    seed, worker = (b["server"] for b in cloud.bodies("POST", "/v2.1/servers"))
    assert seed["networks"] == [{"port": "port-0014"}] and worker["networks"] == [{"uuid": "net-private"}]
    assert worker["security_groups"] == [{"name": "bakery-prod-nodes"}]
    hints = cloud.bodies("POST", "/v2.1/servers")[0]["OS-SCH-HNT:scheduler_hints"]
    assert hints == {"group": "sg-0013"}
    group = cloud.server_groups["sg-0013"]
    assert group.get("policy") == "anti-affinity" or group.get("policies") == ["anti-affinity"]
    userdata = base64.b64decode(worker["user_data"])
    text = (gzip.decompress(userdata) if userdata[:2] == b"\x1f\x8b" else userdata).decode()
    assert '"seed": "10.0.0.10"' in text
    assert seed["metadata"] == {"bakery.cluster": "prod", "bakery.role": "seed"}
    assert set(ids.servers) == {"prod-seed", "prod-worker-1"} and ids.seed_address == "10.0.0.10"


def test_rerun_converges_instead_of_duplicating(cloud, clock, tmp_path):
    run_up(cloud, clock, tmp_path)
    before = len(cloud.m.request_history)
    run_up(cloud, clock, tmp_path)
    again = cloud.calls()[-(len(cloud.m.request_history) - before):]
    assert not [c for c in again if not c.startswith("GET")]
    assert len(cloud.servers) == 2 and len(cloud.neutron["security-groups"]) == 3


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


def test_down_deletes_only_what_is_tagged(cloud, clock, tmp_path):
    run_up(cloud, clock, tmp_path)
    conn = connect()
    other = conn.compute.create_server(name="db", image_id="i", flavor_id="f", networks=[],
                                       metadata={"bakery.cluster": "staging"})
    plain = conn.compute.create_server(name="web", image_id="i", flavor_id="f", networks=[])
    lookalike = conn.network.create_security_group(name="bakery-prod-nodes")  # same name, no tag
    stranger = conn.network.create_port(name="prod-seed", network_id="net-private")
    cloud.default_statuses = ["ACTIVE"]
    assert ou.down(conn, "prod", lambda m: None, clock) == []
    alive = {i for i, s in cloud.servers.items() if not s.get("_deleted")}
    assert alive == {other.id, plain.id}
    assert list(cloud.neutron["security-groups"]) == [lookalike.id]
    assert list(cloud.neutron["ports"]) == [stranger.id]
    assert cloud.server_groups == {}
    deletes = [c.split()[1].rsplit("/", 2)[-2] for c in cloud.calls() if c.startswith("DELETE")]
    assert deletes == ["servers", "servers", "ports", "os-server-groups",
                       "security-groups", "security-groups", "security-groups"]
    assert ou.down(conn, "prod", lambda m: None, clock) == []


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
