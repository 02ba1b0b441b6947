"""How the operator reaches a cluster: floating IPs, an imported keypair, the compute quota checked up front.

Floating IPs carry the cluster tag. Nova keypairs cannot be tagged, so the
cluster's `nodes` security group carries `bakery.keypair=NAME` for a keypair
bakery imported; `down` deletes that keypair and no other. A keypair that
already existed with the same key is used and left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import CloudError, UserError
from .cloud import create_tagged, find_network, find_or_none
from .errors import cloud_error

KEYPAIR_TAG = "bakery.keypair="
PUBLIC_KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-", "sk-ssh-ed25519@", "sk-ecdsa-sha2-")


def read_public_key(path: Path) -> str:
    """The one line of an OpenSSH public key file; a private key is refused without being echoed."""
    from ...yamlsrc import read_bytes

    text = read_bytes(path, UserError, "public key (.pub) file").decode(errors="replace").strip()
    if "PRIVATE KEY" in text:
        raise UserError(f"--public-key {path} is a private key; it must never leave this machine",
                        fix=f"pass the public half ({path}.pub)")
    if not text.startswith(PUBLIC_KEY_TYPES) or len(text.split()) < 2 or not _key_blob(text.split()):
        raise UserError(f"--public-key {path} is not an OpenSSH public key",
                        fix="give a file like ~/.ssh/id_ed25519.pub (ssh-keygen -y -f KEY prints one)")
    return text.splitlines()[0]


def _key_blob(fields: list[str]) -> bool:
    """The key data is base64 of a blob that starts with its own type name (RFC 4253 string), as Nova checks."""
    import base64
    import binascii
    import struct

    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    parts, at = [], 0
    while at < len(blob):  # length-prefixed strings, exactly: the type name, then the key's numbers or bytes
        if at + 4 > len(blob):
            return False
        (size,) = struct.unpack(">I", blob[at:at + 4])
        if size == 0 or at + 4 + size > len(blob):
            return False
        parts.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return len(parts) >= 2 and parts[0] == fields[0].encode()


def check_keypair(conn: Any, name: str, public_key: str) -> Any:
    """The keypair `name` if it exists holding `public_key`, None if it does not exist; another key under
    that name is refused (before anything is created)."""
    try:
        existing = find_or_none(conn.compute.find_keypair, name)
    except Exception as exc:
        raise cloud_error(exc, f"looking up keypair {name}") from exc
    if existing is not None and (existing.public_key or "").split()[:2] != public_key.split()[:2]:
        raise UserError(f"keypair {name!r} already exists with another key",
                        fix="pass --key-name with a new name, or delete the old keypair")
    return existing


def ensure_keypair(conn: Any, name: str, public_key: str, nodes_sg_id: str) -> bool:
    """Import `public_key` as `name` unless it exists; True if bakery owns it (imported now or before)."""
    existing = check_keypair(conn, name, public_key)
    try:
        sg = conn.network.get_security_group(nodes_sg_id)
    except Exception as exc:
        raise cloud_error(exc, f"looking up keypair {name}") from exc
    mark = KEYPAIR_TAG + name
    if existing is not None:
        return mark in (sg.tags or [])
    try:
        # Mark first: a crash between the two calls leaves a mark without a keypair, which down tolerates.
        conn.network.set_tags(sg, sorted({*(sg.tags or []), mark}))
        conn.compute.create_keypair(name=name, public_key=public_key)
    except Exception as exc:
        raise cloud_error(exc, f"importing keypair {name}") from exc
    return True


def owned_keypairs(security_groups: list[Any]) -> list[str]:
    return sorted({t.removeprefix(KEYPAIR_TAG) for sg in security_groups for t in (sg.tags or [])
                   if t.startswith(KEYPAIR_TAG)})


def external_network(conn: Any, wanted: str) -> Any:
    net = find_network(conn, wanted, "--floating-ip")
    if not getattr(net, "is_router_external", False):
        raise UserError(f"network {wanted!r} is not external (router:external is false): floating IPs come from "
                        "an external network", fix="pass --floating-ip with the cloud's public network")
    return net


FIP_DESCRIPTION = "bakery: "  # the start of every floating IP's description bakery creates


def is_ours_untagged(ip: Any) -> bool:
    """A floating IP bakery created and could not tag (a run killed between the two calls)."""
    return str(getattr(ip, "description", "") or "").startswith(FIP_DESCRIPTION) and not (ip.tags or [])


def ensure_floating_ip(conn: Any, tag: str, external_id: str, port_id: str, what: str) -> Any:
    """The tagged floating IP on `port_id`, and how it came: "there", "adopted" (bakery's own, left untagged
    by a kill), "attached" (the cluster's idle one: its address is in the certificates), "created", or
    "foreign" (the port has a floating IP bakery did not make: left as it is, not the cluster's)."""
    return ensure_floating_ip_how(conn, tag, external_id, port_id, what)[0]


def ensure_floating_ip_how(conn: Any, tag: str, external_id: str, port_id: str, what: str) -> tuple[Any, str]:
    try:
        for ip in conn.network.ips(port_id=port_id):
            if ip.port_id != port_id:
                continue
            if tag in (ip.tags or []):
                return ip, "there"
            if is_ours_untagged(ip):
                conn.network.set_tags(ip, [tag])
                return ip, "adopted"
            return ip, "foreign"
        for ip in conn.network.ips(tags=tag, floating_network_id=external_id):
            if tag in (ip.tags or []) and not ip.port_id:
                return conn.network.update_ip(ip, port_id=port_id), "attached"
        ip = create_tagged(conn.network.create_ip, tag, floating_network_id=external_id, port_id=port_id,
                           description=f"{FIP_DESCRIPTION}{what}")
        conn.network.set_tags(ip, [tag])
    except Exception as exc:
        raise cloud_error(exc, f"allocating a floating IP for {what}") from exc
    return ip, "created"


def check_compute_quota(conn: Any, flavor: Any, count: int) -> None:
    """Fail before creating anything when the servers to boot exceed what the project has left."""
    if count == 0:
        return
    try:
        full = conn.compute.get_flavor(flavor.id)
        limits = conn.compute.get_limits().absolute
    except Exception as exc:
        raise cloud_error(exc, "reading the compute quota") from exc
    needs = [("instances", count, limits.instances, limits.instances_used),
             ("vCPUs", count * (full.vcpus or 0), limits.total_cores, limits.total_cores_used),
             ("MB of RAM", count * (full.ram or 0), limits.total_ram, limits.total_ram_used)]
    short = [f"{need} {what} (used {used} of {limit})" for what, need, limit, used in needs
             if limit is not None and limit >= 0 and need > limit - (used or 0)]
    if short:
        raise CloudError(f"quota exceeded: {count} server(s) of flavor {flavor.name} need {', '.join(short)} "
                         "(free some resources, use a smaller --flavor or fewer nodes, or ask the cloud's admins "
                         "to raise the project's quota; `openstack quota show` lists it)")


def check_network_quota(conn: Any, needs: dict[str, int]) -> None:
    """Fail before creating anything when Neutron's quota cannot hold what this run creates.

    `needs` maps a QuotaDetails field (security_groups, security_group_rules, ports, floating_ips) to how
    many this run adds; a quota of -1 is unlimited. Without it a run stopped half-way at the first refusal."""
    wanted = {k: v for k, v in needs.items() if v > 0}
    if not wanted:
        return
    try:
        quota = conn.network.get_quota(conn.current_project_id, details=True)
    except Exception as exc:
        raise cloud_error(exc, "reading the network quota") from exc
    words = {"security_groups": "security groups", "security_group_rules": "security group rules",
             "ports": "ports", "floating_ips": "floating IPs"}
    short = []
    for field, need in wanted.items():
        detail = getattr(quota, field, None) or {}
        limit, used = detail.get("limit"), (detail.get("used") or 0) + (detail.get("reserved") or 0)
        if limit is not None and limit >= 0 and need > limit - used:
            short.append(f"{need} {words[field]} (used {used} of {limit})")
    if short:
        raise CloudError(f"network quota exceeded: this run creates {', '.join(short)} (delete unused ones, use "
                         "fewer nodes, or ask the cloud's admins to raise the project's quota; `openstack quota "
                         "show` lists it)")
