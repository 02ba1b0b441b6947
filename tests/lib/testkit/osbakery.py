"""bakery against the OpenStack test cloud: the command lines, and what the tests read back (tests/openstack)."""

from __future__ import annotations

from bakery import cli

OPERATOR = "198.51.100.7/32"


def public_key() -> str:
    """A real OpenSSH public key: Nova computes its fingerprint and refuses junk."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " t@bakery"


def up_argv(cluster: str, state, *extra: str) -> list[str]:
    return ["up", "--provider", "openstack", "--os-cloud", "bakery", "--cluster", cluster, "--state-dir", str(state),
            "--flavor", "m1.small", "--image", "fake-raw", "--network", "private", "--operator-cidr", OPERATOR,
            "--floating-ip", "public", "--wait", "active", "--output", "json", *extra]


def wipe(user, admin) -> None:
    pid = user.current_project_id
    for lb in list(user.load_balancer.load_balancers()):
        user.load_balancer.delete_load_balancer(lb.id, cascade=True)
    for lb in list(user.load_balancer.load_balancers()):
        user.load_balancer.wait_for_delete(lb, wait=120)
    for s in list(user.compute.servers()):
        user.compute.delete_server(s.id)
    for s in list(user.compute.servers()):
        user.compute.wait_for_delete(s, wait=120)
    for ip in list(user.network.ips()):
        user.network.delete_ip(ip.id)
    for p in list(user.network.ports(project_id=pid)):
        if not p.device_owner.startswith("network:"):
            user.network.delete_port(p.id)
    for g in list(user.compute.server_groups()):
        user.compute.delete_server_group(g.id)
    for sg in list(user.network.security_groups(project_id=pid)):
        if sg.name != "default":
            user.network.delete_security_group(sg.id)
    for k in list(user.compute.keypairs()):
        user.compute.delete_keypair(k.name)


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def servers_of(admin, cluster: str) -> dict[str, object]:
    return {s.name: admin.compute.get_server(s.id) for s in admin.compute.servers(all_projects=True, details=True)
            if (s.metadata or {}).get("bakery.cluster") == cluster}


def project_objects(user) -> dict[str, list[str]]:
    """What the project holds that bakery could have made (compared before and after a refused command)."""
    pid = user.current_project_id
    return {"security_groups": sorted(sg.name for sg in user.network.security_groups(project_id=pid)),
            "server_groups": sorted(g.name for g in user.compute.server_groups()),
            "servers": sorted(s.name for s in user.compute.servers()),
            "ports": sorted(p.name for p in user.network.ports(project_id=pid)
                            if not p.device_owner.startswith("network:")),
            "floating_ips": sorted(ip.floating_ip_address for ip in user.network.ips()),
            "keypairs": sorted(k.name for k in user.compute.keypairs())}
