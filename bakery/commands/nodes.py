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
from ..output import print_table
from .common import cluster_name
from .up import add_cluster_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_cluster_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..providers.local import cluster
    from ..providers.local.host import require_host
    from ..state import default_root

    if args.provider == "openstack":
        from ..providers.openstack import commands

        return commands.run_nodes(args, commands.tagged_name(cluster_name(args)))
    require_host(["nsenter"], "bakery nodes --provider local")
    rec = cluster.load(args.state_dir or default_root(), cluster_name(args))
    rows = cluster.status(rec)
    if args.output == "json":
        print(json.dumps({"cluster": rec.cluster, "nodes": rows}, indent=2))
        return EXIT_OK
    print_table(rows, ("name", "role", "address", "running", "swarm", "manager"))
    return EXIT_OK
