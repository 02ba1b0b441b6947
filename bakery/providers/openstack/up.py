"""`bakery up --provider openstack` and `bakery down`: a swarm on Nova servers, found again by its tags.

Security groups carry exactly the swarm's ports (docs/FACTS.md §2: Magnum's joins failed
for months without 2377): 2377/tcp between managers, 7946/tcp+udp and
4789/udp between nodes, 2378/tcp (bakery's join service) from nodes to
managers, 2376/tcp (the TLS Docker API) from the operator's CIDR only, and
consul's server ports for consul. Managers share an anti-affinity server
group. The seed and every manager get a Neutron port first, so their fixed IPs
are known to every node's user-data (`swarm.seed`, `swarm.managers`): a seed
booted again later fetches its token from the managers. Every resource is tagged (Neutron) or carries
metadata (Nova) with the cluster, and up looks for it before creating it, so
re-running after a partial failure converges. Server groups cannot be
tagged: theirs is an exact name derived from the cluster (keypairs: access.py).
Floating IPs and the load balancer's VIP exist before any user-data is
rendered, so they are in every node's certificate SANs.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ...config import ClusterConfig
from ...errors import CloudError, UserError
from . import access, lb
from .cloud import Clock, Poll, create_tagged, find_flavor, find_image, find_network, find_or_none
from .errors import cloud_error, server_fault
from .ledger import Ledger, delete_all

Progress = Callable[[str], None]
CLUSTER_KEY = "bakery.cluster"


@dataclass(frozen=True)
class Rule:
    protocol: str
    port_min: int
    port_max: int
    remote_group: str | None = None  # a group name of this cluster
    remote_cidr: str | None = None


@dataclass(frozen=True)
class UpOptions:
    cluster: str
    flavor: str
    image: str
    network: str
    operator_cidr: str
    managers: int = 3
    workers: int = 2
    consul: bool = False
    key_name: str | None = None
    public_key: str | None = None  # an OpenSSH public key to import as key_name (default bakery-CLUSTER)
    floating_network: str | None = None  # external network: floating IPs for the seed (and the LB's VIP)
    lb: bool = False
    poll: float = 5.0
    timeout: float = 900.0

    @property
    def keypair(self) -> str | None:
        return self.key_name or (f"bakery-{self.cluster}" if self.public_key else None)


@dataclass(frozen=True)
class UpResult:
    servers: dict[str, str]  # node name -> server id
    roles: dict[str, str]  # node name -> role
    seed_ip: str
    seed_floating_ip: str | None = None
    lb_vip: str | None = None
    lb_floating_ip: str | None = None

    @property
    def seed_address(self) -> str:
        """Where bakery reaches the seed's TLS API."""
        return self.seed_floating_ip or self.seed_ip

    @property
    def api_address(self) -> str:
        """What the operator's DOCKER_HOST should name: the load balancer when there is one."""
        return self.lb_floating_ip or self.lb_vip or self.seed_address


def cluster_tag(cluster: str) -> str:
    return f"{CLUSTER_KEY}={cluster}"


def group_names(cluster: str) -> dict[str, str]:
    return {g: f"bakery-{cluster}-{g}" for g in ("nodes", "managers", "consul")}


def security_rules(cluster: str, operator_cidr: str, join_port: int = 2378,
                   api_port: int = 2376, lb_cidr: str | None = None) -> dict[str, list[Rule]]:
    """Ingress rules per group; nothing else is opened (egress stays Neutron's default).

    With a load balancer, its amphorae connect to the managers' API port from the subnet (the listener
    itself admits only the operator's CIDR); mutual TLS still demands the operator's certificate."""
    g = group_names(cluster)
    lb_rules = [Rule("tcp", api_port, api_port, remote_cidr=lb_cidr)] if lb_cidr else []
    return {
        g["nodes"]: [Rule("tcp", 7946, 7946, g["nodes"]), Rule("udp", 7946, 7946, g["nodes"]),
                     Rule("udp", 4789, 4789, g["nodes"])],
        g["managers"]: [Rule("tcp", 2377, 2377, g["managers"]), Rule("tcp", join_port, join_port, g["nodes"]),
                        Rule("tcp", api_port, api_port, remote_cidr=operator_cidr), *lb_rules],
        # consul server RPC and serf LAN; its HTTP API listens on 127.0.0.1 only.
        g["consul"]: [Rule("tcp", 8300, 8300, g["nodes"]), Rule("tcp", 8301, 8301, g["nodes"]),
                      Rule("udp", 8301, 8301, g["nodes"])],
    }


def node_plan(opts: UpOptions) -> list[tuple[str, str]]:
    """(role, name) of every server, seed first."""
    nodes = [("seed", f"{opts.cluster}-seed")]
    nodes += [("manager", f"{opts.cluster}-manager-{i}") for i in range(1, opts.managers)]
    nodes += [("worker", f"{opts.cluster}-worker-{i}") for i in range(1, opts.workers + 1)]
    if opts.consul:
        nodes.append(("consul", f"{opts.cluster}-consul"))
    return nodes


def groups_for(role: str, cluster: str) -> list[str]:
    g = group_names(cluster)
    extra = {"seed": ["managers"], "manager": ["managers"], "worker": [], "consul": ["consul"]}[role]
    return [g["nodes"], *[g[e] for e in extra]]


def _tagged(conn: Any, kind: str, cluster: str) -> list[Any]:
    tag = cluster_tag(cluster)
    lister = {"security_group": lambda: conn.network.security_groups, "port": lambda: conn.network.ports,
              "floating_ip": lambda: conn.network.ips, "load_balancer": lambda: conn.load_balancer.load_balancers,
              }[kind]()
    try:
        return [r for r in lister(tags=tag) if tag in (r.tags or [])]  # rechecked: never trust a filter
    except Exception as exc:
        raise cloud_error(exc, f"listing {kind.replace('_', ' ')}s of cluster {cluster}") from exc


def needed_groups(opts: UpOptions, rules: dict[str, list[Rule]]) -> dict[str, list[Rule]]:
    """The groups this cluster's servers use: consul's only with --consul (an existing one is left to down)."""
    consul = group_names(opts.cluster)["consul"]
    return {name: r for name, r in rules.items() if opts.consul or name != consul}


def ensure_security_groups(conn: Any, opts: UpOptions, cfg: ClusterConfig, ledger: Ledger,
                           lb_cidr: str | None = None, added: list[str] | None = None,
                           removed: list[str] | None = None, stale: frozenset[str] = frozenset()) -> dict[str, str]:
    """Create missing groups and missing rules; returns name -> id. What was missing is appended to
    `added` (a line each) when given. `stale`: address ranges bakery opened before and no longer asks
    for (the last `up`'s --operator-cidr, changed): their rules on the ports bakery opens from a range
    are deleted (each line appended to `removed`); a rule of another range (the user's own) stays."""
    existing = {sg.name: sg for sg in _tagged(conn, "security_group", opts.cluster)}
    ids: dict[str, str] = {}
    rules = needed_groups(opts, security_rules(opts.cluster, opts.operator_cidr, cfg.swarm.join_port,
                                               cfg.docker.api_port, lb_cidr))
    for name in rules:
        sg = existing.get(name)
        if sg is None:
            try:
                sg = create_tagged(conn.network.create_security_group, cluster_tag(opts.cluster), name=name,
                                   description=f"bakery cluster {opts.cluster}")
                ledger.add("security_group", sg.id)
                conn.network.set_tags(sg, [cluster_tag(opts.cluster)])
            except Exception as exc:
                raise cloud_error(exc, f"creating security group {name}") from exc
            if added is not None:
                added.append(f"security group {name}")
        ids[name] = sg.id
    for name, wanted in rules.items():
        for rule in _ensure_rules(conn, ids[name], wanted, ids, existing.get(name)):
            if added is not None and name in existing:
                source = rule.remote_group or rule.remote_cidr or "anywhere"
                added.append(f"rule {rule.protocol}/{rule.port_min}-{rule.port_max} from {source} in {name}")
        if removed is not None and name in existing and stale:
            removed += _prune_ranges(conn, name, wanted, existing[name], stale)
    return ids


def _prune_ranges(conn: Any, name: str, wanted: list[Rule], sg: Any, stale: frozenset[str]) -> list[str]:
    ranges = {(r.protocol, r.port_min, r.port_max) for r in wanted if r.remote_cidr}
    keep = {(r.protocol, r.port_min, r.port_max, r.remote_cidr) for r in wanted if r.remote_cidr}
    gone = []
    for r in getattr(sg, "security_group_rules", None) or []:
        key = (r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"))
        cidr = r.get("remote_ip_prefix")
        if (r.get("direction") != "ingress" or cidr not in stale or key not in ranges
                or (*key, cidr) in keep):
            continue
        try:
            conn.network.delete_security_group_rule(r["id"], ignore_missing=True)
        except Exception as exc:
            raise cloud_error(exc, f"deleting rule {key[0]}/{key[1]} from {cidr} of security group {name}") from exc
        gone.append(f"rule {key[0]}/{key[1]}-{key[2]} from {cidr} in {name} (the last up's --operator-cidr)")
    return gone


def _ensure_rules(conn: Any, sg_id: str, wanted: list[Rule], ids: dict[str, str], sg: Any) -> list[Rule]:
    """Add the wanted ingress rules the group lacks; returns those added."""
    have = {(r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"), r.get("remote_group_id"),
             r.get("remote_ip_prefix")) for r in (getattr(sg, "security_group_rules", None) or [])
            if r.get("direction") == "ingress"}
    added = []
    for rule in wanted:
        remote = ids[rule.remote_group] if rule.remote_group else None
        if (rule.protocol, rule.port_min, rule.port_max, remote, rule.remote_cidr) in have:
            continue
        try:
            conn.network.create_security_group_rule(
                security_group_id=sg_id, direction="ingress", ethertype="IPv4", protocol=rule.protocol,
                port_range_min=rule.port_min, port_range_max=rule.port_max, remote_group_id=remote,
                remote_ip_prefix=rule.remote_cidr)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 409 or "already exists" in str(exc):
                continue  # another run added it meanwhile
            raise cloud_error(exc, f"adding rule {rule.protocol}/{rule.port_min} to security group {sg_id}") from exc
        added.append(rule)
    return added


def ensure_server_group(conn: Any, cluster: str, ledger: Ledger) -> str:
    name = f"bakery-{cluster}-managers"
    try:
        for group in conn.compute.server_groups():
            if group.name == name:
                return str(group.id)
        group = conn.compute.create_server_group(name=name, policies=["anti-affinity"])
    except Exception as exc:
        raise cloud_error(exc, f"creating server group {name}") from exc
    ledger.add("server_group", group.id)
    return str(group.id)


def ensure_seed_port(conn: Any, opts: UpOptions, network_id: str, sg_ids: list[str], ledger: Ledger) -> Any:
    return ensure_port(conn, opts, f"{opts.cluster}-seed", network_id, sg_ids, ledger)


def ensure_port(conn: Any, opts: UpOptions, name: str, network_id: str, sg_ids: list[str], ledger: Ledger,
                tagged: list[Any] | None = None) -> Any:
    """The node's tagged port (found again by its name), created if missing: its fixed IP is known
    before any user-data is rendered."""
    for port in _tagged(conn, "port", opts.cluster) if tagged is None else tagged:
        if port.name == name:
            return port
    try:
        port = create_tagged(conn.network.create_port, cluster_tag(opts.cluster), name=name, network_id=network_id,
                             security_group_ids=sg_ids)
        ledger.add("port", port.id)
        conn.network.set_tags(port, [cluster_tag(opts.cluster)])
    except Exception as exc:
        raise cloud_error(exc, f"creating the port {name}") from exc
    return port


def manager_ports(conn: Any, opts: UpOptions, network_id: str, sg_ids: list[str], existing: dict[str, Any],
                  ledger: Ledger) -> tuple[dict[str, Any], dict[str, str]]:
    """(ports of the managers still to boot, every manager's fixed IP by name). A manager that already
    runs keeps the address it has (it may predate manager ports)."""
    names = [n for r, n in node_plan(opts) if r == "manager"]
    tagged = _tagged(conn, "port", opts.cluster) if names else []
    ports: dict[str, Any] = {}
    addrs: dict[str, str] = {}
    for name in names:
        if name in existing:
            addrs[name] = fixed_ip(existing[name])
            continue
        ports[name] = ensure_port(conn, opts, name, network_id, sg_ids, ledger, tagged)
        addrs[name] = str(ports[name].fixed_ips[0]["ip_address"])
    return ports, addrs


def seed_address(conn: Any, cluster: str) -> str | None:
    """The seed's floating IP if it has one, else its fixed IP (from the tagged seed port). Once a roll
    replaced the seed: the lowest numbered manager's port (the seed's floating IP moved to it)."""
    tagged = {p.name: p for p in _tagged(conn, "port", cluster)}

    def number(name: str) -> int:
        tail = name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    names = [f"{cluster}-seed"] if f"{cluster}-seed" in tagged else sorted(
        (n for n in tagged if n.startswith(f"{cluster}-manager-")), key=number)
    if not names:
        return None
    port = tagged[names[0]]
    for fip in _tagged(conn, "floating_ip", cluster):
        if fip.port_id == port.id:
            return str(fip.floating_ip_address)
    return str(port.fixed_ips[0]["ip_address"])


def cluster_server_list(conn: Any, cluster: str) -> list[Any]:
    """Every server carrying the cluster's mark (two of one name, after a race, are both here)."""
    try:
        return [s for s in conn.compute.servers(details=True) if (s.metadata or {}).get(CLUSTER_KEY) == cluster]
    except Exception as exc:
        raise cloud_error(exc, f"listing servers of cluster {cluster}") from exc


def cluster_servers(conn: Any, cluster: str) -> dict[str, Any]:
    return {s.name: s for s in cluster_server_list(conn, cluster)}


def resolve(conn: Any, opts: UpOptions) -> tuple[Any, Any, Any]:
    """Flavor, image and network, each wrong one a clear error before anything is created."""
    flavor, image = find_flavor(conn, opts.flavor), find_image(conn, opts.image, "--image")
    if image.status != "active":
        raise UserError(f"image {opts.image!r} is {image.status}, not active: servers cannot boot from it",
                        fix="wait for it to become active, or pass --image with another")
    network = find_network(conn, opts.network)
    if not network.subnet_ids:
        raise UserError(f"network {opts.network!r} has no subnet: servers on it would get no address",
                        fix="pass --network with a tenant network that has a subnet")
    if opts.public_key and opts.keypair:
        access.check_keypair(conn, opts.keypair, opts.public_key)
    elif opts.keypair:  # --key-name alone: a keypair the operator has already
        try:
            there = find_or_none(conn.compute.find_keypair, opts.keypair)
        except Exception as exc:
            raise cloud_error(exc, f"looking up keypair {opts.keypair}") from exc
        if there is None:
            raise UserError(f"keypair {opts.keypair!r} does not exist on this cloud",
                            fix="pass --public-key FILE to import it, or --key-name with an existing keypair")
    return flavor, image, network


def check_services(conn: Any, opts: UpOptions) -> None:
    """Services the options need, before anything is created: --lb needs Octavia in the catalog."""
    if opts.lb and not has_octavia(conn):
        raise UserError("--lb needs Octavia (the load-balancer service), and this cloud's catalog has none",
                        fix="drop --lb and reach the seed's floating IP instead (--floating-ip), or use a cloud "
                        "with Octavia")


def subnet_of(conn: Any, network: Any) -> Any:
    """The network's IPv4 subnet (the first by id when there are several): the rules are IPv4."""
    try:
        subnets = [conn.network.get_subnet(i) for i in sorted(network.subnet_ids)]
    except Exception as exc:
        raise cloud_error(exc, f"reading the subnet of network {network.name}") from exc
    v4 = [s for s in subnets if getattr(s, "ip_version", 4) == 4]
    if not v4:
        raise UserError(f"network {network.name} has no IPv4 subnet: bakery's security group rules and swarm "
                        "addresses are IPv4", fix="use a network with an IPv4 subnet (--network)")
    return v4[0]


def up(conn: Any, opts: UpOptions, cfg: ClusterConfig, state_root: Path | None, progress: Progress,
       clock: Clock | None = None) -> UpResult:
    """Create or converge the cluster. Created resources stay on failure
    (re-running converges; `bakery down` removes them)."""
    clock = clock or Clock()
    flavor, image, network = resolve(conn, opts)
    check_services(conn, opts)
    external = access.external_network(conn, opts.floating_network) if opts.floating_network else None
    existing = replace_failed(conn, cluster_servers(conn, opts.cluster), opts, progress, clock)
    access.check_compute_quota(conn, flavor, sum(1 for _, name in node_plan(opts) if name not in existing))
    access.check_network_quota(conn, network_needs(conn, opts, cfg, existing))
    subnet = subnet_of(conn, network) if opts.lb else None
    ledger = Ledger()
    tag = cluster_tag(opts.cluster)
    sgs, group_id = ensure_shared(conn, opts, cfg, ledger, subnet.cidr if subnet else None)
    port = ensure_seed_port(conn, opts, network.id, [sgs[n] for n in groups_for("seed", opts.cluster)], ledger)
    ports, manager_ips = manager_ports(conn, opts, network.id, [sgs[n] for n in groups_for("manager", opts.cluster)],
                                       existing, ledger)
    ports[port.name] = port
    result = UpResult({}, {}, str(port.fixed_ips[0]["ip_address"]))
    if external is not None:
        fip = access.ensure_floating_ip(conn, tag, external.id, port.id, f"{opts.cluster}-seed")
        result = dataclasses.replace(result, seed_floating_ip=str(fip.floating_ip_address))
    balancer = None
    if subnet is not None:
        balancer = lb.ensure(conn, opts.cluster, tag, subnet.id, ledger, progress)
        result = dataclasses.replace(result, lb_vip=str(balancer.vip_address))
        if external is not None:
            fip = access.ensure_floating_ip(conn, tag, external.id, balancer.vip_port_id, lb.lb_name(opts.cluster))
            result = dataclasses.replace(result, lb_floating_ip=str(fip.floating_ip_address))
    extra = [a for a in (result.seed_floating_ip, result.lb_vip, result.lb_floating_ip) if a]
    # Every node knows the seed and the managers by their fixed IPs (in the managers' certificates too):
    # a seed booted again beside running managers fetches its token from them.
    cfg = dataclasses.replace(cfg, name=opts.cluster, tls_sans=tuple(sorted({*cfg.tls_sans, *extra})),
                              swarm=dataclasses.replace(cfg.swarm, seed=result.seed_ip,
                                                        managers=tuple(manager_ips.values())))
    ids = boot(conn, opts, cfg, state_root, (flavor, image, network, ports, group_id), existing, progress, clock)
    servers = wait_active(conn, ids, opts, progress, clock)
    result = dataclasses.replace(result, servers=ids, roles=dict((n, r) for r, n in node_plan(opts)))
    if balancer is not None and subnet is not None:
        managers = {n: fixed_ip(servers[n], result.seed_ip if r == "seed" else None)
                    for r, n in node_plan(opts) if r in ("seed", "manager")}
        progress(f"load balancer {balancer.name}: listener on {cfg.docker.api_port}, {len(managers)} member(s)")
        lb.ensure_api(conn, balancer, opts.cluster, tag, cfg.docker.api_port, opts.operator_cidr, managers,
                      subnet.id, opts.timeout, clock)
    return result


def ensure_shared(conn: Any, opts: UpOptions, cfg: ClusterConfig, ledger: Ledger,
                  lb_cidr: str | None = None, added: list[str] | None = None,
                  removed: list[str] | None = None, stale: frozenset[str] = frozenset()) -> tuple[dict[str, str], str]:
    """What every server of the cluster uses: the security groups (name -> id), the imported keypair,
    the managers' anti-affinity group (its id). Found again when they exist."""
    sgs = ensure_security_groups(conn, opts, cfg, ledger, lb_cidr, added, removed, stale)
    if opts.public_key and opts.keypair:
        access.ensure_keypair(conn, opts.keypair, opts.public_key, sgs[group_names(opts.cluster)["nodes"]])
    return sgs, ensure_server_group(conn, opts.cluster, ledger)


def network_needs(conn: Any, opts: UpOptions, cfg: ClusterConfig, existing: dict[str, Any]) -> dict[str, int]:
    """How many security groups, rules, ports and floating IPs this run adds (for the quota check)."""
    have = {sg.name for sg in _tagged(conn, "security_group", opts.cluster)}
    rules = needed_groups(opts, security_rules(opts.cluster, opts.operator_cidr, cfg.swarm.join_port,
                                               cfg.docker.api_port, "0.0.0.0/32" if opts.lb else None))
    new = [name for name in rules if name not in have]
    missing = [name for _, name in node_plan(opts) if name not in existing]
    fips = 0
    if opts.floating_network and not _tagged(conn, "floating_ip", opts.cluster):
        fips = 2 if opts.lb else 1
    # The load balancer's VIP is a Neutron port of the project too (Octavia makes it) when it is still missing.
    vip = 1 if opts.lb and not _tagged(conn, "load_balancer", opts.cluster) else 0
    # Neutron gives every new group two egress rules of its own.
    return {"security_groups": len(new), "security_group_rules": sum(len(rules[n]) + 2 for n in new),
            "ports": len(missing) + vip, "floating_ips": fips}


def replace_failed(conn: Any, existing: dict[str, Any], opts: UpOptions, progress: Progress,
                   clock: Clock) -> dict[str, Any]:
    """Servers of the cluster in ERROR are deleted (and waited for) so that this run boots them again;
    re-running used to keep an ERROR server forever. A pre-created port (the seed's) survives, since
    Nova deletes only the ports it made."""
    failed = {name: s for name, s in existing.items() if s.status == "ERROR"}
    for name, server in sorted(failed.items()):
        progress(f"{name} is in ERROR: deleting it to boot it again")
        try:
            conn.compute.delete_server(server.id)
        except Exception as exc:
            raise cloud_error(exc, f"deleting {name}, which is in ERROR") from exc
    deadline = clock.now() + opts.timeout
    retry = Poll()
    for name, server in sorted(failed.items()):
        while True:
            try:
                found = retry.get(partial(find_or_none, conn.compute.find_server, server.id))
                gone = found is None and not retry.again
            except Exception as exc:
                raise cloud_error(exc, f"watching {name} being deleted") from exc
            if gone:
                break
            if clock.now() >= deadline:
                raise CloudError(f"{name} (in ERROR) was not deleted within {opts.timeout:.0f}s")
            clock.sleep(opts.poll)
    return {name: s for name, s in existing.items() if name not in failed}


def fixed_ip(server: Any, known: str | None = None) -> str:
    if known:
        return known
    for addrs in (server.addresses or {}).values():
        for a in addrs:
            if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version", 4) == 4:
                return str(a["addr"])
    raise CloudError(f"server {server.name} has no fixed IPv4 address")


def boot(conn: Any, opts: UpOptions, cfg: ClusterConfig, state_root: Path | None, found: tuple[Any, ...],
         existing: dict[str, Any], progress: Progress, clock: Clock | None = None) -> dict[str, str]:
    """Boot every planned server that does not exist yet; returns node name -> server id. The managers
    (the seed too) one after another, each once Nova has placed it: see wait_placed."""
    ids: dict[str, str] = {}
    # The seed forms the swarm only if no manager of the cluster exists (the cloud's tagged servers are
    # the record): a seed booted again beside running managers must join them, never init a second swarm.
    formed = any((s.metadata or {}).get("bakery.role") in ("seed", "manager") for s in existing.values())
    refs = group_refs(conn, opts.cluster)
    for role, name in node_plan(opts):
        if name in existing:
            ids[name] = existing[name].id
            continue
        ids[name] = boot_server(conn, opts, cfg, state_root, found, role, name, role == "seed" and not formed, refs)
        progress(f"booting {name} ({role})")
        if role in ("seed", "manager") and opts.managers > 1:
            wait_placed(conn, ids[name], name, clock or Clock())
    return ids


def wait_placed(conn: Any, ident: str, name: str, clock: Clock, timeout: float = 120.0, poll: float = 1.0) -> None:
    """Until Nova has chosen the server's host (it left the `scheduling` task state), or it is no longer
    building. Anti-affinity placed in parallel races: each request is scheduled against the group's hosts
    as they are at that moment, a loser is rescheduled, and with as many managers as computes it runs out
    of retries (the test cloud met "Anti-affinity instance group policy was violated" with three managers
    on three computes). Never an error here: wait_active reports what became of the server."""
    deadline = clock.now() + timeout
    retry = Poll()
    while clock.now() < deadline:
        try:
            server = retry.get(partial(conn.compute.get_server, ident))
        except Exception as exc:
            raise cloud_error(exc, f"watching {name} being placed") from exc
        if server is not None and (server.status != "BUILD" or server.task_state not in (None, "scheduling")):
            return
        clock.sleep(poll)


def boot_server(conn: Any, opts: UpOptions, cfg: ClusterConfig, state_root: Path | None, found: tuple[Any, ...],
                role: str, name: str, form: bool, refs: dict[str, str]) -> str:
    """Boot one server with freshly rendered user-data; returns its id. `found`: (flavor, image, network,
    ports by server name, the managers' server group id). A server with a port of its own (the seed, the
    managers) is on it (its security groups are the port's, its fixed IP known to the user-data); others
    are on the network with the groups of their role (`refs`: group name -> id). `form`: the seed of a
    brand-new cluster only (docs/JOIN.md)."""
    from ...render import Node, build_userdata

    flavor, image, network, ports, group_id = found
    port = ports.get(name)
    own = str(port.fixed_ips[0]["ip_address"]) if port is not None else None
    node = Node(role, name, (own,) if own else ())
    userdata, _ = build_userdata(dataclasses.replace(cfg, swarm=dataclasses.replace(cfg.swarm, form=form)),
                                 node, state_root)
    nets = [{"port": port.id}] if port is not None else [{"uuid": network.id}]
    hints = {"group": group_id} if role in ("seed", "manager") else {}
    try:
        server = conn.compute.create_server(**server_request(
            name=name, image_id=image.id, flavor_id=flavor.id, networks=nets,
            security_groups=[] if port is not None else [{"name": refs[n]} for n in groups_for(role, opts.cluster)],
            user_data=base64.b64encode(userdata.payload).decode(), key_name=opts.keypair,
            scheduler_hints=hints, metadata={CLUSTER_KEY: opts.cluster, "bakery.role": role}))
    except Exception as exc:
        raise cloud_error(exc, f"booting {name}") from exc
    return str(server.id)


def group_refs(conn: Any, cluster: str) -> dict[str, str]:
    """Security group name -> the id of the cluster's tagged group. Servers name their groups by id: Nova
    resolves a name across the project, and an untagged group of the same name made the boot fail
    (HTTP 409 "Multiple security_group matches found for name 'bakery-lab2-nodes'")."""
    return {sg.name: str(sg.id) for sg in _tagged(conn, "security_group", cluster)}


def server_request(**fields: Any) -> dict[str, Any]:
    """The create_server arguments without unset ones: Nova's schema refuses null for key_name and
    scheduler_hints (HTTP 400 "None is not of type 'string'/'object'"), so an absent value is never sent."""
    return {k: v for k, v in fields.items() if v is not None and not (k == "scheduler_hints" and not v)}


def manager_fault(opts: UpOptions, name: str, server: Any, role: str | None = None) -> CloudError:
    """A seed or manager the scheduler could not place is named as the anti-affinity shortfall it most
    likely is (the real scheduler says only "No valid host was found", or, for the loser of a race,
    "Exceeded maximum number of retries")."""
    roles = {n: r for r, n in node_plan(opts)}
    fault = getattr(server, "fault", None) or {}
    message = str(fault.get("message", "") if isinstance(fault, dict) else fault)
    placement = "no valid host" in message.lower() or "maximum number of retries" in message.lower()
    if (role or roles.get(name)) in ("seed", "manager") and opts.managers > 1 and placement:
        return CloudError(f"server {name} went to ERROR: {message} (the {opts.managers} managers are in the "
                          f"anti-affinity server group bakery-{opts.cluster}-managers, so each needs a compute host "
                          "of its own: use fewer --managers, a cloud or availability zone with that many hosts, "
                          "or a smaller flavor)")
    return server_fault(name, server)


def wait_active(conn: Any, ids: dict[str, str], opts: UpOptions, progress: Progress,
                clock: Clock) -> dict[str, Any]:
    """Wait until every server is ACTIVE; returns name -> server (with its addresses)."""
    pending = dict(ids)
    done: dict[str, Any] = {}
    deadline = clock.now() + opts.timeout
    retry = Poll()
    while pending:
        for name, ident in list(pending.items()):
            try:
                server = retry.get(partial(conn.compute.get_server, ident))
            except Exception as exc:
                raise cloud_error(exc, f"watching {name}") from exc
            if server is None:
                continue
            if server.status == "ERROR":
                raise manager_fault(opts, name, server)
            if server.status == "ACTIVE":
                progress(f"{name} is ACTIVE")
                done[name] = server
                del pending[name]
        if pending and clock.now() >= deadline:
            raise CloudError(f"not ACTIVE within {opts.timeout:.0f}s: {', '.join(sorted(pending))}")
        if pending:
            clock.sleep(opts.poll)
    return done


def has_octavia(conn: Any) -> bool:
    """Clouds without Octavia have no load balancers of ours to find (and listing them would fail)."""
    try:
        return bool(conn.has_service("load-balancer"))
    except Exception:  # a catalog that cannot even be read fails in the next call with a clear message
        return False


def down(conn: Any, cluster: str, progress: Progress, clock: Clock | None = None) -> list[str]:
    """Delete what carries this cluster's mark (and its exactly-named anti-affinity server group, when the
    cluster is there), nothing else."""
    ledger = Ledger()
    servers = cluster_server_list(conn, cluster)  # by id: two servers of one name are both the cluster's
    for server in servers:
        ledger.add("server", server.id)
    kinds = ("floating_ip", "load_balancer", "port", "security_group")
    found: dict[str, list[Any]] = {}
    for kind in kinds if has_octavia(conn) else tuple(k for k in kinds if k != "load_balancer"):
        found[kind] = _tagged(conn, kind, cluster)
        for res in found[kind]:
            ledger.add(kind, res.id)
    # A floating IP bakery made on one of the cluster's ports and could not tag (a run killed between
    # creating and tagging it, on a cloud without tags in the create request) is the cluster's too.
    ours = {str(p.id) for p in found.get("port", [])} | {
        str(b.vip_port_id) for b in found.get("load_balancer", []) if getattr(b, "vip_port_id", None)}
    if ours:
        try:
            for ip in conn.network.ips():  # bakery's own (its description), never one the user attached
                if (ip.port_id and str(ip.port_id) in ours and access.is_ours_untagged(ip)
                        and ip.id not in {i for _, i in ledger.items}):
                    ledger.add("floating_ip", ip.id)
        except Exception as exc:
            raise cloud_error(exc, "listing floating IPs") from exc
    for name in access.owned_keypairs(_tagged(conn, "security_group", cluster)):
        ledger.add("keypair", name)
    # A server group has no tags: it is the cluster's by its exact name, its anti-affinity policy, and the
    # cluster being there (something tagged, or its members the cluster's servers). A look-alike of the
    # name in a project where the cluster is not stays.
    mine = {str(s.id) for s in servers}
    try:
        for group in conn.compute.server_groups():
            policies = [getattr(group, "policy", None), *(getattr(group, "policies", None) or [])]
            if (group.name == f"bakery-{cluster}-managers" and "anti-affinity" in policies
                    and (ledger.items or mine & set(getattr(group, "member_ids", None) or []))):
                ledger.add("server_group", group.id)
    except Exception as exc:
        raise cloud_error(exc, "listing server groups") from exc
    ledger.sort_for_deletion()
    if not ledger.items:
        progress(f"cluster {cluster}: nothing to delete")
    return delete_all(conn, ledger, progress, clock or Clock())
