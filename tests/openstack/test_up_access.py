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


def test_quota_error_from_neutron_is_one_clear_message(cloud, clock, tmp_path):
    cloud.fail("POST", "/v2.0/security-groups", 409, "Quota exceeded for resources: ['security_group'].")
    with pytest.raises(CloudError) as err:
        run_up(cloud, clock, tmp_path)
    assert str(err.value).startswith("creating security group bakery-prod-nodes: quota exceeded: Quota exceeded "
                                     "for resources: ['security_group'].")


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


def test_the_network_quota_counts_the_vip_port_of_a_load_balancer_still_missing(cloud, clock, tmp_path):
    """Octavia makes the VIP port in the project: a project with room for exactly the servers' ports
    failed half-way (Octavia's 500 from Neutron's 409); the check counts it, and only until the LB exists."""
    cloud.network("public", "net-public", external=True)
    opts = dataclasses.replace(OPTS, managers=3, workers=0, lb=True, floating_network="public")
    assert ou.network_needs(connect(), opts, config.build({}), {})["ports"] == 3 + 1
    assert ou.network_needs(connect(), dataclasses.replace(opts, lb=False), config.build({}), {})["ports"] == 3
    run_up(cloud, clock, tmp_path, managers=3, workers=0, lb=True, floating_network="public")
    assert ou.network_needs(connect(), opts, config.build({}), {"prod-seed": 1, "prod-manager-1": 1,
                                                                 "prod-manager-2": 1})["ports"] == 0
