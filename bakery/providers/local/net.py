"""The local cluster's tenant network: a private bridge, one FORWARD rule, dnsmasq for DHCP and DNS.

Nodes get addresses from dnsmasq like VMs on a tenant network, and find each
other by name in the `cluster.test` domain (docs/local-nodes.md). Every
piece is recorded in the ClusterRecord the moment it exists, and removed
from that record only; nothing is ever found or removed by name pattern.
The subnet is fixed (10.213.0.0/24): `up` refuses to start if any interface
on the host already holds an address in it, so it can never take over
someone else's network.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import BakeryError, EnvironmentMissing
from .host import run, which
from .state import ClusterRecord, Proc, Teardown

SUBNET = ipaddress.ip_network("10.213.0.0/24")
HOST_ADDRESS = "10.213.0.1"
DHCP_RANGE = ("10.213.0.100", "10.213.0.200")
DOMAIN = "cluster.test"


def bridge_name(cluster: str) -> str:
    # Linux interface names are at most 15 characters.
    return ("bkr-" + "".join(c for c in cluster if c.isalnum()))[:15]


def _addresses_in_use() -> list[tuple[str, str]]:
    out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=True).stdout
    found = []
    for link in json.loads(out):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                found.append((link["ifname"], addr["local"]))
    return found


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode == 0


def require_free_subnet() -> None:
    """Before anything is recorded: the local subnet must be free (one local cluster at a time)."""
    which("ip")
    for ifname, addr in _addresses_in_use():
        if ipaddress.ip_address(addr) in SUBNET:
            raise EnvironmentMissing(
                f"{SUBNET} is already in use on {ifname} ({addr}); "
                "take that cluster down first (`bakery down`) or free the subnet"
            )


def create_bridge(rec: ClusterRecord, save: Callable[[], None]) -> None:
    require_free_subnet()
    name = bridge_name(rec.cluster)
    if _link_exists(name):
        raise EnvironmentMissing(f"a network interface named {name} already exists and is not bakery's record")
    log = Path(rec.workdir) / "net.log"
    run(["ip", "link", "add", name, "type", "bridge"], log)
    rec.bridge, rec.bridge_created = name, True
    save()
    run(["ip", "addr", "add", f"{HOST_ADDRESS}/{SUBNET.prefixlen}", "dev", name], log)
    rec.address = f"{HOST_ADDRESS}/{SUBNET.prefixlen}"
    run(["ip", "link", "set", name, "up"], log)
    save()
    # dockerd (on the host and in nodes) sets FORWARD's policy to DROP; bridged node traffic
    # passes FORWARD when br_netfilter is loaded, so let node-to-node traffic through.
    rule = ["FORWARD", "-i", name, "-o", name, "-j", "ACCEPT"]
    run([which("iptables"), "-I", *rule], log)
    rec.iptables.append(rule)
    save()


def start_dnsmasq(rec: ClusterRecord, save: Callable[[], None], reservations: list[tuple[str, str]]) -> None:
    """DHCP and DNS on the bridge; `reservations` fix (hostname, address) pairs.

    dnsmasq matches a reservation on the hostname the node's DHCP client sends,
    so a node's address is known before it boots and its certificate can cover it.
    """
    work = Path(rec.workdir)
    cmd = [
        which("dnsmasq"),
        "--keep-in-foreground",
        f"--interface={rec.bridge}",
        "--bind-interfaces",
        "--except-interface=lo",
        f"--listen-address={HOST_ADDRESS}",
        f"--dhcp-range={DHCP_RANGE[0]},{DHCP_RANGE[1]},1h",
        "--dhcp-authoritative",
        # Leases by MAC (nspawn derives a node's from its name), not by client id (systemd-networkd's comes
        # from the machine id, new with every node): a name used again after its node was deleted gets its
        # reserved address back instead of "leased to" the old node and a random one.
        "--dhcp-ignore-clid",
        f"--domain={DOMAIN}",
        f"--local=/{DOMAIN}/",
        "--expand-hosts",
        "--no-resolv",
        "--no-hosts",
        f"--dhcp-leasefile={work / 'dnsmasq.leases'}",
        f"--pid-file={work / 'dnsmasq.pid'}",
        f"--log-facility={work / 'dnsmasq.log'}",
        *(f"--dhcp-host={name},{address}" for name, address in reservations),
    ]
    with (work / "dnsmasq.out").open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    rec.services["dnsmasq"] = Proc.of(proc.pid)
    save()
    time.sleep(0.3)
    if proc.poll() is not None:
        raise BakeryError(f"dnsmasq exited at once: {(work / 'dnsmasq.out').read_text(errors='replace')[-500:]}")


@dataclass(frozen=True)
class Lease:
    mac: str
    address: str
    hostname: str


def leases(rec: ClusterRecord) -> dict[str, Lease]:
    """hostname -> newest lease, from dnsmasq's lease file."""
    path = Path(rec.workdir) / "dnsmasq.leases"
    found: dict[str, Lease] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3] != "*":
            found[parts[3]] = Lease(parts[1], parts[2], parts[3])
    return found


def teardown(rec: ClusterRecord, save: Callable[[], None]) -> Teardown:
    """Undo what the record says this module did: what was removed, and what could not be."""
    done = Teardown()
    for name, proc in list(rec.services.items()):
        proc.stop(grace=5)
        if proc.alive():
            done.problems.append(f"{name} (pid {proc.pid}) would not stop")
        else:
            del rec.services[name]
            save()
            done.removed.append(f"{name} (pid {proc.pid})")
    for rule in list(rec.iptables):
        gone = subprocess.run(["iptables", "-D", *rule], capture_output=True, check=False)
        if gone.returncode == 0 or b"does a matching rule exist" in gone.stderr or b"Bad rule" in gone.stderr:
            rec.iptables.remove(rule)
            save()
            done.removed.append(f"iptables rule {' '.join(rule)}")
        else:
            done.problems.append(f"iptables -D {' '.join(rule)}: {gone.stderr.decode(errors='replace').strip()}")
    if rec.bridge and rec.bridge_created:
        if _link_exists(rec.bridge):
            gone = subprocess.run(["ip", "link", "del", rec.bridge], capture_output=True, check=False)
            if gone.returncode != 0:
                done.problems.append(f"ip link del {rec.bridge}: {gone.stderr.decode(errors='replace').strip()}")
                return done
        done.removed.append(f"bridge {rec.bridge}")
        rec.bridge, rec.bridge_created, rec.address = "", False, ""
        save()
    return done
