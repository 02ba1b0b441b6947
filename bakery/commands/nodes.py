"""List a cluster's nodes, their roles and states.

  bakery nodes [--cluster local] [--output json]

For each node `bakery up` booted: its role, address, whether it runs, and
its state in the swarm as a running manager reports it (Ready/Down, Leader/
Reachable). --provider openstack lists the cluster's servers (Nova status,
addresses) with their swarm state through the seed's mutual-TLS API.
"""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_OK
from .up import add_cluster_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_cluster_arguments(p)
    p.add_argument("--output", choices=("table", "json"), default="table", help="table (default) or json")


def run(args: argparse.Namespace) -> int:
    from ..providers.local import cluster
    from ..providers.local.host import require_host
    from ..state import default_root
    from .up import cluster_name

    if args.provider == "openstack":
        from ..providers.openstack import commands

        return commands.run_nodes(args, commands.cluster_name(args.cluster, args.config))
    require_host(["nsenter"], "bakery nodes --provider local")
    rec = cluster.load(args.state_dir or default_root(), cluster_name(args.cluster, args.config))
    rows = cluster.status(rec)
    if args.output == "json":
        print(json.dumps({"cluster": rec.cluster, "nodes": rows}, indent=2))
        return EXIT_OK
    cols = ("name", "role", "address", "running", "swarm", "manager")
    table = [cols] + [tuple(str(r[c]) for c in cols) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK
