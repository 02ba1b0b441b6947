"""A live cluster whose seed server went to ERROR, on the HTTP-level fake cloud (the test cloud's fake virt
driver cannot put a running server in ERROR): `up` deletes it the way a retire does, so nothing of it is
left: its port, its floating IP (moved to a manager, it is in every manager's certificate) and its manager
entry in the swarm (demoted and removed, else raft keeps counting it)."""

from __future__ import annotations

import pytest
from testkit.fakecloud import connect

from bakery import config, fleet
from bakery.errors import UserError
from bakery.providers.openstack import daytwo
from bakery.providers.openstack import up as ou

OPTS = ou.UpOptions(cluster="prod", flavor="m1.small", image="debian-12", network="private",
                    operator_cidr="198.51.100.0/24", managers=3, workers=0, poll=1, floating_network="public")


class Api:
    """A manager's Engine API: the swarm lists the seed Down (its server is in ERROR), two managers Ready."""

    def __init__(self) -> None:
        def manager(ident: str, host: str, state: str, reach: str) -> dict:
            return {"ID": ident, "Description": {"Hostname": host}, "Status": {"State": state},
                    "Spec": {"Availability": "active", "Role": "manager"},
                    "ManagerStatus": {"Leader": ident == "m1", "Reachability": reach}}

        self._nodes = [manager("s", "prod-seed", "down", "unreachable"), manager("m1", "prod-manager-1", "ready",
                       "reachable"), manager("m2", "prod-manager-2", "ready", "reachable")]
        self.calls: list[tuple[str, str]] = []

    def nodes(self):
        return self._nodes

    def inspect_node(self, ident):
        return next(n for n in self._nodes if n["ID"] == ident) | {"Version": {"Index": 1}}

    def update_node(self, ident, version, spec):
        self.calls.append(("role", spec["Role"]) if spec.get("Role") == "worker" else ("update", ident))
        for n in self._nodes:
            if n["ID"] == ident and spec.get("Role") == "worker":
                n.pop("ManagerStatus", None)
                n["Spec"]["Role"] = "worker"

    def remove_node(self, ident, force=False):
        self.calls.append(("rm", ident))
        self._nodes = [n for n in self._nodes if n["ID"] != ident]

    def services(self):
        return []

    def tasks(self, filters=None):
        return []


def _cluster(cloud, clock, tmp_path):
    """prod made by `up`: three managers, the seed's floating IP from `public`; its state dir."""
    cloud.network("public", "net-public", external=True)
    cloud.default_statuses = ["BUILD", "ACTIVE"]
    state = tmp_path / "state"
    ou.up(connect(), OPTS, config.build({}), state, lambda m: None, clock)
    return state


def _converge_to_a_new_manager(state, clock) -> tuple[Api, list[str]]:
    """A re-run of `up` that retires the seed and boots manager-3 (which the fake never makes Ready)."""
    from types import SimpleNamespace

    api = Api()
    said: list[str] = []
    driver = daytwo.OpenStackDriver(connect(), OPTS, config.build({}), state, said.append, clock=clock,
                                    client_for=lambda address: SimpleNamespace(api=api))
    with pytest.raises(fleet.Stopped, match="manager-3 not Ready"):  # the fake boots nothing that joins
        daytwo.converge(driver, False, fleet.Timeouts(ready=0))
    return api, said


def test_a_seed_in_error_leaves_no_port_no_orphan_floating_ip_and_no_ghost(cloud, clock, tmp_path):

    state = _cluster(cloud, clock, tmp_path)
    ports = {p["name"]: p["id"] for p in cloud.neutron["ports"].values()}
    (fip,) = cloud.neutron["floatingips"].values()
    assert fip["port_id"] == ports["prod-seed"]
    seed = next(s for s in cloud.servers.values() if s["name"] == "prod-seed")
    cloud.server_statuses[seed["id"]] = ["ERROR"]
    api, said = _converge_to_a_new_manager(state, clock)
    assert seed.get("_deleted") and "prod-seed" not in {p["name"] for p in cloud.neutron["ports"].values()}
    (fip,) = cloud.neutron["floatingips"].values()
    assert fip["port_id"] == ports["prod-manager-1"], "the floating IP moved to a manager's port"
    assert api.calls[:2] == [("role", "worker"), ("rm", "s")], "the seed's manager entry demoted, then removed"
    assert any("prod-seed is in ERROR: deleting it" in line for line in said)


def test_lb_asked_of_a_cluster_made_without_one_is_refused_and_changes_nothing(cloud, clock, tmp_path):
    """`up --lb` re-run on a cluster made without a balancer: one made now would not be in the managers'
    certificates, so the run is refused (it was a silent no-op that recorded `lb: true`)."""
    import dataclasses

    state = _cluster(cloud, clock, tmp_path)
    before = {k: sorted(v) for k, v in cloud.neutron.items()}, sorted(cloud.servers), dict(cloud.octavia)
    driver = daytwo.OpenStackDriver(connect(), dataclasses.replace(OPTS, lb=True), config.build({}), state,
                                    lambda m: None, clock=clock, asked=False)
    with pytest.raises(UserError, match=r"cluster prod has no load balancer \(bakery-prod-api\)") as caught:
        daytwo.converge(driver, False, fleet.Timeouts(ready=0))
    assert "re-run without --lb" in caught.value.fix
    assert ({k: sorted(v) for k, v in cloud.neutron.items()}, sorted(cloud.servers), dict(cloud.octavia)) == before
    assert not (state / "prod" / "openstack.json").exists() or '"lb": true' not in (
        state / "prod" / "openstack.json").read_text()


def test_a_rerun_puts_back_a_deleted_rule_and_the_seeds_floating_ip(cloud, clock, tmp_path):
    state = _cluster(cloud, clock, tmp_path)
    rules = cloud.neutron["security-group-rules"]
    (rule_id,) = [i for i, r in rules.items() if r["port_range_min"] == 2376 and r["remote_ip_prefix"]
                  == OPTS.operator_cidr]
    group = cloud.neutron["security-groups"][rules.pop(rule_id)["security_group_id"]]
    group["security_group_rules"] = [r for r in group["security_group_rules"] if r["id"] != rule_id]
    cloud.neutron["floatingips"].clear()
    said: list[str] = []
    driver = daytwo.OpenStackDriver(connect(), OPTS, config.build({}), state, said.append, clock=clock, asked=False)
    plan, _ = daytwo.converge(driver, False, fleet.Timeouts(ready=0))
    assert not plan.changes
    assert driver.restored[0] == f"rule tcp/2376-2376 from {OPTS.operator_cidr} in bakery-prod-managers"
    assert driver.restored[1].startswith("floating IP ") and " on prod-seed (a new address" in driver.restored[1]
    assert len(driver.restored) == 2 and [f"restored: {r}" for r in driver.restored] == said[-2:]
    seed_port = next(p for p in cloud.neutron["ports"].values() if p["name"] == "prod-seed")
    assert [f["port_id"] for f in cloud.neutron["floatingips"].values()] == [seed_port["id"]]
    assert sum(r["port_range_min"] == 2376 and r["remote_ip_prefix"] == OPTS.operator_cidr
               for r in rules.values()) == 1
    daytwo.converge(driver, False, fleet.Timeouts(ready=0))
    assert driver.restored == []


def test_a_seed_whose_port_was_deleted_is_retired_and_its_floating_ip_kept(cloud, clock, tmp_path):
    """The seed's port deleted by hand (Neutron detaches its floating IP): every re-run failed with `server
    prod-seed has no fixed IPv4 address`. It is retired as one in ERROR, and the cluster's floating IP (in
    every manager's certificate) goes to a manager's port, not a new address."""

    state = _cluster(cloud, clock, tmp_path)
    ports = {p["name"]: p["id"] for p in cloud.neutron["ports"].values()}
    (fip,) = cloud.neutron["floatingips"].values()
    address = fip["floating_ip_address"]
    del cloud.neutron["ports"][ports["prod-seed"]]
    fip["port_id"] = None
    seed = next(s for s in cloud.servers.values() if s["name"] == "prod-seed")
    seed["_addresses"] = {}
    api, said = _converge_to_a_new_manager(state, clock)
    assert seed.get("_deleted")
    assert any("prod-seed lost its port (no address): deleting it" in line for line in said), said
    (fip,) = cloud.neutron["floatingips"].values()
    assert fip["floating_ip_address"] == address and fip["port_id"] == ports["prod-manager-1"]
