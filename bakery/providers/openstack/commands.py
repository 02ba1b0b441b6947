"""`bakery up/down/nodes --provider openstack`: the options and the glue between the CLI and up.py/ready.py.

bakery/commands/{up,down,nodes}.py own --provider and the options the local
provider shares (--managers, --workers, --consul, --config, --cluster,
--state-dir, --timeout, --output); this module adds the OpenStack ones and
runs the provider. openstacksdk and docker are imported only when a command
runs, never for --help.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ... import fleet
from ...errors import EXIT_OK, UserError
from ...output import print_plan, print_table, teardown_result

READY_POLL = 5.0


def add_up_arguments(p: argparse.ArgumentParser) -> None:
    from .cloud import add_arguments as add_cloud

    g = p.add_argument_group("--provider openstack")
    add_cloud(g)  # type: ignore[arg-type]
    g.add_argument("--flavor", metavar="FLAVOR", help="the servers' flavor (name or id)")
    g.add_argument("--image", metavar="IMAGE", help="the image servers boot (a `bakery bake --target openstack` "
                   "image skips installing Docker)")
    g.add_argument("--network", metavar="NETWORK", help="the tenant network the servers share")
    g.add_argument("--operator-cidr", metavar="CIDR",
                   help="the only source allowed to the managers' TLS Docker API (2376), e.g. 198.51.100.7/32")
    g.add_argument("--key-name", metavar="NAME", help="the Nova keypair for SSH (imported from --public-key "
                   "when given; default name bakery-CLUSTER)")
    g.add_argument("--public-key", type=Path, metavar="FILE", help="an OpenSSH public key to import as the "
                   "keypair; `bakery down` deletes it")
    g.add_argument("--floating-ip", metavar="NETWORK", help="external network: a floating IP for the seed "
                   "(and the load balancer with --lb); released by `bakery down`")
    g.add_argument("--lb", action="store_true", help="an Octavia load balancer in front of the managers' TLS API")
    add_wait(g)


WAIT_HELP = ("ready: until every node is Ready in the swarm, asked through a manager's TLS Docker API (default); "
             "active: never contact the nodes (servers that run no cloud-init, e.g. a test cloud's fake driver): "
             "stop once every server is ACTIVE in Nova, and a server that goes is only deleted (nothing is "
             "drained, demoted or removed from a swarm; the plan says so on every line)")


def add_wait(g: Any) -> None:
    g.add_argument("--wait", choices=("ready", "active"), default="ready", help=WAIT_HELP)


def add_roll_arguments(p: argparse.ArgumentParser) -> None:
    from .cloud import add_arguments as add_cloud

    g = p.add_argument_group("--provider openstack (flavor, network and access: as the last `up` recorded them)")
    add_cloud(g)  # type: ignore[arg-type]
    add_wait(g)


def add_cloud_arguments(p: argparse.ArgumentParser) -> None:
    from .cloud import add_arguments as add_cloud

    add_cloud(p.add_argument_group("--provider openstack"))  # type: ignore[arg-type]


def up_options(args: argparse.Namespace, cluster: str) -> Any:
    from . import access
    from .up import UpOptions

    absent = [f"--{n.replace('_', '-')}" for n in ("flavor", "image", "network", "operator_cidr")
              if not getattr(args, n)]
    if absent:
        raise UserError(f"up --provider openstack needs {', '.join(absent)}",
                        fix="name the flavor, image and network, and the CIDR you reach the Docker API from")
    _check_cidr(args.operator_cidr)
    if args.unbaked or args.cache_dir:
        raise UserError("--unbaked and --cache-dir are for --provider local",
                        fix="for OpenStack, pass --image with a plain or baked image")
    return UpOptions(
        cluster=cluster, flavor=args.flavor, image=args.image, network=args.network,
        operator_cidr=args.operator_cidr, managers=args.managers, workers=args.workers, consul=args.consul,
        key_name=args.key_name, public_key=access.read_public_key(args.public_key) if args.public_key else None,
        floating_network=args.floating_ip, lb=args.lb, timeout=args.timeout)


def _check_cidr(value: str) -> None:
    import ipaddress

    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise UserError(f"--operator-cidr {value!r}: {exc}", fix="a network like 198.51.100.7/32") from exc
    if net.prefixlen == 0:
        raise UserError(f"--operator-cidr {value} opens the Docker API to the whole internet",
                        fix="name your own address or network, e.g. 198.51.100.7/32")
    if net.version != 4:
        raise UserError(f"--operator-cidr {value} is IPv6: bakery's security group rules are IPv4",
                        fix="name the IPv4 address or network you reach the cloud from, e.g. 198.51.100.7/32")


def tagged_name(name: str) -> str:
    """Cloud resources are tagged with the cluster's name, so it is never the implicit 'default'."""
    if name == "default":
        raise UserError("--provider openstack needs a cluster name: its resources are tagged with it",
                        fix="pass --cluster NAME or set cluster.name in the config")
    longest = f"{name}-manager-{fleet.OPENSTACK_LIMIT}"  # a server's name is its hostname and its certificate's name
    if len(longest) > 63:
        raise UserError(f"cluster name {name!r} is {len(name)} characters: its servers' names (as long as "
                        f"{longest!r}) must fit a 63-character hostname and certificate name",
                        fix=f"use at most {63 - len(longest) + len(name)} characters")
    return name


def run_up(args: argparse.Namespace, cluster: str) -> int:
    """A new cluster is made by up.up; one that has servers is converged by fleet (daytwo.converge)."""
    from ...commands.common import load_config
    from ...state import default_root
    from ..local.host import stderr_progress
    from . import daytwo
    from .cloud import connect
    from .up import cluster_servers, node_plan

    given = {"managers": args.managers if args.managers is not None else 3,
             "workers": args.workers if args.workers is not None else 2, "consul": bool(args.consul)}
    up_options(argparse.Namespace(**{**vars(args), **given}), cluster)  # the flags, before the cloud is asked
    conn = connect(args.os_cloud)
    servers = cluster_servers(conn, cluster)
    roles = [str((s.metadata or {}).get("bakery.role", "worker")) for s in servers.values()]
    state_dir = args.state_dir or default_root()
    unfinished = daytwo.unfinished_first_up(cluster, state_dir) if servers else None
    if unfinished is not None:  # continue the first `up`, with its counts where none are given
        servers, roles = {}, []
        args.managers = unfinished.get("managers", 3) if args.managers is None else args.managers
        args.workers = unfinished.get("workers", 2) if args.workers is None else args.workers
        args.lb = bool(args.lb or unfinished.get("lb"))
    # A count not given: a running cluster keeps what it has, a new one gets 3 managers and 2 workers.
    if args.managers is None:
        args.managers = fleet.kept_managers(roles.count("seed") + roles.count("manager"), cluster) if servers else 3
    if args.workers is None:
        args.workers = roles.count("worker") if servers else 2
    args.consul = ("consul" in roles) if args.consul is None else bool(args.consul)
    opts = up_options(args, cluster)
    cfg = load_config(args)
    progress = stderr_progress("bakery up")
    if servers:
        return _converge(args, daytwo.OpenStackDriver(conn, opts, cfg, state_dir, progress,
                                                      asked=args.wait != "active"))
    again = [f"the first `bakery up` of cluster {cluster} stopped before it finished: this run continues it "
             "(what is there is kept, what is missing is booted)"] if unfinished is not None else []
    if args.dry_run:
        lines = [f"{i}. boot {name} ({role})" for i, (role, name) in enumerate(node_plan(opts), 1)]
        return print_plan(args, cluster, False, lines, again)
    # The first up holds the cluster's lock, as day two does: a second `up` (it would boot a second seed
    # that forms a second swarm) or a `down` from this state dir is refused while it runs.
    with daytwo.exclusive(cluster, state_dir):
        if unfinished is None and cluster_servers(conn, cluster):
            raise fleet.Refused(f"another `bakery up` created cluster {cluster} while this one started",
                                fix="re-run `bakery up`: it converges the cluster that is there")
        return _first_up(args, conn, opts, cfg, state_dir, progress, again)


def _first_up(args: argparse.Namespace, conn: Any, opts: Any, cfg: Any, state_dir: Path, progress: Any,
              again: list[str]) -> int:
    from ...state import client_cert_dir
    from . import daytwo, ready
    from .up import up

    cluster = opts.cluster
    start = time.monotonic()
    for note in again:
        progress(note)
    daytwo.save_options(opts, state_dir, formed=False)
    result = up(conn, opts, cfg, state_dir, progress)
    certs = client_cert_dir(cluster, state_dir)
    host = ready.docker_url(result.api_address, cfg.docker.api_port)
    if args.wait == "active":
        daytwo.save_options(opts, state_dir, docker_host=host)  # finished: from now on a re-run converges
        return _report_active(args, cluster, result, certs, time.monotonic() - start)
    expected = {name: ("worker" if role == "worker" else "manager") for name, role in result.roles.items()
                if role != "consul"}
    progress(f"waiting for {len(expected)} node(s) to be Ready, through {result.seed_address}:{cfg.docker.api_port}")
    client = ready.tls_client(result.seed_address, cfg.docker.api_port, certs)
    nodes = ready.wait_ready(client, expected, args.timeout, READY_POLL, progress)
    daytwo.save_options(opts, state_dir, docker_host=host)  # the swarm formed: from now on a re-run converges
    seconds = time.monotonic() - start
    if args.output == "json":
        print(json.dumps({
            "cluster": cluster, "docker_host": host, "cert_path": str(certs), "seconds_to_ready": round(seconds, 1),
            "seed_ip": result.seed_ip, "seed_floating_ip": result.seed_floating_ip, "lb_vip": result.lb_vip,
            "lb_floating_ip": result.lb_floating_ip,
            "nodes": [{"name": n, "role": result.roles[n], "server_id": result.servers[n]} for n in result.servers],
            "swarm": [n.__dict__ for n in nodes]}, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"cluster {cluster}: {len(expected)} nodes Ready in {seconds:.0f}s")
    for node in nodes:
        print(f"  {node.hostname:24} {node.role:8} {node.state:8} {node.manager}".rstrip())
    print("Reach the swarm with:")
    print(f"  export DOCKER_HOST={host} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={certs}")
    print(f"Remove it with: bakery down --provider openstack --cluster {cluster}")
    return EXIT_OK


def _stopped(driver: Any, exc: Exception, rerun: str) -> Exception:
    from ... import fleet
    from . import daytwo

    return fleet.Stopped(f"{exc}\nwhere the nodes are now:\n  " + "\n  ".join(daytwo.where(driver))
                         + f"\nre-run `{rerun}` to continue")


def _notes(driver: Any, notes: list[str]) -> list[str]:
    if driver.asked:
        return notes
    return [*notes, "--wait active: the swarm is not asked: a server that goes is deleted without being drained, "
            "demoted or removed from a swarm, and the quorum check counts the managers ACTIVE in Nova"]


def _timeouts(args: argparse.Namespace) -> Any:
    """How long a node may take to be Ready (--timeout) and a drained node's tasks to move (--drain-timeout)."""
    return fleet.Timeouts(ready=args.timeout, drain=args.drain_timeout)


def _converge(args: argparse.Namespace, driver: Any) -> int:
    from ... import fleet
    from ...state import client_cert_dir
    from . import daytwo

    start = time.monotonic()
    try:
        plan, timed = daytwo.converge(driver, args.dry_run, _timeouts(args))
    except fleet.Stopped as exc:
        raise _stopped(driver, exc, "bakery up") from None
    lines = plan.lines(daytwo.describer(driver))
    notes = _notes(driver, plan.notes)
    cluster = driver.opts.cluster
    if args.dry_run:
        return print_plan(args, cluster, True, lines, notes)
    seconds = time.monotonic() - start
    servers = driver.servers()
    nodes = [{"name": s.name, "role": (s.metadata or {}).get("bakery.role", "-"), "server_id": s.id, "status": s.status}
             for _, s in sorted(servers.items())]
    changes = lines if plan.changes else []
    if args.output == "json":
        print(json.dumps({"cluster": cluster, "cert_path": str(client_cert_dir(cluster, driver.state_root)),
                          "changes": changes, "notes": notes, "nodes": nodes, "seconds": round(seconds, 1),
                          "restored": driver.restored, "removed": driver.removed,
                          "seconds_per_change": {driver.server_name(n): round(t, 1) for n, t in timed}},
                         indent=2, sort_keys=True))
        return EXIT_OK
    done = f"{len(plan.changes)} change(s) in {seconds:.0f}s" if plan.changes else "already as asked, nothing changed"
    if driver.restored or driver.removed:
        done = (f"{len(plan.changes)} change(s)" if plan.changes else "no node changed") + \
            f", {len(driver.restored)} missing resource(s) restored, {len(driver.removed)} rule(s) removed " \
            f"in {seconds:.0f}s"
    print(f"cluster {cluster}: {len(nodes)} servers, {done}")
    for line in changes + [f"restored: {r}" for r in driver.restored] + [f"removed: {r}" for r in driver.removed]:
        print(f"  {line}")
    for node in nodes:
        print(f"  {node['name']:24} {node['role']:8} {node['status']:8} {node['server_id']}")
    print(f"Remove it with: bakery down --provider openstack --cluster {cluster}")
    return EXIT_OK


def run_roll(args: argparse.Namespace,
             cluster: str) -> tuple[list[str], list[tuple[str, str]], dict[str, float], str, list[str]]:
    """`bakery roll --provider openstack`: (plan lines, (old, new) server names, seconds by server, image, notes)."""
    from ... import fleet
    from ...commands.common import load_config
    from ...state import default_root
    from ..local.host import stderr_progress
    from . import daytwo
    from .cloud import connect

    state_dir = args.state_dir or default_root()
    opts = daytwo.load_options(cluster, state_dir, args.image, args.timeout)
    driver = daytwo.OpenStackDriver(connect(args.os_cloud), opts, load_config(args), state_dir,
                                    stderr_progress("bakery roll"), asked=args.wait != "active")
    only = [n.removeprefix(f"{cluster}-") for n in args.nodes] if args.nodes else None
    try:
        plan, timed, image = daytwo.roll(driver, only, args.dry_run, _timeouts(args), args.image)
    except fleet.Stopped as exc:
        raise _stopped(driver, exc, "bakery roll --provider openstack") from None
    full = driver.server_name
    pairs = [(full(c.replaces), full(c.node)) for c in plan.changes if c.kind == "add" and c.replaces]
    took = {full(n): t for n, t in timed}
    return plan.lines(daytwo.describer(driver)), pairs, took, image, _notes(driver, plan.notes)


def _report_active(args: argparse.Namespace, cluster: str, result: Any, certs: Path, seconds: float) -> int:
    """`up --wait active`: every server is ACTIVE; the swarm was not asked (its nodes may still be booting)."""
    nodes = [{"name": n, "role": result.roles[n], "server_id": result.servers[n]} for n in result.servers]
    if args.output == "json":
        print(json.dumps({
            "cluster": cluster, "cert_path": str(certs), "seconds_to_active": round(seconds, 1),
            "seed_ip": result.seed_ip, "seed_floating_ip": result.seed_floating_ip, "lb_vip": result.lb_vip,
            "lb_floating_ip": result.lb_floating_ip, "nodes": nodes}, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"cluster {cluster}: {len(nodes)} servers ACTIVE in {seconds:.0f}s (--wait active: the swarm was not "
          "checked)")
    for node in nodes:
        print(f"  {node['name']:24} {node['role']:8} {node['server_id']}")
    print(f"Remove it with: bakery down --provider openstack --cluster {cluster}")
    return EXIT_OK


def run_down(args: argparse.Namespace, cluster: str, output: str = "text") -> int:
    from ..local.host import stderr_progress
    from .cloud import connect
    from .up import down

    report = stderr_progress("bakery down")
    deleted: list[str] = []

    def progress(message: str) -> None:
        # up.down reports each deletion as "deleted KIND ID" (ledger.delete_all): what was removed.
        # Its "nothing to delete" line is said once, by teardown_result.
        if message.startswith("deleted "):
            deleted.append(message.removeprefix("deleted "))
        elif message.endswith(": nothing to delete"):
            return
        report(message)

    from contextlib import nullcontext

    from ...state import cluster_dir, default_root
    from . import daytwo

    state_root = getattr(args, "state_dir", None) or default_root()
    known = cluster_dir(cluster, state_root).is_dir()  # else no run of this machine can hold it: no lock made
    with daytwo.exclusive(cluster, state_root) if known else nullcontext():  # never under a running up or roll
        problems = down(connect(args.os_cloud), cluster, progress)
        if not problems and known:  # a new cluster of this name continues no roll, boots with its own options
            daytwo.forget_day_two(cluster, state_root)
    return teardown_result("down", cluster, deleted, problems,
                           looked=f"nothing on this cloud carries the tag bakery.cluster={cluster}", output=output)


def node_rows(conn: Any, cluster: str, state_dir: Path | None, api_port: int) -> tuple[list[dict[str, Any]], str]:
    """One row per server of the cluster, with its swarm state when the seed's API answers (else why not)."""
    from ...state import client_cert_dir
    from . import ready
    from .up import cluster_servers, seed_address

    servers = cluster_servers(conn, cluster)
    address = seed_address(conn, cluster)
    if not servers or address is None:
        return [], f"cluster {cluster} has no servers on this cloud" if not servers else "the cluster has no seed port"
    client = ready.tls_client(address, api_port, client_cert_dir(cluster, state_dir))
    found, error = ready.list_nodes(client)
    listed = found or []
    rows = []
    for name, server in sorted(servers.items()):
        mine = [n for n in listed if ready.short(n.hostname) == ready.short(name)]
        best = next((n for n in mine if n.state == "ready"), mine[0] if mine else None)
        rows.append({"name": name, "role": (server.metadata or {}).get("bakery.role", "-"),
                     "address": _address(server), "status": server.status,
                     "swarm": best.state if best else "-", "manager": (best.manager or "-") if best else "-"})
    return rows, (f"the Docker API at {address} (the seed's, or the first manager's once the seed was rolled): "
                  f"{error}" if error else "")


def _address(server: Any) -> str:
    found = [a["addr"] for addrs in (server.addresses or {}).values() for a in addrs]
    return ",".join(found) or "-"


def run_nodes(args: argparse.Namespace, cluster: str) -> int:
    from ...commands.common import load_config
    from .cloud import connect

    cfg = load_config(args)
    rows, note = node_rows(connect(args.os_cloud), cluster, args.state_dir, cfg.docker.api_port)
    if note:
        print(f"bakery nodes: {note}", file=sys.stderr)
    from ...commands.nodes import cert_notes

    for line in cert_notes(cfg.name, args.state_dir, rows, "openstack"):
        print(f"bakery nodes: WARNING: {line}", file=sys.stderr)
    if args.output == "json":
        print(json.dumps({"cluster": cluster, "nodes": rows}, indent=2))
        return EXIT_OK
    print_table(rows, ("name", "role", "address", "status", "swarm", "manager"))
    return EXIT_OK
