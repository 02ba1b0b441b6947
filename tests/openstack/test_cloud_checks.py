"""What `bakery up --provider openstack` checks before it creates anything, against the test cloud's real
Nova, Neutron and Glance (testkit/oscloud.py): a flavor, image or network that is not there (or not usable),
a floating-IP network that is not external, a keypair of that name holding another key, and the project's
compute quota (set low with Nova's quota API). Each is one line and an exit code, and the project is left as
it was. A keypair that already holds the operator's key is used and never deleted.
"""

from __future__ import annotations

import json

import pytest
from testkit.osbakery import project_objects, public_key, run, up_argv

pytestmark = pytest.mark.openstack


def refused(capsys, user, argv: list[str]) -> tuple[int, str]:
    """Run a command that must be refused; return its exit code and its one line of error."""
    before = project_objects(user)
    code, out, err = run(capsys, argv)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert project_objects(user) == before
    return code, lines[0]


@pytest.mark.parametrize("flag, value, start, end", [
    ("--flavor", "m1.huge", "flavor 'm1.huge' does not exist on this cloud (available: ", "m1.small"),
    ("--image", "centos", "image 'centos' does not exist on this cloud (available: ", "fake-raw"),
    ("--network", "nowhere", "network 'nowhere' does not exist on this cloud (available: ", "private"),
])
def test_a_flavor_image_or_network_not_there_is_one_line_exit_2(os_env, user, clean, capsys, tmp_path,
                                                                 flag, value, start, end):
    argv = up_argv("chk1", tmp_path / "state", "--managers", "1", "--workers", "1")
    argv[argv.index(flag) + 1] = value
    code, line = refused(capsys, user, argv)
    assert code == 2
    assert line.startswith("bakery up: error: " + start), line
    listed = line[len("bakery up: error: " + start):].split(")")[0].split(", ")
    assert end in listed and value not in listed
    assert line.endswith(f"(pass {flag} with one of them)"), line


def test_an_image_that_is_not_active_and_a_network_without_subnet_are_refused(os_env, admin, user, clean, capsys,
                                                                               tmp_path):
    """An image Glance holds no data for (queued) and a network Neutron gives no address on."""
    image = user.image.create_image(name="chk-half", disk_format="raw", container_format="bare")
    net = user.network.create_network(name="chk-bare")
    try:
        code, line = refused(capsys, user, [*up_argv("chk2", tmp_path / "state", "--managers", "1", "--workers", "0"),
                                            "--image", "chk-half"])
        assert code == 2
        assert line.startswith("bakery up: error: image 'chk-half' is queued, not active: servers cannot boot "
                               "from it"), line
        argv = up_argv("chk2", tmp_path / "state", "--managers", "1", "--workers", "0")
        argv[argv.index("--network") + 1] = "chk-bare"
        code, line = refused(capsys, user, argv)
        assert code == 2
        assert line.startswith("bakery up: error: network 'chk-bare' has no subnet: servers on it would get no "
                               "address"), line
    finally:
        user.image.delete_image(image.id)
        user.network.delete_network(net.id)


def test_floating_ips_from_a_network_that_is_not_external_are_refused(os_env, user, clean, capsys, tmp_path):
    argv = up_argv("chk3", tmp_path / "state", "--managers", "1", "--workers", "0")
    argv[argv.index("--floating-ip") + 1] = "private"
    code, line = refused(capsys, user, argv)
    assert code == 2
    assert line.startswith("bakery up: error: network 'private' is not external (router:external is false)"), line
    assert "--floating-ip" in line


def test_a_keypair_of_that_name_with_another_key_is_refused(os_env, user, clean, capsys, tmp_path):
    user.compute.create_keypair(name="bakery-chk4", public_key=public_key())
    (tmp_path / "id.pub").write_text(public_key() + "\n")
    code, line = refused(capsys, user, [*up_argv("chk4", tmp_path / "state", "--managers", "1", "--workers", "0"),
                                        "--public-key", str(tmp_path / "id.pub")])
    assert code == 2
    assert line.startswith("bakery up: error: keypair 'bakery-chk4' already exists with another key"), line


def test_a_key_name_that_does_not_exist_and_a_dual_stack_network_with_lb(os_env, admin, user, clean, capsys,
                                                                          tmp_path):
    """--key-name without --public-key names a keypair Nova must have (it failed at the first boot, after the
    security groups); with --lb the subnet is the network's IPv4 one even when an IPv6 one sorts first."""
    code, line = refused(capsys, user, [*up_argv("chk7", tmp_path / "state", "--managers", "1", "--workers", "0"),
                                        "--key-name", "nosuch"])
    assert code == 2
    assert line.startswith("bakery up: error: keypair 'nosuch' does not exist on this cloud"), line
    net = user.network.create_network(name="chk-dual")
    try:
        v4 = user.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.77.0.0/24", name="chk-v4")
        user.network.create_subnet(network_id=net.id, ip_version=6, cidr="fd00:77::/64", name="chk-v6")
        from bakery.providers.openstack import up as ou

        assert ou.subnet_of(user, user.network.get_network(net.id)).id == v4.id
    finally:
        for sub in list(user.network.subnets(network_id=net.id)):
            user.network.delete_subnet(sub.id)
        user.network.delete_network(net.id)


def test_a_keypair_holding_the_operators_key_is_used_and_never_deleted(os_env, admin, user, clean, capsys, tmp_path):
    key = public_key()
    mine = user.compute.create_keypair(name="mine", public_key=key)
    (tmp_path / "id.pub").write_text(key + "\n")
    code, out, err = run(capsys, [*up_argv("chk5", tmp_path / "state", "--managers", "1", "--workers", "0"),
                                  "--public-key", str(tmp_path / "id.pub"), "--key-name", "mine"])
    assert code == 0, err
    (server,) = [s for s in user.compute.servers() if s.name == "chk5-seed"]
    assert server.key_name == "mine"
    assert [(k.name, k.fingerprint) for k in user.compute.keypairs()] == [("mine", mine.fingerprint)]
    code, out, err = run(capsys, ["down", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", "chk5",
                                  "--output", "json"])
    assert code == 0, err
    assert json.loads(out)["removed"]
    assert [k.name for k in user.compute.keypairs()] == ["mine"]


def test_compute_quota_is_one_line_and_counts_only_the_servers_still_missing(os_env, admin, user, clean, capsys,
                                                                             tmp_path):
    """The instance and core quotas set low with Nova's quota API: one line naming both, nothing created; once
    the cluster stands, a re-run at a full quota boots nothing and is not refused."""
    pid = user.current_project_id
    admin.compute.update_quota_set(pid, instances=1, cores=1)
    try:
        code, line = refused(capsys, user, up_argv("chk6", tmp_path / "state", "--managers", "1", "--workers", "1"))
        assert code == 1
        assert line == (
            "bakery up: error: quota exceeded: 2 server(s) of flavor m1.small need 2 instances (used 0 of 1), "
            "2 vCPUs (used 0 of 1) (free some resources, use a smaller --flavor or fewer nodes, or ask the cloud's "
            "admins to raise the project's quota; `openstack quota show` lists it)")
        assert "RAM" not in line
    finally:
        admin.compute.revert_quota_set(pid)
    code, out, err = run(capsys, up_argv("chk6", tmp_path / "state", "--managers", "1", "--workers", "1"))
    assert code == 0, err
    admin.compute.update_quota_set(pid, instances=2, cores=2)
    try:
        before = project_objects(user)
        code, out, err = run(capsys, up_argv("chk6", tmp_path / "state", "--managers", "1", "--workers", "1"))
        assert code == 0, err
        assert project_objects(user) == before
    finally:
        admin.compute.revert_quota_set(pid)
