"""Boot a cluster, or bring a running one to other counts: local systemd-nspawn nodes running the very
user-data `bakery render` prints.

  bakery up --provider local --managers 3 --workers 2 [--config bakery.yml]
  bakery up --workers 4 [--dry-run]        # the same cluster, converged: two more workers
  bakery up --workers 1                    # three workers drained, removed and deleted, one at a time

Creates a private bridge (10.213.0.0/24, DHCP and DNS for cluster.test by
dnsmasq) and boots a seed, managers and workers from the baked image (see
`bakery bake --target local`), each with its role's user-data through
cloud-init's NoCloud seed. Real cloud-init, systemd and dockerd run in each
node; the seed inits the swarm and the others fetch their join tokens over
mutual TLS. Shows progress until every node is Ready, then prints how to reach
the swarm. `bakery down` removes exactly what this created. Needs root and
systemd-nspawn.

Re-run on a cluster that is up, `up` converges to the counts given (a count not
given stays as it is: `bakery up --workers 4` keeps the managers). New nodes boot and
join (they never init a swarm); nodes that go are drained (their tasks seen
running elsewhere), demoted if managers, leave the swarm, are removed from it,
then deleted, one at a time: down nodes first, then drained ones, then the
highest numbered, the seed last. The manager count must be odd, and the plan
is simulated first: a change that would leave fewer than a majority of the
managers reachable at any step is refused with the step and the counts
(docs/DAY-TWO.md). --dry-run prints the plan and changes nothing. A run that
stops (a node not Ready, tasks that cannot move) says which node is where; a
re-run continues. `bakery roll` replaces nodes (a new image, renewed
certificates).

  bakery up --provider openstack --cluster prod --flavor m1.medium --image bakery-node-1a2b \\
      --network private --operator-cidr 198.51.100.7/32 [--floating-ip public] [--lb]

--provider openstack boots the same roles as Nova servers (cloud from
clouds.yaml / OS_* variables), with security groups holding exactly the swarm's
ports, anti-affinity for managers, and waits until every node is Ready through
the seed's mutual-TLS Docker API. Re-run on a cluster that has servers, it
converges to the counts given as the local provider does (the same planner,
order and quorum rule; --dry-run prints the plan): new servers boot and join,
servers that go are drained, demoted, leave, are removed and deleted with what
bakery made for them (the server, its port, its floating IP). The swarm is
asked through a manager's TLS API; if none answers, any change is refused
(no quorum), with the reason. --wait active never contacts the nodes (servers
that run no cloud-init): up stops at ACTIVE, and a server that goes is only
deleted, nothing is drained (every plan line says so); such a shrink is only
done with --wait active given. `bakery down --provider openstack --cluster
NAME` deletes what carries the cluster's tag.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import fleet
from ..errors import EXIT_OK, BakeryError, UserError
from ..output import print_plan
from .common import (
    add_cluster,
    add_config,
    add_output,
    add_state_dir,
    cluster_name,
    config_path,
    refuse_local_for_openstack,
    seconds,
)

if TYPE_CHECKING:
    from ..providers.local.state import ClusterRecord


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", choices=("local", "openstack"), default="local",
                   help="local: systemd-nspawn nodes on this machine (default); openstack: Nova servers")
    p.add_argument("--managers", type=int, help="managers including the seed, odd (a new cluster: 3; "
                                                "a running one: as many as it has)")
    p.add_argument("--workers", type=int, help="workers (a new cluster: 2; a running one: as many as it has)")
    p.add_argument("--consul", action=argparse.BooleanOptionalAction,
                   help="also boot a consul node (--no-consul on a running cluster deletes it; "
                        "not given: a new cluster has none, a running one keeps what it has)")
    p.add_argument("--unbaked", action="store_true",
                   help="boot the plain image: nodes install Docker at boot through an apt proxy on the bridge")
    p.add_argument("--format", choices=("cloud-init", "ignition"), default=None, dest="node_format",
                   help="local: how a new cluster's nodes are set up: cloud-init (default) or ignition (like "
                        "Flatcar and Fedora CoreOS: no Python, the real Ignition applies `bakery render "
                        "--format ignition`; needs Debian's ignition package)")
    add_config(p)
    add_cluster(p)
    add_state_dir(p)
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="node image cache (see `bakery bake --help`)")
    p.add_argument("--timeout", type=seconds, default=600, help="seconds to wait for Ready (default 600)")
    p.add_argument("--drain-timeout", type=seconds, default=300, metavar="SECONDS",
                   help="how long a drained node's tasks may take to run elsewhere before the run stops (default 300)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (nodes to boot or retire) and change nothing")
    add_output(p)
    from ..providers.openstack.commands import add_up_arguments

    add_up_arguments(p)


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """The options `down` and `nodes` share: which cluster, where its records are."""
    p.add_argument("--provider", choices=("local", "openstack"), default="local", help="local (default) or openstack")
    add_cluster(p)
    add_config(p)
    add_state_dir(p)
    add_output(p, aliases={"table": "text"})
    from ..providers.openstack.commands import add_cloud_arguments

    add_cloud_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..providers.local import cluster, rootfs
    from ..providers.local.host import stderr_progress
    from ..providers.local.state import record_path
    from ..state import default_root

    if args.managers is not None and (args.managers < 1 or args.managers % 2 == 0):
        raise UserError(f"--managers {args.managers}: a swarm needs an odd number of managers for raft quorum",
                        fix="use 1, 3, 5 or 7")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers {args.workers} is negative", fix="use 0 or more")
    state_dir = args.state_dir or default_root()
    if args.provider == "local":
        refuse_local_for_openstack(args, "up")
    exists = args.provider == "local" and record_path(state_dir, cluster_name(args)).exists()
    restart = exists and _unformed(state_dir, cluster_name(args))
    exists = exists and not restart
    if exists:  # what is not given stays as it is
        rec = cluster.load(state_dir, cluster_name(args))
        roles = [n.role for n in rec.nodes]
        if args.managers is None:
            args.managers = fleet.kept_managers(roles.count("seed") + roles.count("manager"), cluster_name(args))
        args.workers = roles.count("worker") if args.workers is None else args.workers
        args.consul = "consul" in roles if args.consul is None else args.consul
    if args.provider == "openstack" and args.node_format == "ignition":
        raise UserError("--format ignition is for --provider local (OpenStack servers: `bakery render --format "
                        "ignition` gives their user-data)",
                        fix="bakery render --role ROLE --format ignition ... | openstack server create --user-data "
                            "/dev/stdin ...")
    if exists and args.node_format and args.node_format != rec.format:
        raise UserError(f"cluster {rec.cluster}'s nodes are {rec.format} nodes; --format {args.node_format} is "
                        "for a new cluster", fix="drop --format, or `bakery down` first")
    if args.provider == "openstack":  # what is not given is filled there, from the cluster's servers
        from ..providers.openstack import commands

        return commands.run_up(args, commands.tagged_name(cluster_name(args)))
    args.managers = 3 if args.managers is None else args.managers
    args.workers = 2 if args.workers is None else args.workers
    args.consul = bool(args.consul)
    opts = cluster.UpOptions(
        cluster=cluster_name(args), managers=args.managers, workers=args.workers,
        consul=args.consul, baked=not args.unbaked, user_config=config_path(args), state_dir=state_dir,
        cache_dir=(args.cache_dir or rootfs.default_cache_dir()).resolve(), timeout=args.timeout,
        drain_timeout=args.drain_timeout, fmt=args.node_format or "cloud-init",
    )
    if opts.fmt == "ignition" and not opts.baked:
        raise UserError("--format ignition with --unbaked: Ignition installs no packages, and these nodes ship "
                        "Docker as Flatcar and Fedora CoreOS do", fix="drop --unbaked")
    if exists:
        return _converge(args, opts)
    again = [f"the first `bakery up` of cluster {opts.cluster} stopped before its swarm formed: what it left is "
             "removed, then the cluster is made anew"] if restart else []
    if not restart:  # one local cluster at a time: said by the plan too, and before anything is written
        from ..providers.local import net

        net.require_free_subnet()
        # Said before the machine's own checks: another place's node identities are the user's to settle.
        cluster.refuse_others_identities(opts, cluster.node_names(args.managers, args.workers, args.consul))
    if args.dry_run:
        names = cluster.node_names(args.managers, args.workers, args.consul)
        lines = [f"{i}. boot {n} ({r}, {cluster.address_for(n, r)})" for i, (n, r) in enumerate(names, 1)]
        return print_plan(args, opts.cluster, False, lines, again)
    cluster.require_local()
    from ..providers.local.daytwo import exclusive

    start = time.monotonic()
    with exclusive(state_dir, opts.cluster):  # two `up`s of a new cluster: the second is refused
        if restart:
            progress = stderr_progress("bakery up")
            progress(again[0])
            left = cluster.down(state_dir, opts.cluster, progress)
            if left.problems:
                raise BakeryError(f"could not remove what the stopped `bakery up` left: {'; '.join(left.problems)} "
                                  f"(see `bakery down --cluster {opts.cluster}`)")
        if record_path(state_dir, opts.cluster).exists():
            raise UserError(f"cluster {opts.cluster} was just created by another `bakery up`",
                            fix="re-run to converge it")
        rec = cluster.up(opts, stderr_progress("bakery up"))
    seconds = time.monotonic() - start
    return _reach(args, rec, state_dir, f"{len(rec.nodes)} nodes Ready in {seconds:.0f}s", seconds)


def _unformed(state_dir: Path, name: str) -> bool:
    """A record left by a first `up` that stopped before its swarm formed (no manager answers): nothing of
    value is in it, so `up` makes the cluster anew instead of converging what never was. One whose swarm
    did form (it stopped in the Ready wait) is marked formed and converged."""
    from ..providers.local import cluster, daytwo
    from ..providers.local.state import record_path

    rec = cluster.load(state_dir, name)
    if rec.formed:
        return False
    if daytwo.swarm_formed(rec):
        rec.formed = True
        rec.save(record_path(state_dir, name))
        return False
    return True


def _reach(args: argparse.Namespace, rec: ClusterRecord, state_dir: Path, summary: str, seconds: float,
           extra: dict[str, Any] | None = None) -> int:
    from ..providers.local import cluster
    from ..state import client_cert_dir

    api = cluster.api_node(rec)
    host = f"tcp://{cluster.address_for(api.name, api.role)}:2376"
    certs = client_cert_dir(rec.cluster, state_dir)
    if args.output == "json":
        nodes = [{"name": n.name, "role": n.role, "address": cluster.address_for(n.name, n.role)}
                 for n in sorted(rec.nodes, key=lambda n: n.name)]
        timing = {"seconds": round(seconds, 1)} if extra is not None else {"seconds_to_ready": round(seconds, 1)}
        print(json.dumps({"cluster": rec.cluster, "docker_host": host, "cert_path": str(certs),
                          "nodes": nodes, **timing, **(extra or {})}, indent=2))
        return EXIT_OK
    print(f"cluster {rec.cluster}: {summary}. Reach the swarm with:")
    print(f"  export DOCKER_HOST={host} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={certs}")
    print(f"Remove it with: bakery down --cluster {rec.cluster}" +
          (f" --state-dir {args.state_dir}" if args.state_dir else ""))
    return EXIT_OK


def _converge(args: argparse.Namespace, opts: Any) -> int:
    from ..providers.local import cluster, daytwo
    from ..providers.local.host import stderr_progress

    cluster.require_local()
    progress = stderr_progress("bakery up")
    start = time.monotonic()
    try:
        plan, timed = daytwo.converge(opts, args.dry_run, progress)
    except fleet.Stopped as exc:
        raise fleet.Stopped(f"{exc}\nwhere the nodes are now:\n  " +
                            "\n  ".join(daytwo.where(opts.state_dir, opts.cluster))) from None
    except KeyboardInterrupt:
        progress("interrupted; where the nodes are now:\n  " + "\n  ".join(daytwo.where(opts.state_dir, opts.cluster))
                 + "\nre-run `bakery up` to continue")
        raise
    if args.dry_run:
        return print_plan(args, opts.cluster, True, plan.lines(), plan.notes)
    for note in plan.notes:
        progress(f"note: {note}")
    rec = cluster.load(opts.state_dir, opts.cluster)
    seconds = time.monotonic() - start
    done = f"{len(plan.changes)} change(s) in {seconds:.0f}s" if plan.changes else "already as asked, nothing changed"
    return _reach(args, rec, opts.state_dir, f"{len(rec.nodes)} nodes, {done}", seconds,
                  {"dry_run": False, "plan": plan.lines() if plan.changes else [], "notes": plan.notes,
                   "seconds_per_change": {n: round(s, 1) for n, s in timed}})
