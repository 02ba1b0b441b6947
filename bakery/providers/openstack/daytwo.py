"""Day two on OpenStack: `bakery up --provider openstack` re-run with other counts, `bakery roll` (fleet decides).

The cluster's members are its tagged servers (name `CLUSTER-ROLE-N`, role from the metadata
`bakery.role`, running = Nova ACTIVE) and what the swarm says of them through a manager's mutual-TLS
Docker API (the docker SDK, as ready.py). A node is booted with up.py's code (the shared groups and
the anti-affinity group found again, a port of its own for a manager, user-data freshly rendered,
never `form`), and deleted with what bakery made for it alone: the server, its tagged port, and the
cluster's floating IP on that port (moved to another manager's port when there is one, else released).

`--wait active` (servers that run no cloud-init, e.g. the test cloud's fake driver): the swarm is not
asked at all. Ready means ACTIVE; a node that goes is only deleted (nothing is drained, demoted or
removed from a swarm), and the plan says so on every line; the quorum simulation counts the managers
ACTIVE in Nova as the swarm's. Without it, a swarm that no manager's API answers for is a swarm
without quorum: fleet refuses any change, with the reason.

Member names are the server names without the `CLUSTER-` prefix (`seed`, `manager-2`, `worker-1`),
as fleet names new nodes; server names, plan lines and messages carry the prefix.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import fleet
from ...config import ClusterConfig
from ...errors import BakeryError, CloudError, UserError
from . import up as ou
from .cloud import Clock
from .errors import cloud_error
from .ledger import Ledger, delete_all

Progress = Callable[[str], None]
ROLL_SANS = (" (a new address, not in the managers' certificates: `bakery roll --provider openstack` "
             "re-issues them with it)")
JOURNAL = "roll.json"
RECORD = "openstack.json"
NOT_ASKED = "--wait active: the swarm is not asked"
BOOTING = ("BUILD", "REBUILD", "REBOOT", "HARD_REBOOT")
LIMIT = fleet.OPENSTACK_LIMIT


def state_file(cluster: str, state_root: Path | None, name: str) -> Path:
    from ...state import cluster_dir, private_dir

    return private_dir(cluster_dir(cluster, state_root)) / name


@contextmanager
def exclusive(cluster: str, state_root: Path | None) -> Iterator[None]:
    """One day-two run per cluster at a time from this state dir (a second is refused, not queued)."""
    fd = os.open(state_file(cluster, state_root, "day2.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise fleet.Refused(f"another `bakery up`, `roll` or `down` is changing cluster {cluster} now",
                                fix="wait for it to finish (or stop it), then re-run") from None
        yield
    finally:
        os.close(fd)


# --- the swarm through the docker SDK ------------------------------------------------------------


def _title(value: Any) -> str:
    return str(value or "").capitalize()


class DockerSwarm:
    """fleet.Swarm over a manager's TLS Docker API; hostnames as member names (the cluster prefix dropped)."""

    def __init__(self, client: Any, cluster: str) -> None:
        self.client, self.prefix = client, f"{cluster}-"

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        import docker.errors
        import requests.exceptions

        try:
            return action()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise BakeryError(f"the swarm, {what}: {str(exc).strip().splitlines()[0][:300] if str(exc) else exc}"
                              ) from exc

    def member_name(self, hostname: str) -> str:
        from .ready import short

        name = short(hostname)
        return name[len(self.prefix):] if name.startswith(self.prefix) else name

    def nodes(self) -> list[dict[str, str]]:
        out = []
        for a in self._call("listing nodes", self.client.api.nodes):
            manager = a.get("ManagerStatus") or {}
            out.append({"ID": str(a["ID"]), "Hostname": self.member_name(a.get("Description", {}).get("Hostname", "")),
                        "Status": _title(a.get("Status", {}).get("State", "unknown")),
                        "Availability": _title(a.get("Spec", {}).get("Availability", "")),
                        "ManagerStatus": "Leader" if manager.get("Leader") else _title(manager.get("Reachability"))})
        return out

    def _update(self, node_id: str, **spec: str) -> None:
        def go() -> None:
            node = self.client.api.inspect_node(node_id)
            self.client.api.update_node(node_id, node["Version"]["Index"], {**node["Spec"], **spec})

        self._call(f"updating node {node_id}", go)

    def drain(self, node_id: str) -> None:
        self._update(node_id, Availability="drain")

    def demote(self, node_id: str) -> None:
        self._update(node_id, Role="worker")

    def remove(self, node_id: str, force: bool) -> None:
        self._call(f"removing node {node_id}", lambda: self.client.api.remove_node(node_id, force=force))

    def _services(self) -> dict[str, dict[str, Any]]:
        return {s["ID"]: s for s in self._call("listing services", self.client.api.services)}

    def _tasks(self, **filters: str) -> list[dict[str, Any]]:
        return list(self._call("listing tasks", lambda: self.client.api.tasks(filters=filters)))

    def tasks(self, node_id: str) -> list[tuple[str, str]]:
        """Every task the node has, whatever its desired state (a draining one is desired Shutdown while
        it still runs): (service, current state)."""
        names = {i: s.get("Spec", {}).get("Name", i) for i, s in self._services().items()}
        return [(names.get(t.get("ServiceID", ""), t.get("ServiceID", "")), _title(t.get("Status", {}).get("State")))
                for t in self._tasks(node=node_id)]

    def desired(self) -> dict[str, int]:
        return {s.get("Spec", {}).get("Name", i): int(mode["Replicated"].get("Replicas", 0))
                for i, s in self._services().items() if "Replicated" in (mode := s.get("Spec", {}).get("Mode", {}))}

    def running(self, service: str) -> int:
        """Tasks of the service Running now that are meant to (desired running): `docker service ps` counts."""
        return sum(1 for t in self._tasks(service=service, **{"desired-state": "running"})
                   if t.get("Status", {}).get("State") == "running")


class NotAsked:
    """fleet.Swarm under --wait active: lists no node (so a node that goes is only deleted); any change refused."""

    def nodes(self) -> list[dict[str, str]]:
        return []

    def _refuse(self, *_: Any) -> Any:
        raise BakeryError(f"{NOT_ASKED}; nothing can be changed in it")

    drain = demote = tasks = _refuse

    def desired(self) -> dict[str, int]:
        return {}

    def running(self, service: str) -> int:
        return 0

    def remove(self, node_id: str, force: bool) -> None:
        self._refuse()


# --- the driver ------------------------------------------------------------------------------------


@dataclass
class OpenStackDriver:
    """fleet.Driver over the cluster's tagged Nova servers."""

    conn: Any
    opts: ou.UpOptions
    cfg: ClusterConfig
    state_root: Path | None
    progress: Progress
    asked: bool = True  # False under --wait active
    clock: Clock = field(default_factory=Clock)
    client_for: Callable[[str], Any] | None = None  # address -> docker client (default: ready.tls_client)
    limit: int = LIMIT
    last_error: str = ""
    restored: list[str] = field(default_factory=list)  # what restore() put back
    removed: list[str] = field(default_factory=list)  # and what it took away (an old --operator-cidr)
    _found: tuple[Any, ...] | None = None
    _booted: set[str] = field(default_factory=set)

    @property
    def prefix(self) -> str:
        return f"{self.opts.cluster}-"

    def server_name(self, name: str) -> str:
        return self.prefix + name

    def servers(self) -> dict[str, Any]:
        """Member name -> server, for the servers named CLUSTER-... that carry the cluster's metadata."""
        return {n[len(self.prefix):]: s for n, s in ou.cluster_servers(self.conn, self.opts.cluster).items()
                if n.startswith(self.prefix)}

    def _ports(self) -> dict[str, Any]:
        return {p.name: p for p in ou._tagged(self.conn, "port", self.opts.cluster)}

    def _address(self, server: Any, ports: dict[str, Any], fips: list[Any]) -> str:
        """Where this machine reaches a server: the floating IP on its port, else its port's or Nova's fixed IP."""
        port = ports.get(server.name)
        if port is not None:
            for fip in fips:
                if fip.port_id == port.id:
                    return str(fip.floating_ip_address)
            return str(port.fixed_ips[0]["ip_address"])
        return ou.fixed_ip(server)

    def _client(self, address: str) -> Any:
        if self.client_for is not None:
            return self.client_for(address)
        from ...state import client_cert_dir
        from .ready import tls_client

        return tls_client(address, self.cfg.docker.api_port, client_cert_dir(self.opts.cluster, self.state_root))

    def _manager(self, avoid: Sequence[str] = ()) -> tuple[DockerSwarm, list[dict[str, str]]] | None:
        """The first ACTIVE manager (the seed first) whose API lists the swarm's nodes."""
        servers = self.servers()
        ports, fips = self._ports(), ou._tagged(self.conn, "floating_ip", self.opts.cluster)
        managers = sorted((n for n, s in servers.items() if _role(s) in fleet.MANAGER_ROLES
                           and s.status == "ACTIVE" and n not in avoid),
                          key=lambda n: (_role(servers[n]) != "seed", fleet._index(n)))
        for name in managers:
            if _portless(servers[name], ports):
                self.last_error = f"{self.server_name(name)} has no address (its port was deleted)"
                continue
            address = self._address(servers[name], ports, fips)
            try:
                swarm = DockerSwarm(self._client(address), self.opts.cluster)
                return swarm, swarm.nodes()
            except (BakeryError, CloudError, KeyError) as exc:
                self.last_error = f"{self.server_name(name)} at {address}: {exc}"
        return None

    def members(self) -> list[fleet.Member]:
        servers = self.servers()
        if not self.asked:  # the managers ACTIVE in Nova stand for the swarm's (nothing else can be known)
            # Every server stands for a swarm member; a manager is reachable when ACTIVE.
            return [fleet.Member(name=n, role=_role(s), running=s.status == "ACTIVE", in_swarm=_role(s) != "consul",
                                 status="Ready" if s.status == "ACTIVE" else "Down",
                                 manager_status=("Reachable" if s.status == "ACTIVE" else "Unreachable")
                                 if _role(s) in fleet.MANAGER_ROLES else "")
                    for n, s in sorted(servers.items())]
        asked = self._manager()
        return fleet.members_of([(n, _role(s), s.status == "ACTIVE") for n, s in sorted(servers.items())],
                                asked[1] if asked else None)

    def swarm(self, avoid: Sequence[str] = ()) -> fleet.Swarm:
        if not self.asked:
            return NotAsked()
        asked = self._manager(avoid)
        if asked is None:
            raise fleet.Stopped(f"no ACTIVE manager of cluster {self.opts.cluster} (other than "
                                f"{', '.join(avoid) or 'none'}) answers on its Docker API ({self.last_error}); "
                                "re-run when one does")
        return asked[0]

    def running(self, name: str) -> bool:
        """ACTIVE, or still booting (fleet's Ready wait stops at once on a node that is not running). A server
        this run booted that went to ERROR counts as running, so that the Ready wait's next look (ready())
        reports its fault rather than "stopped while booting"."""
        server = self.servers().get(name)
        if server is None:
            return False
        return server.status in ("ACTIVE", *BOOTING) or (server.status == "ERROR" and name in self._booted)

    def ready(self, names: Sequence[str]) -> dict[str, bool]:
        servers = self.servers()
        for name in names:
            if name in servers and servers[name].status == "ERROR":
                managers = sum(1 for s in servers.values() if _role(s) in fleet.MANAGER_ROLES)
                raise ou.manager_fault(dataclasses.replace(self.opts, managers=managers), servers[name].name,
                                       servers[name], role=_role(servers[name]))
        active = {n: n in servers and servers[n].status == "ACTIVE" for n in names}
        if not self.asked:
            return active
        asked = self._manager()
        listed = asked[1] if asked else []
        return {n: active[n] and any(e["Hostname"] == n and e["Status"] == "Ready" and
                                     bool(e["ManagerStatus"]) == (_role(servers[n]) in fleet.MANAGER_ROLES)
                                     for e in listed) for n in names}

    def _resolved(self) -> tuple[Any, ...]:
        """(flavor, image, network, security groups, server group id), looked up once per run."""
        if self._found is None:
            flavor, image, network = ou.resolve(self.conn, self.opts)
            sgs, group_id = ou.ensure_shared(self.conn, self.opts, self.cfg, Ledger())
            self._found = (flavor, image, network, sgs, group_id)
        return self._found

    def restore(self, dry_run: bool) -> list[str]:
        """What a re-run of `up` puts back when it went missing (deleted by hand, or a first `up` cut short):
        the security groups and their rules, the keypair, the managers' server group, the tagged floating
        IP of the seed's port (else the first manager's, where it moves when the seed goes) and of the load
        balancer's VIP, and the balancer's listener, pool, monitor and members. The lines say what was
        restored. `--lb` asks for a balancer the cluster must already have: its VIP is in the managers'
        certificates, so one made now would not be (refused, with the way to get one)."""
        from . import lb

        opts = self.opts
        ou.check_services(self.conn, opts)
        tag = ou.cluster_tag(opts.cluster)
        balancer = lb.the_balancer(self.conn, opts.cluster, tag) if opts.lb or ou.has_octavia(self.conn) else None
        if balancer is not None and not opts.lb:  # the cluster's API front stays in play without the flag
            self.opts = opts = dataclasses.replace(opts, lb=True)
        if opts.lb and balancer is None:
            raise UserError(
                f"cluster {opts.cluster} has no load balancer (bakery-{opts.cluster}-api): `--lb` makes one only "
                "with a new cluster, whose managers' certificates name its address",
                fix=f"re-run without --lb, or `bakery down --provider openstack --cluster {opts.cluster}` and "
                    "`bakery up --lb` again")
        if dry_run:
            return []
        restored: list[str] = []
        flavor, image, network = ou.resolve(self.conn, opts)
        subnet = ou.subnet_of(self.conn, network) if balancer is not None else None
        before = _recorded(opts.cluster, self.state_root).get("operator_cidr")
        stale = frozenset({before}) if isinstance(before, str) and before != opts.operator_cidr else frozenset()
        sgs, group_id = ou.ensure_shared(self.conn, opts, self.cfg, Ledger(), subnet.cidr if subnet else None,
                                         restored, self.removed, stale)
        self._found = (flavor, image, network, sgs, group_id)
        if opts.floating_network:
            restored += self._restore_floating_ips(balancer)
        if balancer is not None and subnet is not None:
            ports = self._ports()
            managers = {s.name: self._fixed(s, ports) for s in self.servers().values()
                        if _role(s) in fleet.MANAGER_ROLES and s.status != "ERROR" and not _portless(s, ports)}
            lb.ensure_api(self.conn, balancer, opts.cluster, tag, self.cfg.docker.api_port, opts.operator_cidr,
                          managers, subnet.id, opts.timeout, self.clock, restored)
        for line in restored:
            self.progress(f"restored: {line}")
        for line in self.removed:
            self.progress(f"removed: {line}")
        return restored

    def docker_host(self) -> str | None:
        """The API the operator reaches the swarm by now (what `bakery certs` prints): the balancer's
        floating IP, else its VIP, else the floating IP on a manager's port (the seed's first), else the
        seed's (or first manager's) fixed IP; None without a manager."""
        from . import lb
        from .ready import docker_url

        port = self.cfg.docker.api_port
        fips = ou._tagged(self.conn, "floating_ip", self.opts.cluster)
        balancer = lb.the_balancer(self.conn, self.opts.cluster, ou.cluster_tag(self.opts.cluster)) \
            if self.opts.lb else None
        if balancer is not None:
            on_vip = [f for f in fips if f.port_id == balancer.vip_port_id]
            return docker_url(str(on_vip[0].floating_ip_address if on_vip else balancer.vip_address), port)
        servers, ports = self.servers(), self._ports()
        managers = sorted((s for s in servers.values() if _role(s) in fleet.MANAGER_ROLES and s.status != "ERROR"),
                          key=lambda s: (_role(s) != "seed", fleet._index(s.name.removeprefix(self.prefix))))
        if not managers:
            return None
        return docker_url(min((self._address(s, ports, fips) for s in managers),
                              key=lambda a: a not in {str(f.floating_ip_address) for f in fips}), port)

    def _fixed(self, server: Any, ports: dict[str, Any]) -> str:
        port = ports.get(server.name)
        return str(port.fixed_ips[0]["ip_address"]) if port is not None else ou.fixed_ip(server)

    def _restore_floating_ips(self, balancer: Any) -> list[str]:
        from . import access, lb

        opts, tag = self.opts, ou.cluster_tag(self.opts.cluster)
        external = access.external_network(self.conn, str(opts.floating_network))
        fips = ou._tagged(self.conn, "floating_ip", opts.cluster)
        on = {f.port_id for f in fips}
        restored = []
        ports, servers = self._ports(), self.servers()
        managers = [s for _, s in sorted(servers.items(), key=lambda kv: (_role(kv[1]) != "seed", fleet._index(kv[0])))
                    if _role(s) in fleet.MANAGER_ROLES and s.name in ports]
        # One in ERROR keeps its floating IP here: it moves to another manager when that server is deleted.
        holders = [ports[s.name] for s in managers if s.status != "ERROR"]
        if holders and not any(ports[s.name].id in on for s in managers):
            for holder in holders:  # a manager whose port holds someone else's floating IP is passed over
                fip, how = access.ensure_floating_ip_how(self.conn, tag, external.id, holder.id, holder.name)
                if how != "foreign":
                    restored.append(f"floating IP {fip.floating_ip_address} on {holder.name}{_sans_note(how)}")
                    break
                self.progress(f"{holder.name}'s port has a floating IP bakery did not make "
                              f"({fip.floating_ip_address}): left as it is")
        if balancer is not None and balancer.vip_port_id not in on:
            fip, how = access.ensure_floating_ip_how(self.conn, tag, external.id, balancer.vip_port_id,
                                                     lb.lb_name(opts.cluster))
            if how != "foreign":
                restored.append(f"floating IP {fip.floating_ip_address} on load balancer {balancer.name}"
                                f"{_sans_note(how)}")
        return restored

    def boot(self, name: str, role: str, progress: Progress) -> None:
        from ... import certs, state

        full = self.server_name(name)
        stale = self.servers().get(name)
        if stale is not None:  # left by a run that stopped (ERROR, SHUTOFF): booted afresh
            progress(f"{full} is {stale.status}: deleting it to boot it again")
            self._delete_server(name, stale)
        flavor, image, network, sgs, group_id = self._resolved()
        ports: dict[str, Any] = {}
        if role in fleet.MANAGER_ROLES:
            ports[full] = ou.ensure_port(self.conn, self.opts, full, network.id,
                                         [sgs[g] for g in ou.groups_for(role, self.opts.cluster)], Ledger())
        cdir = state.cluster_dir(self.opts.cluster, self.state_root)
        if full in certs.node_names(cdir):  # a name used before: the new node gets a new identity
            certs.renew(cdir, [full])
        if self.asked:
            self._forget(name)
        ou.boot_server(self.conn, self.opts, self._node_config(full, role, ports.get(full)), self.state_root,
                       (flavor, image, network, ports, group_id), role, full, False,
                       ou.group_refs(self.conn, self.opts.cluster))
        self._booted.add(name)
        progress(f"booting {full} ({role})")
        if role in fleet.MANAGER_ROLES and full in ports:
            self._lb_add(full, str(ports[full].fixed_ips[0]["ip_address"]), network)

    def _lb_add(self, full: str, address: str, network: Any) -> None:
        """A new manager joins the load balancer's pool (`up --lb`): the API front follows the managers."""
        from . import lb

        if not self.opts.lb or not ou.has_octavia(self.conn):
            return
        tag = ou.cluster_tag(self.opts.cluster)
        balancer = lb.the_balancer(self.conn, self.opts.cluster, tag)
        if balancer is None:
            return
        lb.ensure_api(self.conn, balancer, self.opts.cluster, tag, self.cfg.docker.api_port, self.opts.operator_cidr,
                      {full: address}, ou.subnet_of(self.conn, network).id, self.opts.timeout, self.clock)
        self.progress(f"load balancer {balancer.name}: {full} ({address}) added to the pool")

    def _lb_remove(self, full: str, address: str) -> None:
        from . import lb

        if not self.opts.lb or not ou.has_octavia(self.conn):
            return
        tag = ou.cluster_tag(self.opts.cluster)
        balancer = lb.the_balancer(self.conn, self.opts.cluster, tag)
        if balancer is not None and lb.remove_member(self.conn, balancer, tag, address, self.opts.timeout, self.clock):
            self.progress(f"load balancer {balancer.name}: {full} ({address}) taken out of the pool")

    def _node_config(self, full: str, role: str, port: Any) -> ClusterConfig:
        """The cluster definition a new node is rendered with: the swarm's seed (the seed's fixed IP while
        there is one, else the lowest numbered manager's) and every manager's fixed IP; the floating IPs and
        the load balancer's VIP in the managers' certificates, as `up` puts them."""
        servers = self.servers()
        ports = self._ports()
        ips: dict[str, str] = {}
        for _, server in sorted(servers.items(), key=lambda kv: fleet._index(kv[0])):
            if _role(server) in fleet.MANAGER_ROLES:
                p = ports.get(server.name)
                ips[server.name] = str(p.fixed_ips[0]["ip_address"]) if p is not None else ou.fixed_ip(server)
        if port is not None:
            ips[full] = str(port.fixed_ips[0]["ip_address"])
        seed_name = next((s.name for s in servers.values() if _role(s) == "seed"), None)
        seed = ips.get(seed_name or "") or next(iter(ips.values()), "")
        extra = {str(f.floating_ip_address) for f in ou._tagged(self.conn, "floating_ip", self.opts.cluster)}
        if self.opts.lb and ou.has_octavia(self.conn):
            extra |= {str(b.vip_address) for b in ou._tagged(self.conn, "load_balancer", self.opts.cluster)}
        return dataclasses.replace(
            self.cfg, name=self.opts.cluster, tls_sans=tuple(sorted({*self.cfg.tls_sans, *extra})),
            swarm=dataclasses.replace(self.cfg.swarm, seed=seed,
                                      managers=tuple(ip for ip in ips.values() if ip != seed)))

    def _forget(self, name: str) -> None:
        """A Down entry left with this hostname (a node deleted by an earlier run): removed, so no node is
        listed twice."""
        asked = self._manager()
        if asked is not None:
            fleet.forget(asked[0], name, asked[1])

    def leave(self, name: str) -> bool:
        """`docker swarm leave` through the node's own TLS API (where this machine reaches it)."""
        server = self.servers().get(name)
        if not self.asked or server is None or server.status != "ACTIVE":
            return False
        address = self._address(server, self._ports(), ou._tagged(self.conn, "floating_ip", self.opts.cluster))
        try:
            client = self._client(address)
            DockerSwarm(client, self.opts.cluster)._call("leaving", client.api.leave_swarm)
        except BakeryError as exc:
            self.progress(f"{server.name}: `docker swarm leave` through {address} failed ({exc}); it is removed "
                          "from the swarm by a manager")
            return False
        return True

    def delete(self, name: str) -> None:
        server = self.servers().get(name)
        if server is not None:
            self._delete_server(name, server)

    def _delete_server(self, name: str, server: Any) -> None:
        """The server, its tagged port and the cluster's floating IP on that port; nothing else. The floating
        IP moves to another manager's port instead when there is one (it is in every manager's certificate)."""
        ledger = Ledger()
        ports = self._ports()
        port = ports.get(server.name)
        ledger.add("server", str(server.id))
        if port is not None:
            if _role(server) in fleet.MANAGER_ROLES:  # out of the API front before it goes
                self._lb_remove(server.name, str(port.fixed_ips[0]["ip_address"]))
            ledger.add("port", str(port.id))
            others = [p for n, p in sorted(ports.items(), key=lambda kv: fleet._index(kv[0]))
                      if n != server.name and n.removeprefix(self.prefix) in self.servers()]
            for fip in ou._tagged(self.conn, "floating_ip", self.opts.cluster):
                if fip.port_id != port.id:
                    continue
                if others:
                    try:
                        self.conn.network.update_ip(fip, port_id=others[0].id)
                    except Exception as exc:
                        raise cloud_error(exc, f"moving floating IP {fip.floating_ip_address} to {others[0].name}"
                                          ) from exc
                    self.progress(f"floating IP {fip.floating_ip_address} moved to {others[0].name}")
                else:
                    ledger.add("floating_ip", str(fip.id))
        ledger.sort_for_deletion()
        problems = delete_all(self.conn, ledger, self.progress, self.clock)
        if problems:
            raise fleet.Stopped(f"{server.name}: not everything was deleted ({'; '.join(problems)}); re-run to retry")


def _role(server: Any) -> str:
    return str((server.metadata or {}).get("bakery.role", "worker"))


# --- plans, as this provider words them ------------------------------------------------------------


def describer(driver: OpenStackDriver) -> Callable[[fleet.Change], str]:
    """fleet's wording with server names; under --wait active what is (not) done, on every line."""
    full = driver.server_name

    def describe(c: fleet.Change) -> str:
        if driver.asked:
            return dataclasses.replace(c, node=full(c.node), replaces=full(c.replaces) if c.replaces else None
                                       ).describe()
        if c.kind == "add":
            then = f" to replace server {full(c.replaces)}," if c.replaces else ""
            return f"boot server {full(c.node)} ({c.role}){then} and wait until ACTIVE ({NOT_ASKED})"
        return f"delete server {full(c.node)} ({NOT_ASKED}, nothing is drained)"

    return describe


def _unreachable(driver: OpenStackDriver, exc: UserError) -> UserError:
    """fleet's no-quorum refusal, with why no manager answered and the --wait active seam named."""
    if not driver.last_error or "no quorum" not in exc.message:
        return exc
    return UserError(f"{exc.message}; last answer: {driver.last_error}",
                     fix=f"{exc.fix}. On a cloud whose servers run no cloud-init (no swarm to ask), "
                         "--wait active deletes and boots servers without asking the swarm")


def _sans_note(how: str) -> str:
    """What a restored floating IP means for the certificates: a new address is in none of them."""
    return ROLL_SANS if how == "created" else f" ({how}: its address is the one the certificates name)"


def _portless(server: Any, ports: dict[str, Any]) -> bool:
    """A server whose tagged port is gone and that Nova gives no address: it can serve no one."""
    return server.name not in ports and not any(addrs for addrs in (server.addresses or {}).values())


def converge(driver: OpenStackDriver, dry_run: bool,
             timeouts: fleet.Timeouts) -> tuple[fleet.Plan, list[tuple[str, float]]]:
    """`up` on a cluster that has servers: ERROR servers replaced, then fleet's plan to the counts asked for."""
    with exclusive(driver.opts.cluster, driver.state_root):
        journal = state_file(driver.opts.cluster, driver.state_root, JOURNAL)
        if journal.exists():
            raise fleet.Refused(f"a roll of cluster {driver.opts.cluster} stopped part way ({journal}): changing "
                                "the counts now could retire its fresh nodes and keep the old ones",
                                fix="finish it with `bakery roll --provider openstack`, then re-run")
        driver.restored = driver.restore(dry_run)
        opts = driver.opts
        # In ERROR, or a manager whose tagged port was deleted (no address left: it can serve no one, and
        # nothing can be rendered with its address): retired and booted again as the counts need.
        ports = driver._ports()
        failed = {n: s for n, s in driver.servers().items()
                  if s.status == "ERROR" or (_role(s) in fleet.MANAGER_ROLES and _portless(s, ports))}
        if failed:  # deleting them is retiring them: never past the majority (Nova's ERROR is not the swarm's)
            try:
                fleet.check_quorum(driver.members(), [fleet.Change("retire", n, _role(s)) for n, s in failed.items()])
            except UserError as exc:
                raise _unreachable(driver, exc) from None
        if not dry_run:
            for name, server in sorted(failed.items()):
                why = "is in ERROR" if server.status == "ERROR" else "lost its port (no address)"
                driver.progress(f"{server.name} {why}: deleting it (the plan boots what the counts need)")
                # Its port goes, its floating IP moves to another manager, it leaves the API front, and
                # what the swarm lists under its name is demoted and removed (else a ghost in the count).
                driver._delete_server(name, server)
                if driver.asked:
                    driver._forget(name)
        try:  # a dry run plans as the run would, after the servers in ERROR are deleted
            plan = fleet.plan_scale([m for m in driver.members() if m.name not in failed], opts.managers,
                                    opts.workers, opts.consul, driver.limit)
        except UserError as exc:
            raise _unreachable(driver, exc) from None
        if dry_run and failed:
            plan.notes.append(f"in ERROR, deleted first: {', '.join(map(driver.server_name, sorted(failed)))}")
        if dry_run:
            return plan, []
        # what `roll` boots with: recorded once the plan is allowed; with the API as it is now
        save_options(opts, driver.state_root, docker_host=driver.docker_host())
        if not plan.changes:
            return plan, []
        _check_quota(driver, plan)
        return plan, fleet.run_plan(driver, plan, driver.progress, timeouts)


def _check_quota(driver: OpenStackDriver, plan: fleet.Plan) -> None:
    from . import access

    flavor = driver._resolved()[0]
    access.check_compute_quota(driver.conn, flavor, sum(1 for c in plan.changes if c.kind == "add"))


def roll(driver: OpenStackDriver, only: Sequence[str] | None, dry_run: bool,
         timeouts: fleet.Timeouts, asked_image: str | None = None) -> tuple[fleet.Plan, list[tuple[str, float]], str]:
    """Replace servers one at a time (fleet.plan_roll), continuing an interrupted roll's journal (roll.json in
    the cluster's state dir: the image and which new node replaces which). Returns the image rolled to."""
    opts = driver.opts
    with exclusive(opts.cluster, driver.state_root):
        path = state_file(opts.cluster, driver.state_root, JOURNAL)
        journal: dict[str, Any] = fleet.read_journal(path, opts.cluster) if path.exists() else {}
        if journal:
            if only and sorted(set(only)) != sorted(set(journal.get("only") or [])):
                raise UserError(f"a roll of cluster {opts.cluster} stopped part way ({path}); finish it first",
                                fix="re-run `bakery roll` without --nodes (it continues), or remove the journal")
            if asked_image is not None and asked_image != journal["image"]:
                raise UserError(f"a roll to {journal['image']} stopped part way ({path}); --image names another",
                                fix="re-run without --image to finish it, then roll again to the new image")
            driver.progress(f"continuing the roll recorded in {path}")
            driver.opts = opts = dataclasses.replace(opts, image=journal["image"])
        try:
            plan = fleet.plan_roll(driver.members(), only or journal.get("only"), driver.limit,
                                   done=journal.get("pairs") or {})
        except UserError as exc:
            raise _unreachable(driver, exc) from None
        if dry_run:
            return plan, [], opts.image
        if not plan.changes:
            if journal:  # stopped after its last change: the roll is done
                save_options(opts, driver.state_root)
                path.unlink()
            return plan, [], opts.image
        try:
            ou.resolve(driver.conn, opts)  # a wrong --image stops before the journal is written
        except UserError as exc:
            if not journal:
                raise
            raise UserError(f"{exc.message}; it is the image of the roll that stopped part way ({path})",
                            fix=f"remove {path} and roll again (to --image IMAGE)") from None
        fleet.write_journal(path, opts.cluster, opts.image, only or journal.get("only") or [],
                            fleet.merged_pairs(journal, plan))
        _check_quota(driver, plan)
        timed = fleet.run_plan(driver, plan, driver.progress, timeouts)
        save_options(opts, driver.state_root)  # the next roll's default image is this one
        path.unlink()
        return plan, timed, opts.image


# --- what `up` used, for `roll` ----------------------------------------------------------------------

RECORDED = ("flavor", "image", "network", "operator_cidr", "floating_network", "lb", "consul")


def save_options(opts: ou.UpOptions, state_root: Path | None, formed: bool = True,
                 docker_host: str | None = None) -> None:
    """What `roll` boots replacements with: the last `up`'s flavor, image, network and access options.
    `formed` False: a first `up` is under way (with its counts), until it has finished. `docker_host`: the
    API the first `up` told the operator to use (`bakery certs` prints it), kept by later saves."""
    path = state_file(opts.cluster, state_root, RECORD)
    data = {k: getattr(opts, k) for k in RECORDED} | {"key_name": opts.keypair, "formed": formed}
    if not formed:
        data |= {"managers": opts.managers, "workers": opts.workers}
    host = docker_host or recorded_docker_host(path)
    if host:
        data["docker_host"] = host
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _read_record(path: Path) -> dict[str, Any]:
    """An OpenStack cluster's record (openstack.json), {} when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _recorded(cluster: str, state_root: Path | None) -> dict[str, Any]:
    """The last `up`'s record of the cluster."""
    return _read_record(state_file(cluster, state_root, RECORD))


def recorded_docker_host(path: Path) -> str | None:
    """The `docker_host` of an OpenStack cluster's record (openstack.json), if it has one."""
    host = _read_record(path).get("docker_host")
    return host if isinstance(host, str) and host.startswith("tcp://") else None


def unfinished_first_up(cluster: str, state_root: Path | None) -> dict[str, int] | None:
    """The counts of a first `up` from this state dir that stopped before it finished (Ctrl-C, a boot that
    failed), else None: its re-run continues that `up` (it boots what is missing and keeps what is there)
    rather than converging a swarm that may never have formed."""
    path = state_file(cluster, state_root, RECORD)
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("formed", True) is not False:
        return None
    counts = {k: data.get(k) for k in ("managers", "workers")}
    found = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}
    m, w = found.get("managers", 3), found.get("workers", 2)
    if not (1 <= m <= 99 and m % 2 == 1 and 0 <= w <= 999):
        raise UserError(f"{path} records a first `up` of {m} manager(s) and {w} worker(s): not a cluster bakery "
                        "makes (an odd number of managers, 1 to 99; 0 to 999 workers)",
                        fix=f"remove {path} and run `bakery down --provider openstack --cluster {cluster}`, or fix "
                            "the counts in it")
    if data.get("lb") is True:
        found["lb"] = 1  # the first `up` was asked for a load balancer: its continuation makes it too
    return found


def forget_day_two(cluster: str, state_root: Path | None) -> None:
    """After `down` removed everything: the roll journal and the recorded `up` options go too."""
    for name in (JOURNAL, RECORD):
        state_file(cluster, state_root, name).unlink(missing_ok=True)


def load_options(cluster: str, state_root: Path | None, image: str | None, timeout: float) -> ou.UpOptions:
    """The recorded options, with --image (a Glance image) instead of the recorded one when given."""
    path = state_file(cluster, state_root, RECORD)
    if not path.exists():
        raise UserError(f"no record of how cluster {cluster} was booted ({path})",
                        fix="run the `bakery up --provider openstack` that made it once more (same options, same "
                            "--state-dir): it records the flavor, image and network `roll` boots with")
    try:
        data = json.loads(path.read_text())
        recorded = {k: data[k] for k in RECORDED} | ({"image": image} if image else {})
        if not all(isinstance(recorded[k], str) for k in ("flavor", "image", "network", "operator_cidr")):
            raise ValueError("flavor, image, network and operator_cidr must be strings")
        if not all(isinstance(v, (str, type(None))) for v in (recorded["floating_network"], data.get("key_name"))):
            raise ValueError("floating_network and key_name must be strings or null")
        if not all(isinstance(recorded[k], bool) for k in ("lb", "consul")):
            raise ValueError("lb and consul must be true or false")
        import ipaddress

        ipaddress.ip_network(recorded["operator_cidr"], strict=False)
        return ou.UpOptions(cluster=cluster, **recorded, key_name=data.get("key_name"), managers=1, workers=0,
                            timeout=timeout)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is not a record of `bakery up` bakery can read ({exc.__class__.__name__}: "
                        f"{str(exc)[:100]})",
                        fix=f"remove it and run the `bakery up --provider openstack` that made cluster {cluster} "
                            "once more (same options, same --state-dir): it records them again") from None


def where(driver: OpenStackDriver) -> list[str]:
    """Each server and what the swarm says of it: the "which node is where" of a stopped change."""
    try:
        members = driver.members()
    except BakeryError as exc:
        return [f"(the cluster could not be read: {exc})"]
    return [f"{driver.server_name(m.name)} ({m.role}): {'ACTIVE' if m.running else 'not ACTIVE'}"
            + ("" if not driver.asked else f", {m.status}" + (f", {m.availability}" if m.availability else "")
               + (f", {m.manager_status}" if m.manager_status else "")) for m in members]
