"""`bakery up --provider openstack` extras on the fake cloud: floating IPs, keypair import, Octavia, quota, errors."""

from __future__ import annotations

import base64
import dataclasses
import gzip

import pytest
from testkit.fakecloud import connect

from bakery import config
from bakery.errors import CloudError, UserError
from bakery.providers.openstack import access
from bakery.providers.openstack import up as ou

OPTS = ou.UpOptions(cluster="prod", flavor="m1.small", image="debian-12", network="private",
                    operator_cidr="198.51.100.0/24", managers=1, workers=1, poll=1)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBakeryTestKeyOnlyForTheFakeCloud0000000000 op@laptop"
TAG = "bakery.cluster=prod"


def run_up(cloud, clock, tmp_path, **over):
    cloud.default_statuses = ["BUILD", "ACTIVE"]
    opts = dataclasses.replace(OPTS, **over)
    return ou.up(connect(), opts, config.build({}), tmp_path / "state", lambda m: None, clock)


def writes(cloud):
    return [c for c in cloud.calls() if not c.startswith("GET")]


def userdata_text(body):
    raw = base64.b64decode(body["user_data"])
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()


def sans_of(tmp_path, node):
    import json

    return json.loads((tmp_path / "state" / "prod" / "nodes" / node / "meta.json").read_text())["sans"]


def test_floating_ip_network_must_be_external(cloud, clock, tmp_path):
    with pytest.raises(UserError, match=r"network 'private' is not external.*pass --floating-ip with the cloud"):
        run_up(cloud, clock, tmp_path, floating_network="private")
    assert writes(cloud) == []


def test_existing_keypair_with_same_key_is_used_but_never_deleted(cloud, clock, tmp_path):
    cloud.keypairs["mine"] = {"name": "mine", "public_key": KEY, "fingerprint": "aa", "type": "ssh"}
    run_up(cloud, clock, tmp_path, public_key=KEY, key_name="mine")
    assert cloud.bodies("POST", "/v2.1/os-keypairs") == []
    assert ou.down(connect(), "prod", lambda m: None, clock) == []
    assert "mine" in cloud.keypairs


def test_existing_keypair_with_another_key_is_refused(cloud, clock, tmp_path):
    cloud.keypairs["bakery-prod"] = {"name": "bakery-prod", "public_key": "ssh-rsa AAAAother x", "type": "ssh"}
    with pytest.raises(UserError, match="keypair 'bakery-prod' already exists with another key"):
        run_up(cloud, clock, tmp_path, public_key=KEY)


@pytest.mark.parametrize("content, message", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
     "is a private key; it must never leave this machine"),
    ("hello\n", "is not an OpenSSH public key"),
])
def test_public_key_file_is_checked_without_echoing_it(tmp_path, content, message):
    path = tmp_path / "id"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        access.read_public_key(path)
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in str(err.value)


def test_load_balancer_in_front_of_the_managers(cloud, clock, tmp_path):
    cloud.network("public", "net-public", external=True)
    result = run_up(cloud, clock, tmp_path, lb=True, floating_network="public", managers=3, workers=0)
    (lb,) = cloud.octavia["loadbalancers"].values()
    assert lb["name"] == "bakery-prod-api" and lb["vip_subnet_id"] == "sub-1" and lb["tags"] == [TAG]
    assert result.lb_vip == "10.0.0.250"
    (listener,) = cloud.octavia["listeners"].values()
    assert (listener["protocol"], listener["protocol_port"], listener["allowed_cidrs"]) == \
        ("TCP", 2376, ["198.51.100.0/24"])
    (pool,) = cloud.octavia["pools"].values()
    assert (pool["protocol"], pool["listener_id"], pool["lb_algorithm"]) == ("TCP", listener["id"], "ROUND_ROBIN")
    (hm,) = cloud.octavia["healthmonitors"].values()
    assert (hm["type"], hm["pool_id"]) == ("TCP", pool["id"])
    members = sorted((m["name"], m["address"], m["protocol_port"]) for m in cloud.octavia["members"].values())
    assert members == [("prod-manager-1", "10.0.0.11", 2376), ("prod-manager-2", "10.0.0.12", 2376),
                       ("prod-seed", "10.0.0.10", 2376)]
    assert all(x["tags"] == [TAG] for k in ("listeners", "pools", "healthmonitors", "members")
               for x in cloud.octavia[k].values())
    # the VIP and its floating IP exist before rendering, so every manager's certificate names them
    vip_fip = next(f for f in cloud.neutron["floatingips"].values() if f["port_id"] == lb["vip_port_id"])
    assert result.api_address == vip_fip["floating_ip_address"] and result.lb_floating_ip == result.api_address
    for node in ("prod-seed", "prod-manager-1"):
        assert {"10.0.0.250", vip_fip["floating_ip_address"]} <= set(sans_of(tmp_path, node))
    # the amphorae reach the members from the subnet; the listener admits only the operator's CIDR
    rules = [(r["port_range_min"], r["remote_ip_prefix"]) for r in cloud.neutron["security-group-rules"].values()
             if r["port_range_min"] == 2376]
    assert sorted(rules) == [(2376, "10.0.0.0/24"), (2376, "198.51.100.0/24")]
    # Octavia is immutable while PENDING_*: every create waited for ACTIVE (the fake answers 409 otherwise)
    lb_writes = [c for c in writes(cloud) if c.startswith("POST /v2.0/lbaas")]
    assert [c.split("/")[3] for c in lb_writes] == ["loadbalancers", "listeners", "pools", "healthmonitors",
                                                    "pools", "pools", "pools"]
    before = len(cloud.m.request_history)
    run_up(cloud, clock, tmp_path, lb=True, floating_network="public", managers=3, workers=0)
    assert not [c for c in cloud.calls()[-(len(cloud.m.request_history) - before):] if not c.startswith("GET")]


def test_down_removes_tagged_extras_only(cloud, clock, tmp_path):
    cloud.network("public", "net-public", external=True)
    run_up(cloud, clock, tmp_path, lb=True, floating_network="public", public_key=KEY)
    conn = connect()
    stranger_ip = conn.network.create_ip(floating_network_id="net-public")
    other_lb = conn.load_balancer.create_load_balancer(name="bakery-prod-api", vip_subnet_id="sub-1",
                                                       tags=["bakery.cluster=staging"])
    cloud.keypairs["bakery-staging"] = {"name": "bakery-staging", "public_key": KEY, "type": "ssh"}
    cloud.octavia["loadbalancers"][other_lb.id]["_pending"] = 0
    cloud.default_statuses = ["ACTIVE"]
    assert ou.down(conn, "prod", lambda m: None, clock) == []
    assert list(cloud.neutron["floatingips"]) == [stranger_ip.id]
    assert list(cloud.octavia["loadbalancers"]) == [other_lb.id]
    assert list(cloud.keypairs) == ["bakery-staging"]
    deletes = [c.split()[1].split("/")[-2] for c in cloud.calls() if c.startswith("DELETE")]
    assert deletes == ["floatingips", "floatingips", "loadbalancers", "servers", "servers", "ports",
                       "os-server-groups", "os-keypairs", "security-groups", "security-groups"]  # no consul group
    lb_calls = [c for c in cloud.calls() if "/lbaas/loadbalancers/" in c]
    mine = next(i for i in cloud.m.request_history if i.method == "POST" and "loadbalancers" in i.url).json()
    assert mine["loadbalancer"]["tags"] == [TAG]
    lb_id = lb_calls[-3].split("/")[-1].split("?")[0]
    assert lb_id != other_lb.id
    assert lb_calls[-3:] == [f"DELETE /v2.0/lbaas/loadbalancers/{lb_id}?cascade=True"] + \
        [f"GET /v2.0/lbaas/loadbalancers/{lb_id}"] * 2  # PENDING_DELETE, then gone: waited for


def test_quota_is_checked_before_anything_is_created(cloud, clock, tmp_path):
    cloud.limits.update(maxTotalInstances=10, totalInstancesUsed=9, maxTotalCores=20, totalCoresUsed=19)
    with pytest.raises(CloudError) as err:
        run_up(cloud, clock, tmp_path, managers=3, workers=2)
    text = str(err.value)
    assert text.startswith("quota exceeded: 5 server(s) of flavor m1.small need 5 instances (used 9 of 10), "
                           "5 vCPUs (used 19 of 20) (")
    assert "RAM" not in text and "\n" not in text and "openstack quota show" in text
    assert writes(cloud) == []


def test_quota_counts_only_servers_still_missing(cloud, clock, tmp_path):
    run_up(cloud, clock, tmp_path)
    cloud.limits.update(maxTotalInstances=2, totalInstancesUsed=2)
    run_up(cloud, clock, tmp_path)  # nothing to boot: no quota needed


def test_quota_error_from_neutron_is_one_clear_message(cloud, clock, tmp_path):
    cloud.fail("POST", "/v2.0/security-groups", 409, "Quota exceeded for resources: ['security_group'].")
    with pytest.raises(CloudError) as err:
        run_up(cloud, clock, tmp_path)
    assert str(err.value).startswith("creating security group bakery-prod-nodes: quota exceeded: Quota exceeded "
                                     "for resources: ['security_group'].")


@pytest.mark.parametrize("field, value, expected", [
    ("flavor", "m1.huge", "flavor 'm1.huge' does not exist on this cloud (available: m1.large, m1.small) "
                          "(pass --flavor with one of them)"),
    ("image", "centos", "image 'centos' does not exist on this cloud (available: debian-12) "
                        "(pass --image with one of them)"),
    ("image", "half-baked", "image 'half-baked' is saving, not active: servers cannot boot from it"),
    ("network", "public", "network 'public' does not exist on this cloud (available: private) "
                          "(pass --network with one of them)"),
    ("network", "bare", "network 'bare' has no subnet: servers on it would get no address"),
])
def test_flavor_image_network_errors_before_anything_is_created(cloud, clock, tmp_path, field, value, expected):
    cloud.image("half-baked", "img-half", status="saving")
    if value == "bare":
        cloud.network("bare", "net-bare")
        cloud.neutron["networks"]["net-bare"]["subnets"] = []
    with pytest.raises(UserError) as err:
        run_up(cloud, clock, tmp_path, **{field: value})
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)
    assert writes(cloud) == []


def test_a_manager_roll_keeps_the_load_balancers_pool_on_the_live_managers(cloud, clock, tmp_path):
    """Day two with --lb: the replacement manager joins the pool, the old one leaves it before it is deleted
    (after a full manager roll the front would otherwise have no live member)."""
    from bakery import fleet
    from bakery.providers.openstack import daytwo

    cloud.network("public", "net-public", external=True)
    opts = dataclasses.replace(OPTS, lb=True, floating_network="public", managers=3, workers=0)
    run_up(cloud, clock, tmp_path, lb=True, floating_network="public", managers=3, workers=0)
    cloud.default_statuses = ["ACTIVE"]  # the replacement is ACTIVE at once (listings do not step statuses)
    said: list[str] = []
    d = daytwo.OpenStackDriver(connect(), opts, config.build({}), tmp_path / "state", said.append, asked=False,
                               clock=clock)
    plan = fleet.plan_roll(d.members(), ["manager-1"], d.limit)
    fleet.run_plan(d, plan, said.append, fleet.Timeouts(ready=60, drain=5, step=5))
    members = sorted((m["name"], m["address"]) for m in cloud.octavia["members"].values())
    assert [n for n, _ in members] == ["prod-manager-2", "prod-manager-3", "prod-seed"]
    assert "10.0.0.11" not in [a for _, a in members]  # manager-1's fixed IP left the pool
    assert any("prod-manager-3" in line and "added to the pool" in line for line in said)
    assert any("prod-manager-1" in line and "taken out of the pool" in line for line in said)
