"""`bakery up/down --provider openstack` against the test cloud: real Keystone, Nova (fake driver, three
computes), Placement, Neutron (ML2) and Glance on loopback (testkit/oscloud.py).

Fake-driver servers run no cloud-init, so `up` runs with `--wait active` and never contacts the nodes'
addresses (they are unreachable routes on this host). What bakery sent is read back from the services
as admin: security-group rules from Neutron, the anti-affinity group and the computes the managers
landed on, user_data byte-exact, metadata, tags, floating IPs from the external network.
"""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from testkit.osbakery import OPERATOR, project_objects, public_key, run, servers_of, up_argv

pytestmark = pytest.mark.openstack

def rules_by_group(admin, pid: str, cluster: str) -> dict[str, list[tuple]]:
    groups = {sg.id: sg for sg in admin.network.security_groups(project_id=pid)}
    found: dict[str, list[tuple]] = {}
    for sg in groups.values():
        if not sg.name.startswith(f"bakery-{cluster}-"):
            continue
        found[sg.name] = sorted(
            (r["protocol"], r["port_range_min"], r["port_range_max"],
             groups[r["remote_group_id"]].name if r.get("remote_group_id") else None, r.get("remote_ip_prefix"))
            for r in admin.network.security_group_rules(security_group_id=sg.id) if r["direction"] == "ingress")
    return found


@pytest.mark.parametrize("keypair", [True, False], ids=["with-keypair", "without-keypair"])
def test_up_three_managers_two_workers(os_env, admin, user, sent, clean, capsys, tmp_path, keypair):
    extra = []
    if keypair:
        (tmp_path / "id.pub").write_text(public_key() + "\n")
        extra = ["--public-key", str(tmp_path / "id.pub")]
    code, out, err = run(capsys, up_argv("lab1", tmp_path / "state", "--managers", "3", "--workers", "2", *extra))
    assert code == 0, err
    result = json.loads(out)
    names = ["lab1-seed", "lab1-manager-1", "lab1-manager-2", "lab1-worker-1", "lab1-worker-2"]
    assert [n["name"] for n in result["nodes"]] == names
    pid = user.current_project_id

    # Security groups: exactly the swarm's ingress rules, as Neutron holds them (no consul group without --consul).
    assert rules_by_group(admin, pid, "lab1") == {
        "bakery-lab1-managers": [("tcp", 2376, 2376, None, OPERATOR),
                                 ("tcp", 2377, 2377, "bakery-lab1-managers", None),
                                 ("tcp", 2378, 2378, "bakery-lab1-nodes", None)],
        "bakery-lab1-nodes": [("tcp", 7946, 7946, "bakery-lab1-nodes", None),
                              ("udp", 4789, 4789, "bakery-lab1-nodes", None),
                              ("udp", 7946, 7946, "bakery-lab1-nodes", None)],
    }
    for sg in admin.network.security_groups(project_id=pid):
        if sg.name.startswith("bakery-lab1-"):
            assert "bakery.cluster=lab1" in sg.tags

    servers = servers_of(admin, "lab1")
    assert sorted(servers) == sorted(names)
    assert {s.status for s in servers.values()} == {"ACTIVE"}
    # Anti-affinity: one group, the three managers its members, on three different computes.
    groups = [g for g in user.compute.server_groups() if g.name == "bakery-lab1-managers"]
    assert len(groups) == 1
    group = groups[0]
    assert (group.policy or (group.policies or [None])[0]) == "anti-affinity"
    managers = ["lab1-seed", "lab1-manager-1", "lab1-manager-2"]
    assert sorted(group.member_ids) == sorted(servers[n].id for n in managers)
    assert len({servers[n].compute_host for n in managers}) == 3

    for name, server in servers.items():
        role = "seed" if name.endswith("seed") else name.split("-")[1]
        assert server.metadata == {"bakery.cluster": "lab1", "bakery.role": role}
        assert base64.b64decode(server.user_data) == sent[name]  # byte-exact
        assert server.key_name == ("bakery-lab1" if keypair else None)
        want_sgs = {"bakery-lab1-nodes"} | ({"bakery-lab1-managers"} if role in ("seed", "manager") else set())
        assert {g["name"] for g in server.security_groups} == want_sgs
    if keypair:
        assert [k.name for k in user.compute.keypairs()] == ["bakery-lab1"]

    # The seed's port is tagged, carries its fixed IP, and has the cluster's one floating IP, from `public`.
    seed_ports = [p for p in user.network.ports(device_id=servers["lab1-seed"].id)]
    assert len(seed_ports) == 1 and seed_ports[0].name == "lab1-seed" and seed_ports[0].tags == ["bakery.cluster=lab1"]
    assert seed_ports[0].fixed_ips[0]["ip_address"] == result["seed_ip"]
    public = user.network.find_network("public", ignore_missing=False)
    fips = list(user.network.ips())
    assert len(fips) == 1
    fip = fips[0]
    assert fip.floating_network_id == public.id and fip.port_id == seed_ports[0].id
    assert fip.tags == ["bakery.cluster=lab1"] and fip.floating_ip_address == result["seed_floating_ip"]
    assert ipaddress.ip_address(fip.floating_ip_address) in ipaddress.ip_network("198.18.99.0/24")
    # Every node's user-data names the seed's fixed IP; the floating IP is in the managers' certificate SANs.
    assert result["seed_ip"].encode() in sent["lab1-worker-1"]
    for name in managers:
        meta = json.loads((tmp_path / "state" / "lab1" / "nodes" / name / "meta.json").read_text())
        assert fip.floating_ip_address in meta["sans"]

    # `bakery certs` names the API `up` reached the cluster by (the seed's floating IP), not a placeholder.
    code, out, err = run(capsys, ["certs", "--cluster", "lab1", "--state-dir", str(tmp_path / "state")])
    assert code == 0, err
    assert f"DOCKER_HOST=tcp://{fip.floating_ip_address}:2376" in out, out

    # A second up converges: nothing new.
    code, out, err = run(capsys, up_argv("lab1", tmp_path / "state", "--managers", "3", "--workers", "2", *extra))
    assert code == 0, err
    assert json.loads(out)["restored"] == []
    assert sorted(servers_of(admin, "lab1")) == sorted(names) and len(list(user.network.ips())) == 1
    assert len([g for g in user.compute.server_groups() if g.name == "bakery-lab1-managers"]) == 1


def test_down_removes_exactly_what_up_created(os_env, admin, user, sent, clean, capsys, tmp_path):
    """Another cluster's resources and untagged look-alikes in the same project survive `down`."""
    net = user.network.find_network("private", ignore_missing=False)
    flavor = user.compute.find_flavor("m1.small", ignore_missing=False)
    image = user.image.find_image("fake-raw", ignore_missing=False)
    lookalike_sg = user.network.create_security_group(name="bakery-lab2-nodes")  # same name, no tag
    lookalike_port = user.network.create_port(name="lab2-seed", network_id=net.id)
    plain = user.compute.create_server(name="lab2-worker-1", image_id=image.id, flavor_id=flavor.id,
                                       networks=[{"uuid": net.id}])
    (tmp_path / "id.pub").write_text(public_key() + "\n")
    code, _, err = run(capsys, up_argv("other", tmp_path / "state", "--managers", "1", "--workers", "1"))
    assert code == 0, err
    code, _, err = run(capsys, up_argv("lab2", tmp_path / "state", "--managers", "1", "--workers", "1",
                                       "--public-key", str(tmp_path / "id.pub")))
    assert code == 0, err
    pid = user.current_project_id
    before_other = sorted(servers_of(admin, "other"))
    assert before_other == ["other-seed", "other-worker-1"]

    code, out, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "lab2"])
    assert code == 0, err
    assert servers_of(admin, "lab2") == {}
    remaining = {s.name for s in user.compute.servers()}
    assert remaining == {"lab2-worker-1", "other-seed", "other-worker-1"}
    user.compute.wait_for_server(user.compute.get_server(plain.id), status="ACTIVE", wait=120)
    sgs = {sg.name: sg for sg in user.network.security_groups(project_id=pid)}
    assert sorted(sgs) == ["bakery-lab2-nodes", "bakery-other-managers", "bakery-other-nodes", "default"]
    assert sgs["bakery-lab2-nodes"].id == lookalike_sg.id
    ports = {p.id for p in user.network.ports(project_id=pid) if p.name.endswith("-seed")}
    assert lookalike_port.id in ports and len(ports) == 2  # the look-alike and other-seed's
    assert [g.name for g in user.compute.server_groups()] == ["bakery-other-managers"]
    assert [ip.tags for ip in user.network.ips()] == [["bakery.cluster=other"]]
    assert list(user.compute.keypairs()) == []
    # A second down finds nothing.
    code, out, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "lab2"])
    assert code == 0, err


def test_more_managers_than_computes_names_the_anti_affinity_group(os_env, user, clean, capsys, tmp_path):
    """Three computes, five managers: the real scheduler refuses two, and bakery says why."""
    code, _, err = run(capsys, up_argv("lab4", tmp_path / "state", "--managers", "5", "--workers", "0"))
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("bakery up: error: server lab4-manager-")
    # The real scheduler says "No valid host was found", or to the loser of two racing boots "Exceeded
    # maximum number of retries": bakery names the group either way.
    assert ("went to ERROR: No valid host was found" in last
            or "went to ERROR: Exceeded maximum number of retries" in last)
    assert last.endswith("(the 5 managers are in the anti-affinity server group bakery-lab4-managers, so each needs "
                         "a compute host of its own: use fewer --managers, a cloud or availability zone with that "
                         "many hosts, or a smaller flavor)")


def test_a_server_in_error_is_replaced_on_rerun(os_env, admin, user, clean, capsys, tmp_path):
    """Nova's own reset-state API puts a worker in ERROR; the next `up` deletes it and boots it again."""
    code, _, err = run(capsys, up_argv("lab5", tmp_path / "state", "--managers", "1", "--workers", "1"))
    assert code == 0, err
    old = servers_of(admin, "lab5")["lab5-worker-1"]
    admin.compute.reset_server_state(old, "error")
    assert admin.compute.get_server(old.id).status == "ERROR"
    code, out, err = run(capsys, up_argv("lab5", tmp_path / "state", "--managers", "1", "--workers", "1"))
    assert code == 0, err
    assert "lab5-worker-1 is in ERROR: deleting it (the plan boots what the counts need)" in err
    now = servers_of(admin, "lab5")
    assert sorted(now) == ["lab5-seed", "lab5-worker-1"]
    assert now["lab5-worker-1"].id != old.id and now["lab5-worker-1"].status == "ACTIVE"
    assert {n["name"]: n["server_id"] for n in json.loads(out)["nodes"]}["lab5-worker-1"] == now["lab5-worker-1"].id


def test_network_quota_is_checked_before_anything_is_created(os_env, admin, user, clean, capsys, tmp_path):
    """The project's security-group quota set low with Neutron's quota API: one line, nothing created."""
    pid = user.current_project_id
    used = len(list(user.network.security_groups(project_id=pid)))  # the default group
    admin.network.update_quota(pid, security_groups=used + 1)
    try:
        before = project_objects(user)
        code, _, err = run(capsys, up_argv("lab6", tmp_path / "state", "--managers", "1", "--workers", "1"))
        assert code == 1
        assert err.strip().splitlines() == [
            f"bakery up: error: network quota exceeded: this run creates 2 security groups (used {used} of "
            f"{used + 1}) (delete unused ones, use fewer nodes, or ask the cloud's admins to raise the project's "
            "quota; `openstack quota show` lists it)"]
        assert project_objects(user) == before
    finally:
        admin.network.delete_quota(pid)


def test_an_interrupted_up_converges_on_rerun_and_down_leaves_nothing(os_env, admin, user, clean, capsys, tmp_path):
    """Ctrl-C while `up` boots: what it made is tagged; the next `up` converges to exactly the plan, keeping
    the servers already there (no duplicates), and `down` leaves the project as it was."""
    import os
    import signal
    import subprocess
    import sys
    import time

    before = project_objects(user)
    argv = up_argv("lab8", tmp_path / "state", "--managers", "3", "--workers", "2")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(os_env.clouds_yaml)}
    proc = subprocess.Popen([sys.executable, "-m", "bakery", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not servers_of(admin, "lab8"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no server of lab8 appeared (bakery exit {proc.returncode}): {proc.communicate()[1]}")
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    first = {n: s.id for n, s in servers_of(admin, "lab8").items()}
    assert 0 < len(first) < 5, first
    code, out, err = run(capsys, argv)
    assert code == 0, err
    now = {n: s.id for n, s in servers_of(admin, "lab8").items()}
    assert sorted(now) == ["lab8-manager-1", "lab8-manager-2", "lab8-seed", "lab8-worker-1", "lab8-worker-2"]
    assert {n: i for n, i in now.items() if n in first} == first, "the servers the first run made are kept"
    code, _, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "lab8",
                                "--state-dir", str(tmp_path / "state")])
    assert code == 0, err
    assert project_objects(user) == before


def test_down_of_a_cluster_not_there_leaves_a_server_group_of_its_name(os_env, user, clean, capsys):
    """Server groups carry no tags: one named like a cluster's (affinity or anti-affinity) in a project where
    that cluster is not survives `down` (the attacker's run deleted a user's own group)."""
    affinity = user.compute.create_server_group(name="bakery-look-managers", policies=["affinity"])
    anti = user.compute.create_server_group(name="bakery-look2-managers", policies=["anti-affinity"])
    for cluster in ("look", "look2"):
        code, out, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", cluster])
        assert code == 0, err
        assert "deleted" not in out + err, out + err
    assert {g.id for g in user.compute.server_groups()} >= {affinity.id, anti.id}
