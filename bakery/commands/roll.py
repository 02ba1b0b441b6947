"""Replace a running cluster's nodes, one at a time, with fresh ones: a new image, renewed certificates.

  bakery roll [--cluster NAME] [--image baked-1a2b3c] [--nodes worker-1 ...] [--dry-run]

Each node is replaced by a new one (the lowest free name of its role; a
seed's replacement is a manager: it joins, it never inits) booted from the
image `bakery bake --target local` made last (or --image) with freshly
rendered user-data and a new certificate. The replacement must be Ready
before the old node is touched; then the old one is drained (its tasks seen
running elsewhere), demoted if a manager, leaves the swarm, is removed from
it and deleted. Workers go first (a bad image shows where it costs least),
then managers, the seed last; with one replacement at a time the managers
never lose their majority (docs/DAY-TWO.md). The plan is checked against the
swarm's quorum before anything is done.

A roll that stops (a replacement not Ready, tasks that cannot move, a node
that died) says which node is where and keeps its journal (roll.json beside
the cluster's record): re-run `bakery roll` and it continues with the same
image and names. --dry-run prints the plan and changes nothing.

Renewing certificates is a roll: every replacement gets a new key pair and
certificate from the cluster's CAs (`bakery certs` lists their expiry).

--provider openstack replaces the cluster's Nova servers the same way
(`bakery roll --provider openstack --cluster NAME [--image GLANCE_IMAGE]
[--nodes worker-2 ...]`): a replacement server is booted from --image (default:
the image the last `bakery up --provider openstack` used; its flavor, network
and access options are recorded in the state dir and reused) with freshly
rendered user-data, Ready through a manager's TLS Docker API, then the old one
is drained, demoted, leaves, is removed and deleted with its port and floating
IP (the seed's floating IP moves to another manager's port). The journal is
roll.json in the cluster's state dir. --wait active (servers that run no
cloud-init): replacements only need to be ACTIVE and the old servers are only
deleted, nothing is drained (the plan says so on every line).

Replacing the seed moves the API operators reach: a local roll ends with the
export line of a manager (the seed is replaced last; before it goes, progress
says so).

--output json: {"cluster", "image", "dry_run", "plan" (lines), "notes",
"replaced" ([{"old", "new", "boot_seconds", "retire_seconds"}]), "seconds"};
local clusters also "docker_host" and "cert_path".
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from .. import fleet
from ..errors import EXIT_OK, UserError
from ..output import print_lines
from .common import (
    add_cluster,
    add_config,
    add_output,
    add_state_dir,
    cluster_name,
    refuse_local_for_openstack,
    seconds,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", choices=("local", "openstack"), default="local",
                   help="local: systemd-nspawn nodes (default); openstack: Nova servers")
    add_cluster(p)
    add_config(p)
    add_state_dir(p)
    p.add_argument("--nodes", nargs="+", metavar="NAME", help="replace only these nodes (default: every node)")
    p.add_argument("--image", metavar="IMAGE",
                   help="the image to move to: a name in the image cache (baked-...) or a directory "
                        "(default: the one `bakery bake --target local` made last, refused if it lacks "
                        "application images the cluster's image has); with --provider openstack a "
                        "Glance image (default: the one the last `up` used)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="node image cache (see `bakery bake --help`)")
    p.add_argument("--timeout", type=seconds, default=600, help="seconds to wait for each replacement to be Ready")
    p.add_argument("--drain-timeout", type=seconds, default=300, metavar="SECONDS",
                   help="how long a drained node's tasks may take to run elsewhere before the run stops (default 300)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    add_output(p)
    from ..providers.openstack.commands import add_roll_arguments

    add_roll_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..providers.local import cluster, daytwo, rootfs
    from ..providers.local.host import stderr_progress
    from ..state import client_cert_dir, default_root

    if args.provider == "openstack":
        return _run_openstack(args)
    refuse_local_for_openstack(args, "roll")
    cluster.require_local()
    state_dir = args.state_dir or default_root()
    name = cluster_name(args)
    opts = cluster.UpOptions(cluster=name, managers=1, workers=0, consul=False, baked=True, user_config=None,
                             state_dir=state_dir, cache_dir=(args.cache_dir or rootfs.default_cache_dir()).resolve(),
                             timeout=args.timeout, drain_timeout=args.drain_timeout)
    progress = stderr_progress("bakery roll")
    start = time.monotonic()
    try:
        plan, timed, info = daytwo.roll(opts, args.nodes, args.image, args.dry_run, progress)
    except fleet.Stopped as exc:
        raise fleet.Stopped(f"{exc}\nwhere the nodes are now:\n  " + "\n  ".join(daytwo.where(state_dir, name))
                            + "\nre-run `bakery roll` to continue") from None
    except KeyboardInterrupt:
        progress("interrupted; where the nodes are now:\n  " + "\n  ".join(daytwo.where(state_dir, name))
                 + "\nre-run `bakery roll` to continue (the journal keeps the replacements chosen)")
        raise
    pairs = [(c.replaces, c.node) for c in plan.changes if c.kind == "add" and c.replaces]
    rec = cluster.load(state_dir, name)
    api = cluster.api_node(rec)
    reach = {"docker_host": f"tcp://{cluster.address_for(api.name, api.role)}:2376",
             "cert_path": str(client_cert_dir(name, state_dir))}
    return _report(args, name, info["image"], plan.lines(), pairs, dict(timed), time.monotonic() - start,
                   plan.notes, reach)


def _run_openstack(args: argparse.Namespace) -> int:
    from ..providers.openstack import commands

    if args.cache_dir:
        raise UserError("--cache-dir is for --provider local", fix="name a Glance image with --image")
    name = commands.tagged_name(cluster_name(args))
    start = time.monotonic()
    lines, pairs, took, image, notes = commands.run_roll(args, name)
    return _report(args, name, image, lines, pairs, took, time.monotonic() - start, notes, None)


def _report(args: argparse.Namespace, name: str, image: str, lines: list[str], pairs: Sequence[tuple[str | None, str]],
            took: dict[str, float], seconds: float, notes: list[str], reach: dict[str, str] | None) -> int:
    replaced = [{"old": old, "new": new, "boot_seconds": round(took.get(new, 0.0), 1),
                 "retire_seconds": round(took.get(old or "", 0.0), 1)} for old, new in pairs if new in took]
    if args.output == "json":
        print(json.dumps({"cluster": name, "image": image, "dry_run": args.dry_run, "plan": lines, "notes": notes,
                          "replaced": replaced, "seconds": round(seconds, 1), **(reach or {})}, indent=2))
        return EXIT_OK
    if args.dry_run or not pairs:
        print_lines(f"cluster {name}: roll to {image}:", lines, notes)
        return EXIT_OK
    print(f"cluster {name}: {len(replaced)} node(s) replaced in {seconds:.0f}s")
    for r in replaced:
        print(f"  {r['old']} -> {r['new']}: booted and Ready in {r['boot_seconds']:.0f}s, "
              f"{r['old']} retired in {r['retire_seconds']:.0f}s")
    if reach is not None:
        print("Reach the swarm with:" if not any(r["old"] == "seed" for r in replaced) else
              "The seed was replaced: reach the swarm through a manager now:")
        print(f"  export DOCKER_HOST={reach['docker_host']} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={reach['cert_path']}")
    return EXIT_OK
