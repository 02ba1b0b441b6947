"""`bakery up --lb` against the test cloud's real Octavia (API and worker with noop amphora and compute
drivers; VIPs are real Neutron ports: testkit/oscloud.py) and real Neutron: the load balancer in front of
the managers' Docker API, read back from Octavia and Neutron, a re-run that changes nothing, and `down`
removing it with its VIP port and floating IP. A cloud whose catalog has no load-balancer service is
refused before anything is created."""

from __future__ import annotations

import json

import pytest
from testkit.osbakery import OPERATOR, project_objects, run, servers_of, up_argv

pytestmark = pytest.mark.openstack

TAG = "bakery.cluster=lab9"


def octavia_objects(user) -> dict[str, list]:
    lb = user.load_balancer
    return {"loadbalancers": sorted(x.id for x in lb.load_balancers()),
            "listeners": sorted(x.id for x in lb.listeners()),
            "pools": sorted(x.id for x in lb.pools()),
            "healthmonitors": sorted(x.id for x in lb.health_monitors())}


def test_lb_in_front_of_the_managers_then_down_removes_it(os_env, admin, user, clean, capsys, tmp_path):
    before = project_objects(user)
    state = tmp_path / "state"
    code, out, err = run(capsys, up_argv("lab9", state, "--managers", "3", "--workers", "0", "--lb"))
    assert code == 0, err
    result = json.loads(out)
    lb = user.load_balancer
    (balancer,) = [b for b in lb.load_balancers() if b.name == "bakery-lab9-api"]
    assert TAG in balancer.tags and balancer.provisioning_status == "ACTIVE"
    (subnet,) = list(user.network.subnets(name="private-subnet"))
    assert balancer.vip_subnet_id == subnet.id and result["lb_vip"] == balancer.vip_address
    vip_port = user.network.get_port(balancer.vip_port_id)  # a real Neutron port on the tenant subnet
    assert vip_port.fixed_ips[0]["ip_address"] == balancer.vip_address

    (listener,) = list(lb.listeners())
    assert [b["id"] for b in listener.load_balancers] == [balancer.id]
    assert (listener.protocol, listener.protocol_port, listener.allowed_cidrs) == ("TCP", 2376, [OPERATOR])
    (pool,) = list(lb.pools())
    assert (pool.protocol, pool.lb_algorithm) == ("TCP", "ROUND_ROBIN")
    assert [x["id"] for x in pool.listeners] == [listener.id]
    (monitor,) = list(lb.health_monitors())
    assert monitor.type == "TCP" and [p["id"] for p in monitor.pools] == [pool.id]
    servers = servers_of(admin, "lab9")
    want = sorted((name, s.addresses["private"][0]["addr"], 2376) for name, s in servers.items())
    members = sorted((m.name, m.address, m.protocol_port) for m in lb.members(pool))
    assert members == want and len(members) == 3
    assert all(TAG in x.tags for x in (listener, pool, monitor, *lb.members(pool)))

    # The VIP's floating IP comes from the external network and is the API address every certificate names.
    (fip,) = [ip for ip in user.network.ips() if ip.port_id == balancer.vip_port_id]
    public = user.network.find_network("public", ignore_missing=False)
    assert fip.floating_network_id == public.id and result["lb_floating_ip"] == fip.floating_ip_address
    for node in ("lab9-seed", "lab9-manager-1", "lab9-manager-2"):
        sans = json.loads((state / "lab9" / "nodes" / node / "meta.json").read_text())["sans"]
        assert {balancer.vip_address, fip.floating_ip_address} <= set(sans), (node, sans)
    # The amphorae reach the members from the subnet; the listener admits only the operator.
    rules = sorted((r.port_range_min, r.remote_ip_prefix) for r in user.network.security_group_rules()
                   if r.port_range_min == 2376)
    assert rules == sorted([(2376, OPERATOR), (2376, subnet.cidr)])

    # A re-run changes nothing in Octavia.
    octavia_before = octavia_objects(user)
    code, out, err = run(capsys, up_argv("lab9", state, "--managers", "3", "--workers", "0", "--lb"))
    assert code == 0, err
    assert octavia_objects(user) == octavia_before and json.loads(out)["restored"] == []

    # What went missing by hand is put back by a re-run, --lb or not: the balancer's health monitor and a
    # member, its floating IP, the seed's floating IP and the operator's 2376 rule.
    lb.delete_health_monitor(monitor.id)
    lb.wait_for_load_balancer(balancer.id, status="ACTIVE", wait=120)
    gone = next(m for m in lb.members(pool) if m.name == "lab9-manager-2")
    lb.delete_member(gone.id, pool.id)
    lb.wait_for_load_balancer(balancer.id, status="ACTIVE", wait=120)
    seed_port = next(p for p in user.network.ports() if p.name == "lab9-seed")
    seed_fip = next(ip for ip in user.network.ips() if ip.port_id == seed_port.id)
    user.network.delete_ip(fip.id)
    user.network.delete_ip(seed_fip.id)
    (rule,) = [r for r in user.network.security_group_rules() if r.port_range_min == 2376
               and r.remote_ip_prefix == OPERATOR]
    user.network.delete_security_group_rule(rule.id)
    code, out, err = run(capsys, up_argv("lab9", state, "--managers", "3", "--workers", "0"))
    assert code == 0, err
    restored = json.loads(out)["restored"]
    assert len(restored) == 5 and any(f"from {OPERATOR}" in r for r in restored), restored
    assert sorted(r.split()[0] for r in restored) == ["floating", "floating", "health", "member", "rule"], restored
    (monitor,) = list(lb.health_monitors())
    assert [p["id"] for p in monitor.pools] == [pool.id]
    assert sorted((m.name, m.address, m.protocol_port) for m in lb.members(pool)) == want
    (fip,) = [ip for ip in user.network.ips() if ip.port_id == balancer.vip_port_id]
    assert [ip.port_id for ip in user.network.ips() if ip.port_id == seed_port.id] == [seed_port.id]
    assert sorted((r.port_range_min, r.remote_ip_prefix) for r in user.network.security_group_rules()
                  if r.port_range_min == 2376) == sorted([(2376, OPERATOR), (2376, subnet.cidr)])
    # `bakery certs` names the balancer's floating IP as it is now (the restored one, a new address).
    code, out, err = run(capsys, ["certs", "--cluster", "lab9", "--state-dir", str(state)])
    assert code == 0 and f"DOCKER_HOST=tcp://{fip.floating_ip_address}:2376" in out, out + err

    # The listener deleted by hand (Octavia keeps the pool, detached): the new listener gets that pool.
    lb.delete_listener(listener.id)
    lb.wait_for_load_balancer(balancer.id, status="ACTIVE", wait=120)
    # A floating IP left untagged (a run killed between create and tag) is adopted, not doubled.
    user.network.set_tags(fip, [])
    code, out, err = run(capsys, up_argv("lab9", state, "--managers", "3", "--workers", "0"))
    assert code == 0, err
    (listener,) = list(lb.listeners())
    assert listener.default_pool_id == pool.id and listener.allowed_cidrs == [OPERATOR]
    assert [ip.tags for ip in user.network.ips() if ip.port_id == balancer.vip_port_id] == [[TAG]]

    # Another --operator-cidr: the old range loses the API, in Neutron and in the listener; a 2376 rule the
    # user added to bakery's group for a range of their own stays.
    other_cidr = "203.0.113.9/32"
    managers_sg = next(g for g in user.network.security_groups() if g.name == "bakery-lab9-managers")
    theirs = user.network.create_security_group_rule(
        security_group_id=managers_sg.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=2376, port_range_max=2376, remote_ip_prefix="192.0.2.0/24")
    code, out, err = run(capsys, up_argv("lab9", state, "--managers", "3", "--workers", "0",
                                         "--operator-cidr", other_cidr))
    assert code == 0, err
    result = json.loads(out)
    assert result["removed"] == [f"rule tcp/2376-2376 from {OPERATOR} in bakery-lab9-managers (the last up's "
                                 "--operator-cidr)"], result
    assert sorted((r.port_range_min, r.remote_ip_prefix) for r in user.network.security_group_rules()
                  if r.port_range_min == 2376) == sorted([(2376, other_cidr), (2376, subnet.cidr),
                                                          (2376, "192.0.2.0/24")])
    user.network.delete_security_group_rule(theirs.id)
    (listener,) = list(lb.listeners())
    assert listener.allowed_cidrs == [other_cidr]
    # An untagged floating IP on the seed's port (a kill before its tag): `down` removes it too.
    user.network.set_tags(next(ip for ip in user.network.ips() if ip.port_id == seed_port.id), [])

    # Another cluster's balancer of the same name, and a floating IP nobody tagged, survive `down`.
    other = lb.create_load_balancer(name="bakery-lab9-api", vip_subnet_id=subnet.id, tags=["bakery.cluster=staging"])
    lb.wait_for_load_balancer(other.id, status="ACTIVE", wait=120)
    stranger = user.network.create_ip(floating_network_id=public.id)
    code, out, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "lab9"])
    assert code == 0, err
    assert [b.id for b in lb.load_balancers()] == [other.id]
    assert balancer.vip_port_id not in {p.id for p in user.network.ports()}
    assert [ip.id for ip in user.network.ips()] == [stranger.id]
    lb.delete_load_balancer(other.id, cascade=True)
    lb.wait_for_delete(lb.get_load_balancer(other.id), wait=120)
    user.network.delete_ip(stranger.id)
    assert project_objects(user) == before


def test_lb_without_octavia_in_the_catalog_is_refused_before_anything_is_created(os_env, admin, user, clean,
                                                                                 capsys, tmp_path):
    """The load-balancer service's endpoints disabled in Keystone: a cloud without Octavia, as bakery sees it."""
    before = project_objects(user)  # the test's own connection authenticated with Octavia in its catalog
    (service,) = list(admin.identity.services(type="load-balancer"))
    endpoints = list(admin.identity.endpoints(service_id=service.id))
    for e in endpoints:
        admin.identity.update_endpoint(e, is_enabled=False)
    try:
        code, _, err = run(capsys, up_argv("lab3", tmp_path / "state", "--managers", "1", "--workers", "0", "--lb"))
        assert code == 2
        assert err.strip().splitlines() == [
            "bakery up: error: --lb needs Octavia (the load-balancer service), and this cloud's catalog has none "
            "(drop --lb and reach the seed's floating IP instead (--floating-ip), or use a cloud with Octavia)"]
        assert project_objects(user) == before
    finally:
        for e in endpoints:
            admin.identity.update_endpoint(e, is_enabled=True)
